// Package quality is stage 4 for one record: it scores a whole
// conversation 0..1 from named signals, with published heuristics for web
// text adapted to dialogue, and says why a record falls below a threshold.
// Like the other per-record stages it is a pure function of the record.
//
// Sources of the rules and their thresholds:
//
//   - Gopher (Rae et al. 2021, "Scaling Language Models", appendix A,
//     "MassiveWeb" quality and repetition filters): at least 80% of words
//     hold a letter; mean word length 3 to 10; at least two stop words;
//     duplicate-line share at most 0.30; the most frequent 2-gram at most
//     0.20 of the text; words inside duplicated 5-grams at most 0.15.
//   - C4 (Raffel et al. 2020, section 2.2): pages with "lorem ipsum" or
//     cookie/terms-of-use boilerplate are dropped; lines should end in
//     terminal punctuation.
//   - FineWeb (Penedo et al. 2024, "FineWeb" custom filters): a share of
//     lines ending in punctuation, duplicated-line characters.
//
// Adapted to dialogue: the unit is the turn, not the line (a repeated turn
// is a duplicated line); the stop-word rule runs per turn, so one turn of
// gibberish in an otherwise fine conversation is caught; the length rules
// of web documents (50 words and more) do not apply, because a short
// exchange is a normal conversation. C4's "bad words" rule is not used:
// it would drop disclosures of abuse or self-harm, which are the safety
// stage's to judge, never quality's. No rule here reads crisis words.
package quality

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/dspipe/dspipe/internal/lang"
	"github.com/dspipe/dspipe/internal/settings"
	"github.com/dspipe/dspipe/internal/stage"
)

// Version of the quality stage's logic, in lineage and the manifest.
const Version = "1"

// DefaultMinScore is processing.quality.min_score when a request sets none.
const DefaultMinScore = 0.5

// Rule names, as they appear in reasons and signals.
const (
	RuleEmptyTurns     = "empty_turns"
	RuleSingleTurn     = "single_turn"
	RuleOneSided       = "one_sided"
	RuleDuplicateTurns = "duplicate_turns"
	RuleCopiedResponse = "responder_copies_user"
	RuleRepetition     = "repetition"
	RuleGibberish      = "gibberish_turn"
	RuleNonAlphabetic  = "non_alphabetic"
	RuleWordLength     = "word_length"
	RuleBoilerplate    = "boilerplate"
	RuleTruncated      = "truncated_response"
	RuleLanguage       = "unknown_language"
)

// penalties: a failed rule multiplies the score by 1 - penalty. One clear
// defect (empty, copied, repeated, gibberish) takes a record below the
// default threshold; a weak signal (one turn, a response cut short) alone
// does not.
var penalties = map[string]float64{
	RuleEmptyTurns: 0.6, RuleCopiedResponse: 0.7, RuleDuplicateTurns: 0.6, RuleRepetition: 0.6, RuleGibberish: 0.7,
	RuleNonAlphabetic: 0.6, RuleWordLength: 0.4, RuleBoilerplate: 0.6, RuleOneSided: 0.6,
	RuleSingleTurn: 0.3, RuleTruncated: 0.2, RuleLanguage: 0.3,
}

// Result is the quality of one conversation.
type Result struct {
	Score float64 `json:"score"`
	// Signals are the measured values behind the score.
	Signals map[string]float64 `json:"signals"`
	// Failed lists the rules the conversation fails, worst first.
	Failed   []string `json:"failed"`
	Language string   `json:"language"`
}

// Output is one line of `dsctl analyze quality` (../shared/eval/README.md).
type Output struct {
	ID       any                `json:"id"`
	Score    float64            `json:"score"`
	Signals  map[string]float64 `json:"signals"`
	Reasons  []string           `json:"reasons"`
	Language string             `json:"language,omitempty"`
}

// Reasons is why the record is rejected at minScore: the failed rules, or
// nothing when it is kept.
func (r Result) Reasons(minScore float64) []string {
	if r.Score >= minScore {
		return []string{}
	}
	return r.Failed
}

// stopShare is the minimum share of function words in a turn of at least
// gibberishWords words (Gopher asks for two stop words per document; per
// turn we ask for 5% of the words, at least one).
const (
	gibberishWords = 12
	stopShare      = 0.05
)

var boilerplate = []string{"lorem ipsum", "terms of use", "privacy policy", "cookie policy", "use cookies", "javascript",
	"as an ai language model", "click here", "subscribe to", "all rights reserved"}

