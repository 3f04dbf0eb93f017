// Package bias is stage 6: per record, the mentions of protected
// attributes (axis and group) with a flag when a negative descriptor shares
// their sentence; per dataset, the distribution over groups on each axis,
// its distance from a reference, and a bias score.
//
// The score (documented in docs/STAGES.md): for every axis with at least
// MinMentions mentions, p is the share of each group among the axis's
// mentions and q the reference: the request's, or else a documented
// population reference (PopulationReference, with its sources). The
// axis's distance is the total variation 1/2 Σ|p−q|. With the population
// reference, groups a text rarely names as such (straight, middle-aged)
// are left out of both p and q: mentions name marked groups, so the
// default compares shares among them. Each distance has a 95% confidence
// interval from the L1 deviation bound of the empirical distribution
// (Weissman et al., 2003), so a few dozen mentions cannot trip the gate:
// the gate compares the interval's low end with the threshold. The
// dataset's bias score is the largest distance of any axis.
package bias

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/settings"
	"github.com/dspipe/dspipe/internal/textmatch"
)

// Version of the bias stage's logic, in lineage and the manifest.
const Version = "1"

// MinMentions is the default support an axis needs to be scored.
const MinMentions = 20

// Mention is one mention of a group, with byte offsets into the text.
type Mention struct {
	Start    int    `json:"start"`
	End      int    `json:"end"`
	Axis     string `json:"axis"`
	Group    string `json:"group"`
	Negative bool   `json:"negative,omitempty"`
}

var matcher = func() *textmatch.Matcher {
	ps := make([]textmatch.Phrase, len(terms))
	for i, t := range terms {
		ps[i] = textmatch.Phrase{Text: t.text}
	}
	return textmatch.New(ps)
}()

// lowerASCII lower-cases ASCII letters only, so offsets stay those of s.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 32
				}
			}
			return string(b)
		}
	}
	return s
}

// Detect finds the mentions in text, in order.
func Detect(text string) []Mention {
	s := lowerASCII(text)
	var out []Mention
	lastEnd := -1
	matcher.Each(s, func(k, start, end int) {
		t := terms[k]
		if start < lastEnd {
			n := len(out)
			switch {
			case n > 0 && out[n-1].Start == start && out[n-1].End == end && out[n-1].Axis != t.axis:
				// One word, two axes: "grandfather" is a man and old.
				if !t.person || personFollows(s, end) {
					out = append(out, Mention{Start: start, End: end, Axis: t.axis, Group: t.group})
				}
			case n > 0 && out[n-1].Start == start && end > out[n-1].End:
				// A longer phrase at the same start wins; one inside a
				// longer phrase ("american" in "african american") is not
				// a mention of its own.
				k := n - 1
				for k > 0 && out[k-1].Start == start {
					k--
				}
				out = append(out[:k], Mention{Start: start, End: end, Axis: t.axis, Group: t.group})
				lastEnd = end
			}
			return
		}
		if t.person && !personFollows(s, end) {
			return
		}
		out = append(out, Mention{Start: start, End: end, Axis: t.axis, Group: t.group})
		lastEnd = end
	})
	out = appendAges(s, out)
	if len(out) > 0 {
		markNegative(s, out)
	}
	return out
}

