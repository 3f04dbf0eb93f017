// Package safety is stage 5 for one record: it masks personal identifiers
// in every turn (one pseudonym per person across the conversation), grades
// crisis risk on the user's turns, and says whether the record goes to
// quarantine for human review. Like the other per-record stages it is a
// pure function of the record: no I/O, no clock.
package safety

import (
	"encoding/json"
	"fmt"
	gojson "github.com/goccy/go-json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/crisis"
	"github.com/dspipe/dspipe/internal/pii"
	"github.com/dspipe/dspipe/internal/settings"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/textmatch"
)

// Version of the safety stage's logic, in lineage and the manifest.
const Version = "1"

// Settings are a request's safety settings (its "safety" object) with the
// server's defaults applied.
type Settings struct {
	Enabled bool `json:"enabled"`
	// PIIMasking is tag, pseudonym (default) or hash.
	PIIMasking string `json:"pii_masking"`
	// CrisisThreshold: records whose crisis score reaches it are
	// quarantined (CRISIS_DETECTION_THRESHOLD).
	CrisisThreshold float64 `json:"crisis_threshold"`
	// MaxQuarantineRate fails the stage with safety_violation when a larger
	// share of the records is quarantined (1 = never).
	MaxQuarantineRate float64 `json:"max_quarantine_rate"`
}

// RequestSettings is the "safety" object a request may carry.
type RequestSettings struct {
	Enabled           *bool    `json:"enabled,omitempty"`
	PIIMasking        string   `json:"pii_masking,omitempty"`
	CrisisThreshold   *float64 `json:"crisis_threshold,omitempty"`
	MaxQuarantineRate *float64 `json:"max_quarantine_rate,omitempty"`
}

// ParseRequest validates a request's safety object; the error says what to fix.
func ParseRequest(raw json.RawMessage) (RequestSettings, error) {
	r, absent, err := settings.Object[RequestSettings](raw, "safety", "enabled, pii_masking, crisis_threshold and max_quarantine_rate")
	if absent || err != nil {
		return r, err
	}
	switch r.PIIMasking {
	case "", pii.MaskTag, pii.MaskPseudonym, pii.MaskHash:
	default:
		return r, fmt.Errorf("safety.pii_masking: must be tag, pseudonym or hash")
	}
	if err := settings.Fraction("safety.crisis_threshold", r.CrisisThreshold); err != nil {
		return r, err
	}
	if err := settings.Fraction("safety.max_quarantine_rate", r.MaxQuarantineRate); err != nil {
		return r, err
	}
	return r, nil
}

// Resolve applies the server's defaults to a request's settings.
func Resolve(raw json.RawMessage, enabled bool, threshold float64) Settings {
	r, _ := ParseRequest(raw) // validated by the API already
	s := Settings{Enabled: enabled, PIIMasking: pii.MaskPseudonym, CrisisThreshold: threshold, MaxQuarantineRate: 1}
	if r.Enabled != nil {
		s.Enabled = *r.Enabled && enabled // a request cannot switch on what the server switched off
	}
	if r.PIIMasking != "" {
		s.PIIMasking = r.PIIMasking
	}
	if r.CrisisThreshold != nil {
		s.CrisisThreshold = *r.CrisisThreshold
	}
	if r.MaxQuarantineRate != nil {
		s.MaxQuarantineRate = *r.MaxQuarantineRate
	}
	return s
}

// Annotation is what the stage writes into annotations.safety.
type Annotation struct {
	PII     map[string]int `json:"pii"`
	Masking string         `json:"masking"`
	Crisis  crisis.Result  `json:"crisis"`
	// Content holds the highest score per content category over the turns.
	Content     map[string]float64 `json:"content"`
	Flags       []string           `json:"flags"`
	Quarantined bool               `json:"quarantined"`
}

// Outcome is the stage's result for one record.
type Outcome struct {
	PII         map[string]int
	Crisis      crisis.Result
	Content     map[string]float64
	Flags       []string
	Quarantined bool
	// Blocked is the reason a record may never be kept (sexual content
	// involving minors); it is rejected, not quarantined.
	Blocked string
	// RecordID is the record's id, for the review queue.
	RecordID string
}