// Assess scores a conversation. emptyDropped is how many empty turns
// standardization removed from it.
func Assess(msgs []stage.Message, emptyDropped int) Result {
	r := Result{Signals: map[string]float64{}, Failed: []string{}}
	fail := func(rule string) {
		if !slices.Contains(r.Failed, rule) {
			r.Failed = append(r.Failed, rule)
		}
	}
	var turns, users, assistants int
	var all strings.Builder
	size := 0
	for _, m := range msgs {
		size += len(m.Content) + 1
	}
	all.Grow(size)
	for _, m := range msgs {
		if m.Role == stage.RoleSystem {
			continue
		}
		turns++
		if m.Role == stage.RoleUser {
			users++
		} else {
			assistants++
		}
		all.WriteString(m.Content)
		all.WriteByte('\n')
	}
	text := all.String()
	r.Signals["turns"] = float64(turns)
	r.Signals["empty_turns"] = float64(emptyDropped)
	if emptyDropped > 0 {
		fail(RuleEmptyTurns)
	}
	if turns < 2 {
		fail(RuleSingleTurn)
	}
	if users == 0 || assistants == 0 {
		if turns >= 2 {
			fail(RuleOneSided)
		}
	}
	lr := lang.Detect(text)
	r.Language = lr.Lang
	r.Signals["function_word_share"] = round3(lr.FunctionShare)
	if lr.Lang == lang.Unknown && lr.Words >= gibberishWords {
		fail(RuleLanguage)
	}

	// Turn-level rules.
	turnRepeats := false
	seen := make([]uint64, 0, len(msgs))
	dups, copied := 0, 0.0
	var prevUser []uint64
	gibberish := 0
	// The turns' word hashes and counts, one after another, are the
	// text's: turns are joined by a line break, which ends a word.
	hashes := make([]uint64, 0, len(text)/5+1)
	var ws stats
	for _, m := range msgs {
		if m.Role == stage.RoleSystem {
			continue
		}
		from := len(hashes)
		hashes = wordHashes(m.Content, hashes, &ws)
		hs := hashes[from:len(hashes):len(hashes)]
		th := turnHash(hs)
		if len(hs) > 0 && slices.Contains(seen, th) {
			dups++
		}
		seen = append(seen, th)
		if m.Role == stage.RoleAssistant && prevUser != nil {
			copied = max(copied, overlap(prevUser, hs))
		}
		if m.Role == stage.RoleUser {
			prevUser = hs
		}
		if len(hs) >= 50 {
			if ts := gramStats(hs); ts.top2 > 0.20 || ts.dup5 > 0.15 {
				turnRepeats = true
			}
		}
		if lr.Lang != lang.Unknown && !strings.HasPrefix(lr.Lang, "und") {
			if n, f := functionWords(m.Content, lr.Lang); n >= gibberishWords && float64(f) < max(2, stopShare*float64(n)) {
				gibberish++
			}
		}
	}
	if turns > 0 {
		r.Signals["duplicate_turn_share"] = round3(float64(dups) / float64(turns))
	}
	if turns > 0 && float64(dups)/float64(turns) > 0.30 {
		fail(RuleDuplicateTurns)
	}
	r.Signals["copied_response"] = round3(copied)
	if copied >= 0.8 {
		fail(RuleCopiedResponse)
	}
	r.Signals["gibberish_turns"] = float64(gibberish)
	if gibberish > 0 {
		fail(RuleGibberish)
	}

	// Word-level rules over the whole conversation.
	ws.gramStats(hashes)
	r.Signals["words"] = float64(ws.words)
	if ws.words > 0 {
		r.Signals["alpha_word_share"] = round3(float64(ws.alpha) / float64(ws.words))
		r.Signals["mean_word_length"] = round3(float64(ws.letters) / float64(max(1, ws.alpha)))
		r.Signals["top_2gram_share"] = round3(ws.top2)
		r.Signals["dup_5gram_share"] = round3(ws.dup5)
	}
	if ws.words >= 10 {
		if float64(ws.alpha)/float64(ws.words) < 0.8 {
			fail(RuleNonAlphabetic)
		}
		if mwl := float64(ws.letters) / float64(max(1, ws.alpha)); mwl < 3 || mwl > 10 {
			fail(RuleWordLength)
		}
	}
	// Gopher's thresholds hold within a turn; across turns a dialogue
	// echoes itself (a title repeated in the question, a supporter
	// reflecting the seeker's words), so the whole conversation gets twice
	// the room.
	if turnRepeats || ws.words >= 20 && (ws.top2 > 0.40 || ws.dup5 > 0.30) {
		fail(RuleRepetition)
	}
	if hasBoilerplate(text) {
		fail(RuleBoilerplate)
	}
	// The last response stops mid-sentence (C4's terminal punctuation).
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != stage.RoleAssistant {
			continue
		}
		c := strings.TrimRight(msgs[i].Content, " \t\n")
		if len(c) >= 40 && !strings.ContainsAny(c[len(c)-1:], ".!?\"')]}…:;*") && !strings.HasSuffix(c, "”") && !strings.HasSuffix(c, "’") {
			last := c[len(c)-1]
			if last >= 'a' && last <= 'z' || last == ',' {
				fail(RuleTruncated)
			}
		}
		break
	}
	score := 1.0
	for _, f := range r.Failed {
		score *= 1 - penalties[f]
	}
	slices.SortStableFunc(r.Failed, func(a, b string) int {
		switch {
		case penalties[a] > penalties[b]:
			return -1
		case penalties[a] < penalties[b]:
			return 1
		}
		return 0
	})
	r.Score = round3(score)
	return r
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// anchors are lower-case pieces of the boilerplate phrases that stay
// lower-case when a phrase is capitalised; a text holding none of them
// cannot hold a phrase (all-capitals text aside).
var anchors = []string{"orem ipsum", "erms of", "rivacy", "ookie", "avascript", "anguage model", "lick here", "ubscribe", "ights reserved"}