var numberWords = map[string]int{"thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
	"nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}

// appendAges adds "22-year-old", "a 65 year old", "nineteen-year-old" as
// age mentions: under 30 young, 60 and over old, between them
// middle_aged. Mentions stay in text order.
func appendAges(s string, out []Mention) []Mention {
	from := 0
	added := false
	for {
		k := strings.Index(s[from:], "year")
		if k < 0 {
			break
		}
		at := from + k
		from = at + 4
		rest := s[at+4:]
		if !strings.HasPrefix(rest, "-old") && !strings.HasPrefix(rest, " old") && !strings.HasPrefix(rest, "s old") && !strings.HasPrefix(rest, "s-old") {
			continue
		}
		// The number before: "22-", "65 ", "nineteen-".
		j := at
		if j > 0 && (s[j-1] == '-' || s[j-1] == ' ') {
			j--
		}
		i := j
		for i > 0 && (s[i-1] >= '0' && s[i-1] <= '9' || s[i-1] >= 'a' && s[i-1] <= 'z') {
			i--
		}
		n := 0
		if w := s[i:j]; w != "" {
			if w[0] >= '0' && w[0] <= '9' {
				for _, c := range []byte(w) {
					if c < '0' || c > '9' {
						n = -1
						break
					}
					n = n*10 + int(c-'0')
				}
			} else {
				n = numberWords[w]
			}
		}
		if n <= 0 || n > 120 {
			continue
		}
		group := "middle_aged"
		switch {
		case n < 30:
			group = "young"
		case n >= 60:
			group = "old"
		}
		end := at + 4 + 4
		if rest[0] == 's' {
			end++
		}
		out = append(out, Mention{Start: i, End: end, Axis: Age, Group: group})
		added = true
	}
	if added {
		slices.SortStableFunc(out, func(a, b Mention) int { return a.Start - b.Start })
	}
	return out
}

// personFollows reports whether one of the next two words is a person noun.
func personFollows(s string, at int) bool {
	for n := 0; n < 2; n++ {
		for at < len(s) && (s[at] == ' ' || s[at] == '-') {
			at++
		}
		j := at
		for j < len(s) && textmatch.IsWordByte(s[j]) {
			j++
		}
		if j == at {
			return false
		}
		if personNouns[s[at:j]] {
			return true
		}
		at = j
	}
	return false
}

// markNegative flags the mentions that share a sentence with a negative
// descriptor.
func markNegative(s string, ms []Mention) {
	for i := range ms {
		from := strings.LastIndexAny(s[:ms[i].Start], ".!?\n") + 1
		to := len(s)
		if k := strings.IndexAny(s[ms[i].End:], ".!?\n"); k >= 0 {
			to = ms[i].End + k
		}
		sent := s[from:to]
		for j := 0; j < len(sent); {
			if !textmatch.IsWordByte(sent[j]) {
				j++
				continue
			}
			k := j
			for k < len(sent) && textmatch.IsWordByte(sent[k]) {
				k++
			}
			if negative[sent[j:k]] {
				ms[i].Negative = true
				break
			}
			j = k
		}
	}
}

// Add counts one record's mentions into a dataset summary.
func Add(s *events.BiasSummary, ms []Mention) {
	if len(ms) == 0 {
		return
	}
	s.Records++
	if s.Groups == nil {
		s.Groups = map[string]map[string]int64{}
	}
	for _, m := range ms {
		if s.Groups[m.Axis] == nil {
			s.Groups[m.Axis] = map[string]int64{}
		}
		s.Groups[m.Axis][m.Group]++
		if m.Negative {
			if s.Negative == nil {
				s.Negative = map[string]map[string]int64{}
			}
			if s.Negative[m.Axis] == nil {
				s.Negative[m.Axis] = map[string]int64{}
			}
			s.Negative[m.Axis][m.Group]++
		}
	}
}

// Update recomputes the summary's score under settings.
func Update(s *events.BiasSummary, set Settings) Score {
	sc := Compute(s, set.Axes, set.Reference, set.MinMentions)
	s.Score, s.Axis, s.Gate = sc.Score, sc.Axis, sc.Gate
	s.Distances = map[string]float64{}
	s.Intervals = map[string][2]float64{}
	for _, a := range sc.Axes {
		s.Distances[a.Axis] = a.Distance
		s.Intervals[a.Axis] = [2]float64{a.Low, a.High}
	}
	return sc
}

// coreGroups are the groups an axis's reference always holds, so a dataset
// that mentions only one of them is measured against both.
var coreGroups = map[string][]string{Gender: {"woman", "man"}, Age: {"young", "old"}}

// AxisScore is one axis's distance from its reference.
type AxisScore struct {
	Axis     string  `json:"axis"`
	Mentions int64   `json:"mentions"`
	Distance float64 `json:"distance"`
	// Low and High bound the distance with 95% confidence.
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Over lists the groups above their reference share, largest excess
	// first.
	Over []string `json:"over,omitempty"`
}

// Score is the dataset's bias score with each scored axis.
type Score struct {
	Score float64 `json:"score"`
	Axis  string  `json:"axis,omitempty"`
	// Gate is the largest low end of any axis's interval, and GateAxis
	// that axis: the gate trips when Gate is above the threshold.
	Gate     float64     `json:"gate"`
	GateAxis string      `json:"gate_axis,omitempty"`
	Axes     []AxisScore `json:"axes"`
}

// ScoredAxes are the axes the score covers by default: those whose groups
// are peers a dataset should hold in proportion. Disability, appearance,
// nationality and socioeconomic status are reported (their distributions
// are in statistics) but not scored unless a request names them: a
// distribution over kinds of disability is not a skew between peers, and
// in a counselling dataset mental-health conditions dominate by design.
var ScoredAxes = []string{Gender, Age, RaceEthnicity, Religion, SexualOrientation}

// Settings are a request's processing.bias object with defaults applied.
type Settings struct {
	// Threshold fails (or warns, in Mode warn) above this score
	// (BIAS_VALIDATION_THRESHOLD).
	Threshold float64 `json:"threshold"`
	// Mode is "fail" (the default) or "warn".
	Mode string `json:"mode"`
	// Axes to score; Reference per axis (group shares).
	Axes        []string                      `json:"axes"`
	Reference   map[string]map[string]float64 `json:"reference,omitempty"`
	MinMentions int                           `json:"min_mentions"`
}

// Compute scores a summary over axes (nil: ScoredAxes). reference maps an
// axis to group shares (they need not sum to 1; they are normalised); an
// axis without one is measured against PopulationReference, or, where
// there is none, uniformly over its core groups and every group observed.
func Compute(s *events.BiasSummary, axes []string, reference map[string]map[string]float64, minMentions int) Score {
	if minMentions <= 0 {
		minMentions = MinMentions
	}
	if axes == nil {
		axes = ScoredAxes
	}
	out := Score{Axes: []AxisScore{}}
	if s == nil {
		return out
	}
	for _, axis := range axes {
		groups := s.Groups[axis]
		q := map[string]float64{}
		ref, own := reference[axis]
		if !own || len(ref) == 0 {
			ref = PopulationReference[axis]
		}
		if len(ref) > 0 {
			var sum float64
			for _, v := range ref {
				sum += v
			}
			for g, v := range ref {
				q[g] = v / sum
			}
			if !own {
				// The population reference covers the marked groups only:
				// mentions of others are left out of the comparison.
				kept := map[string]int64{}
				for g, v := range groups {
					if to, ok := pooled[axis][g]; ok {
						g = to
					}
					if _, ok := q[g]; ok {
						kept[g] += v
					}
				}
				groups = kept
			}
		} else {
			names := slices.Clone(coreGroups[axis])
			for g := range groups {
				if !slices.Contains(names, g) {
					names = append(names, g)
				}
			}
			for _, g := range names {
				q[g] = 1 / float64(len(names))
			}
		}
		var n int64
		for _, v := range groups {
			n += v
		}
		if n < int64(minMentions) || len(q) < 2 && len(groups) < 2 {
			continue // too few mentions, or one group and nothing to compare it with
		}
		union := map[string]bool{}
		for g := range q {
			union[g] = true
		}
		for g := range groups {
			union[g] = true
		}
		var tv float64
		type excess struct {
			g string
			d float64
		}
		var over []excess
		for g := range union {
			p := float64(groups[g]) / float64(n)
			d := p - q[g]
			if d < 0 {
				tv -= d
			} else {
				tv += d
			}
			if d > 0.05 {
				over = append(over, excess{g, d})
			}
		}
		tv /= 2
		sort.Slice(over, func(i, j int) bool { return over[i].d > over[j].d || over[i].d == over[j].d && over[i].g < over[j].g })
		eps := sampling(len(union), n)
		as := AxisScore{Axis: axis, Mentions: n, Distance: round3(tv), Low: round3(max(0, tv-eps)), High: round3(min(1, tv+eps))}
		for _, o := range over {
			as.Over = append(as.Over, o.g)
		}
		out.Axes = append(out.Axes, as)
		if as.Distance > out.Score {
			out.Score, out.Axis = as.Distance, axis
		}
		if as.Low > out.Gate {
			out.Gate, out.GateAxis = as.Low, axis
		}
	}
	return out
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// sampling is the half-width, in total variation, of the 95% confidence
// band around a distribution estimated from n mentions over k groups:
// P(‖p̂−p‖₁ ≥ ε) ≤ (2^k − 2)·exp(−nε²/2) (Weissman et al., 2003), so
// ε = √(2(ln(2^k − 2) + ln 20)/n), and total variation is ε/2. The true
// distance lies within this of the measured one.
func sampling(k int, n int64) float64 {
	if n <= 0 {
		return 1
	}
	k = max(k, 2)
	ln := float64(k) * math.Ln2 // ln(2^k − 2) ≤ k ln 2, and close for the k here
	if k < 60 {
		ln = math.Log(math.Exp2(float64(k)) - 2)
	}
	return math.Sqrt(2*(ln+math.Log(20))/float64(n)) / 2
}

// Describe says which axis and groups the gate comes from, for alerts.
func (s Score) Describe() string {
	axis := s.GateAxis
	if axis == "" {
		axis = s.Axis
	}
	for _, a := range s.Axes {
		if a.Axis == axis {
			return fmt.Sprintf("%s is the most clearly skewed axis (distance %.2f, 95%% interval %.2f–%.2f over %d mentions; over-represented: %s)",
				a.Axis, a.Distance, a.Low, a.High, a.Mentions, strings.Join(a.Over, ", "))
		}
	}
	return "no axis has enough mentions to score"
}

// RequestSettings is the processing.bias object a request may carry.
type RequestSettings struct {
	Enabled     *bool                         `json:"enabled,omitempty"`
	Threshold   *float64                      `json:"threshold,omitempty"`
	Mode        string                        `json:"mode,omitempty"`
	Axes        []string                      `json:"axes,omitempty"`
	Reference   map[string]map[string]float64 `json:"reference,omitempty"`
	MinMentions *int                          `json:"min_mentions,omitempty"`
}

// ParseRequest validates a request's processing.bias; the error says what
// to fix.
func ParseRequest(raw json.RawMessage) (RequestSettings, error) {
	r, absent, err := settings.Object[RequestSettings](raw, "processing.bias", "enabled, threshold, mode (fail or warn), axes, reference and min_mentions")
	if absent || err != nil {
		return r, err
	}
	if err := settings.Fraction("processing.bias.threshold", r.Threshold); err != nil {
		return r, err
	}
	switch r.Mode {
	case "", "fail", "warn":
	default:
		return r, errors.New("processing.bias.mode: must be fail or warn")
	}
	for _, a := range r.Axes {
		if !slices.Contains(Axes, a) {
			return r, fmt.Errorf("processing.bias.axes: unknown axis %q; axes are %s", a, strings.Join(Axes, ", "))
		}
	}
	for a, groups := range r.Reference {
		if !slices.Contains(Axes, a) {
			return r, fmt.Errorf("processing.bias.reference: unknown axis %q; axes are %s", a, strings.Join(Axes, ", "))
		}
		var sum float64
		for g, v := range groups {
			if v < 0 {
				return r, fmt.Errorf("processing.bias.reference.%s.%s: a share cannot be negative", a, g)
			}
			sum += v
		}
		if sum <= 0 {
			return r, fmt.Errorf("processing.bias.reference.%s: give at least one group a positive share", a)
		}
	}
	if m := r.MinMentions; m != nil && (*m < 1 || *m > 1_000_000) {
		return r, errors.New("processing.bias.min_mentions: must be between 1 and 1000000")
	}
	return r, nil
}

// Resolve applies the server's defaults (the BIAS_VALIDATION_THRESHOLD
// threshold) to a request's settings; ok is false when the stage is off.
func Resolve(raw json.RawMessage, threshold float64) (Settings, bool) {
	r, _ := ParseRequest(raw) // validated by the API already
	s := Settings{Threshold: threshold, Mode: "fail", Axes: ScoredAxes, Reference: r.Reference, MinMentions: MinMentions}
	if r.Enabled != nil && !*r.Enabled {
		return s, false
	}
	if r.Threshold != nil {
		s.Threshold = *r.Threshold
	}
	if r.Mode != "" {
		s.Mode = r.Mode
	}
	if len(r.Axes) > 0 {
		s.Axes = r.Axes
	}
	if r.MinMentions != nil {
		s.MinMentions = *r.MinMentions
	}
	return s, true
}