// isSourceIDHash reports a pseudonym from stage.SourceIDHash.
func isSourceIDHash(v string) bool {
	if len(v) != 36 || !strings.HasPrefix(v, "sid_") {
		return false
	}
	for _, c := range v[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Flags a record can carry.
const (
	FlagCrisis               = "crisis"                 // crisis score at the threshold: review
	FlagSelfHarmInstructions = "self_harm_instructions" // method or dose details: review
	FlagResponderHarm        = "responder_harm"         // a responder turn encourages self-harm
	FlagSexualMinors         = "sexual_minors"          // always blocked
	// FlagMinorsReview: sexuality or abuse involving a minor, discussed,
	// disclosed or condemned (counselling holds these): review, never
	// blocked.
	FlagMinorsReview = "sexual_minors_discussion"
)

var userRoles = map[string]bool{stage.RoleUser: true}

// identifiersIn finds the identifiers in where a record came from. An
// organisation is not an identifier of a person (Safe Harbor does not
// list it), and in a path it is most often a file name taken for one
// ("chatml.jsonl"): masking it would break the provenance for nothing.
//
// Every record of a source carries the same location, so the answer is
// remembered per location (the spans, never the text they cover) for up
// to uriCacheSize locations; callers must not change the slice.
func identifiersIn(uri string) []pii.Span {
	if v, ok := uriSpans.Load(uri); ok {
		return v.([]pii.Span)
	}
	spans := pii.Detect(uri)
	out := spans[:0]
	for _, sp := range spans {
		if sp.Type != pii.Organization {
			out = append(out, sp)
		}
	}
	if uriCached.Add(1) <= uriCacheSize {
		uriSpans.Store(uri, out)
	}
	return out
}

// uriSpans maps a record's source location to identifiersIn's answer;
// uriCached counts the locations stored, which stop at uriCacheSize.
var (
	uriSpans  sync.Map
	uriCached atomic.Int64
)

const uriCacheSize = 4096

// Apply masks the record in place and annotates it.
func Apply(rec *stage.Record, s Settings, salt []byte) Outcome {
	return apply(rec, slices.Clone(rec.Messages), s, salt)
}

// apply is Apply given the messages as written: content and crisis are
// judged on those, since masking first would hide "13 year old" behind
// [AGE_1]. The stage value passes the copy the pipeline already made.
func apply(rec *stage.Record, original []stage.Message, s Settings, salt []byte) Outcome {
	o := Outcome{PII: map[string]int{}, RecordID: rec.ID}
	m := pii.NewMasker(s.PIIMasking, salt)
	changed := false
	for i := range rec.Messages {
		msg := &rec.Messages[i]
		spans := pii.Detect(msg.Content)
		if len(spans) == 0 {
			continue
		}
		for _, sp := range spans {
			o.PII[sp.Type]++
		}
		msg.Content = m.Mask(msg.Content, spans)
		changed = true
	}
	// Every other string that reaches an output is masked the same way:
	// metadata values (mapped fields included) and where the record came
	// from. Keyed source-id pseudonyms and the format name hold none.
	for k, v := range rec.Metadata {
		if k == "format" || (k == "source_id" && isSourceIDHash(v)) {
			continue
		}
		if spans := pii.Detect(v); len(spans) > 0 {
			for _, sp := range spans {
				o.PII[sp.Type]++
			}
			rec.Metadata[k] = m.Mask(v, spans)
			changed = true
		}
	}
	if spans := identifiersIn(rec.Source.URI); len(spans) > 0 {
		for _, sp := range spans {
			o.PII[sp.Type]++
		}
		rec.Source.URI = m.Mask(rec.Source.URI, spans)
		changed = true
	}
	// One crisis pass over every turn: each turn's own grade (for content)
	// and the user's turns together (the conversation's grade).
	// Both read each turn lower-cased and without apostrophes: one
	// normalisation serves both.
	norms := make([]string, len(original))
	users := make([]bool, len(original))
	for i, msg := range original {
		norms[i], users[i] = textmatch.Normalise(msg.Content), userRoles[msg.Role]
	}
	var graded []crisis.Result
	o.Crisis, graded = crisis.AssessEachNormalised(norms, users)
	if o.Crisis.Score >= s.CrisisThreshold && crisis.Rank(o.Crisis.Level) >= crisis.Rank(crisis.Ideation) {
		o.Flags = append(o.Flags, FlagCrisis)
	}
	o.Content = map[string]float64{}
	for i, msg := range original {
		c := content.AssessNormalised(msg.Content, norms[i], msg.Role == stage.RoleAssistant, graded[i])
		for k, v := range c.Categories {
			o.Content[k] = max(o.Content[k], v)
		}
		if c.SelfHarmInstructions && !slices.Contains(o.Flags, FlagSelfHarmInstructions) {
			o.Flags = append(o.Flags, FlagSelfHarmInstructions)
		}
		if c.MinorsDiscussion && !slices.Contains(o.Flags, FlagMinorsReview) {
			o.Flags = append(o.Flags, FlagMinorsReview)
		}
		// A responder pointing someone at self-harm ("kill yourself") is
		// the worst thing a training example can teach.
		if msg.Role == stage.RoleAssistant && (c.SelfHarmIncitement || c.Categories[content.SelfHarm] >= 0.3 && c.Categories[content.Harassment] >= content.FlagThreshold) &&
			!slices.Contains(o.Flags, FlagResponderHarm) {
			o.Flags = append(o.Flags, FlagResponderHarm)
		}
	}
	if o.Content[content.SexualMinors] >= content.FlagThreshold {
		o.Flags = append(o.Flags, FlagSexualMinors)
		o.Blocked = "content: sexual content involving minors is always blocked"
	}
	o.Quarantined = o.Blocked == "" && len(o.Flags) > 0
	if o.Flags == nil {
		o.Flags = []string{}
	}
	b, _ := gojson.Marshal(Annotation{PII: o.PII, Masking: s.PIIMasking, Crisis: o.Crisis, Content: o.Content, Flags: o.Flags, Quarantined: o.Quarantined})
	if rec.Annotations == nil {
		rec.Annotations = map[string]json.RawMessage{}
	}
	rec.Annotations["safety"] = b
	rec.Lineage = append(rec.Lineage, stage.Lineage{Stage: "safety_validation", Version: Version, Changed: changed})
	return o
}