// anchorPairs has a bit for the first two bytes of every anchor.
var anchorPairs = func() (t [1 << 16 / 64]uint64) {
	for _, a := range anchors {
		k := uint16(a[0])<<8 | uint16(a[1])
		t[k>>6] |= 1 << (k & 63)
	}
	return t
}()

// hasAnchor reports whether text holds an anchor: one pass that looks up
// each pair of bytes and compares only where an anchor could start (where
// a search per anchor stops at every common letter, nine times).
func hasAnchor(text string) bool {
	for i := 0; i+1 < len(text); i++ {
		if k := uint16(text[i])<<8 | uint16(text[i+1]); anchorPairs[k>>6]&(1<<(k&63)) != 0 {
			for _, a := range anchors {
				if strings.HasPrefix(text[i:], a) {
					return true
				}
			}
		}
	}
	return false
}

// hasBoilerplate looks for the boilerplate phrases, ignoring ASCII case.
func hasBoilerplate(text string) bool {
	if !hasAnchor(text) {
		return false
	}
	for i := 0; i < len(text); i++ {
		c := text[i] | 0x20
		if c != 'l' && c != 't' && c != 'p' && c != 'c' && c != 'u' && c != 'j' && c != 'a' && c != 's' {
			continue
		}
		for _, b := range boilerplate {
			if b[0] == c && len(text)-i >= len(b) && strings.EqualFold(text[i:i+len(b)], b) {
				return true
			}
		}
	}
	return false
}

// turnHash identifies a turn's words, ignoring case and spacing.
func turnHash(hs []uint64) uint64 {
	var h uint64 = 14695981039346656037
	for _, w := range hs {
		h = (h ^ w) * 1099511628211
	}
	return h
}

// overlap is the share of b's word 3-grams found in a (1 when b repeats
// a); both are word hashes.
func overlap(a, b []uint64) float64 {
	// Short turns ("bye", "thank you so much") are echoed in any
	// conversation.
	if len(b) < 5 || len(a) < 5 {
		return 0
	}
	if slices.Equal(a, b) {
		return 1
	}
	t := gramTables.Get().(*gramTable)
	defer gramTables.Put(t)
	t.reset(len(a))
	for i := 0; i+3 <= len(a); i++ {
		t.add((a[i]*31+a[i+1])*31 + a[i+2])
	}
	hit := 0
	for i := 0; i+3 <= len(b); i++ {
		if t.has((b[i]*31+b[i+1])*31 + b[i+2]) {
			hit++
		}
	}
	return float64(hit) / float64(len(b)-2)
}

// functionWords counts the words of a turn and those that are function
// words of language l.
func functionWords(s, l string) (words, function int) { return lang.FunctionWords(s, l) }

type stats struct {
	words, alpha, letters int
	top2, dup5            float64
}

// wordHashes appends the hash of each space-separated word of text (ASCII
// lower-cased, punctuation ignored) to hs, and counts into st the words,
// those that hold a letter, and their letters.
func wordHashes(text string, hs []uint64, st *stats) []uint64 {
	in := false
	var h uint64
	letters := 0
	end := func() {
		hs = append(hs, h)
		st.words++
		if letters > 0 {
			st.alpha++
			st.letters += letters
		}
		in, letters = false, 0
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			if in {
				end()
			}
			continue
		}
		if !in {
			in, h = true, 14695981039346656037
		}
		if c|0x20 >= 'a' && c|0x20 <= 'z' || c >= 0x80 {
			letters++
		}
		if c >= 'A' && c <= 'Z' {
			c |= 0x20
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 || c == '\'' {
			h = (h ^ uint64(c)) * 1099511628211
		}
	}
	if in {
		end()
	}
	return hs
}

// gramStats sets st's repetition figures from the text's word hashes.
func (st *stats) gramStats(hashes []uint64) {
	g := gramStats(hashes)
	st.top2, st.dup5 = g.top2, g.dup5
}

// gramStats is the share of words in the most frequent 2-gram and the
// share of words inside 5-grams that occur more than once (Gopher measures
// both in characters; words are close enough here and cheaper).
func gramStats(hashes []uint64) stats {
	var st stats
	n := len(hashes)
	if n < 5 {
		return st
	}
	t := gramTables.Get().(*gramTable)
	defer gramTables.Put(t)
	// The most frequent word bigram.
	t.reset(n)
	best := 1
	for i := 0; i+2 <= n; i++ {
		best = max(best, t.add(hashes[i]*31+hashes[i+1]))
	}
	if best > 1 {
		st.top2 = float64(best*2) / float64(n)
	}
	// Words covered by a 5-gram seen before: positions in order, so the
	// first occurrence of each 5-gram is the one not counted.
	t.reset(n)
	covered := 0
	coveredTo := 0 // words before this position are counted already
	for i := 0; i+5 <= n; i++ {
		h := hashes[i]
		for k := 1; k < 5; k++ {
			h = h*1000003 + hashes[i+k]
		}
		if t.add(h>>20) > 1 {
			from := max(i, coveredTo)
			covered += i + 5 - from
			coveredTo = i + 5
		}
	}
	st.dup5 = float64(covered) / float64(n)
	return st
}

// gramTable counts keys in one pass: open addressing over a power of two
// at least twice the keys, reused across calls (one per goroutine at a
// time, from a pool).
type gramTable struct {
	keys   []uint64
	counts []int32
	used   []bool
	mask   uint64
}

var gramTables = sync.Pool{New: func() any { return &gramTable{} }}

func (t *gramTable) reset(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if cap(t.keys) < size {
		t.keys, t.counts, t.used = make([]uint64, size), make([]int32, size), make([]bool, size)
	}
	t.keys, t.counts, t.used = t.keys[:size], t.counts[:size], t.used[:size]
	clear(t.used)
	t.mask = uint64(size - 1)
}

// has reports whether key was added.
func (t *gramTable) has(key uint64) bool {
	i := (key * 0x9e3779b97f4a7c15 >> 17) & t.mask
	for t.used[i] {
		if t.keys[i] == key {
			return true
		}
		i = (i + 1) & t.mask
	}
	return false
}

// add counts key once more and returns its count.
func (t *gramTable) add(key uint64) int {
	i := (key * 0x9e3779b97f4a7c15 >> 17) & t.mask
	for t.used[i] && t.keys[i] != key {
		i = (i + 1) & t.mask
	}
	if !t.used[i] {
		t.used[i], t.keys[i], t.counts[i] = true, key, 0
	}
	t.counts[i]++
	return int(t.counts[i])
}

// Settings are a request's processing.quality with defaults applied.
type Settings struct {
	MinScore float64 `json:"min_score"`
}

// RequestSettings is the processing.quality object a request may carry.
type RequestSettings struct {
	Enabled  *bool    `json:"enabled,omitempty"`
	MinScore *float64 `json:"min_score,omitempty"`
}

// ParseRequest validates a request's processing.quality; the error says
// what to fix.
func ParseRequest(raw json.RawMessage) (RequestSettings, error) {
	r, absent, err := settings.Object[RequestSettings](raw, "processing.quality", "enabled and min_score")
	if absent || err != nil {
		return r, err
	}
	if err := settings.Fraction("processing.quality.min_score", r.MinScore); err != nil {
		return r, err
	}
	return r, nil
}

// Resolve applies the defaults; ok is false when the stage is off.
func Resolve(raw json.RawMessage) (Settings, bool) {
	r, _ := ParseRequest(raw) // validated by the API already
	s := Settings{MinScore: DefaultMinScore}
	if r.Enabled != nil && !*r.Enabled {
		return s, false
	}
	if r.MinScore != nil {
		s.MinScore = *r.MinScore
	}
	return s, true
}
