package pii

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/dspipe/dspipe/internal/modelfile"
)

// The name and place tagger: an averaged perceptron over hashed token
// features, decoded greedily left to right (each word sees the tags
// already given to the two before it). It is trained by `make train`
// (train.go) from the openly licensed corpora in traindata/ (see its
// NOTICE) and its weights are embedded. Its features include what the
// context rules of names.go said about the word, so the rules' knowledge
// (titles, cue words, the common-word list) and the data's (lower-case
// and single names, sentence-initial names, social-media text) combine in
// one decision.
//
// Only candidate words are scored: capitalised words and words a
// gazetteer lists as a given name or a place. Every other word is O
// without a look at the weights, which keeps the tagger cheap on
// ordinary lower-case prose. Training applies the same rule.

//go:embed tagger.bin.gz
var taggerGz []byte

// Tags, in BIO form.
const (
	tagO = iota
	tagBPer
	tagIPer
	tagBLoc
	tagILoc
	tagBOrg
	tagIOrg
	tagBMisc
	tagIMisc
	nTags
)

// Gazetteer bits of a lower-cased word.
const (
	gzFirst    = 3 << 0 // given-name rank class 1..3 (3: top 100)
	gzLast     = 3 << 2 // surname rank class 1..3 (3: top 1,000)
	gzCity     = 1 << 4
	gzFirstOff = 0
	gzLastOff  = 2
	gzMask     = 1<<5 - 1
	// Not in the model file: added from the word lists when it loads.
	wCommon = 1 << 5 // the common-word list has it as written
	wStop   = 1 << 6
)

// tagger is a trained model.
type tagger struct {
	bits    uint    // log2 of the number of feature buckets
	weights []int16 // bucket*nTags + tag
	gaz     map[string]uint8
	// words holds, per lower-cased word, its gazetteer bits and whether
	// it is a common word or a stopword: one lookup per word of text.
	words map[string]uint8
}

// index builds m.words from the gazetteer and the word lists.
func (m *tagger) index() {
	loadLex()
	m.words = make(map[string]uint8, len(lexicon)+len(m.gaz))
	for w := range lexicon {
		m.words[w] |= wCommon
	}
	for w := range stopwords {
		m.words[w] |= wStop
	}
	for w, g := range m.gaz {
		m.words[w] |= g
	}
}

// mustTagger decodes the embedded model once. A model that does not
// decode is a build defect (TestTaggerModelIsReproducible catches it), so
// it panics rather than detect fewer names.
var mustTagger = sync.OnceValue(func() *tagger {
	m, err := decodeTagger(taggerGz)
	if err != nil {
		panic(err)
	}
	return m
})

const taggerMagic = "dspipe-ner/1\n"

// encode writes the model (internal/modelfile): bits, the gazetteer
// (sorted, one "word\x00bits" entry after another), the weights
// little-endian.
func (m *tagger) encode() ([]byte, error) {
	var raw bytes.Buffer
	raw.WriteByte(byte(m.bits))
	keys := make([]string, 0, len(m.gaz))
	for k := range m.gaz {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	_ = binary.Write(&raw, binary.LittleEndian, uint32(len(keys)))
	for _, k := range keys {
		raw.WriteString(k)
		raw.WriteByte(0)
		raw.WriteByte(m.gaz[k])
	}
	_ = binary.Write(&raw, binary.LittleEndian, m.weights)
	return modelfile.Encode(taggerMagic, raw.Bytes())
}

func decodeTagger(gz []byte) (*tagger, error) {
	raw, err := modelfile.Decode(taggerMagic, gz)
	if err != nil {
		return nil, fmt.Errorf("pii: tagger model: %w", err)
	}
	if len(raw) < 5 {
		return nil, errors.New("pii: tagger model: truncated header")
	}
	m := &tagger{bits: uint(raw[0])}
	n := binary.LittleEndian.Uint32(raw[1:5])
	raw = raw[5:]
	m.gaz = make(map[string]uint8, n)
	for i := uint32(0); i < n; i++ {
		z := bytes.IndexByte(raw, 0)
		if z < 0 || z+1 >= len(raw) {
			return nil, errors.New("pii: tagger model: truncated gazetteer")
		}
		m.gaz[string(raw[:z])] = raw[z+1]
		raw = raw[z+2:]
	}
	size := (1 << m.bits) * nTags
	if len(raw) != 2*size {
		return nil, errors.New("pii: tagger model: weights have the wrong size")
	}
	m.weights = make([]int16, size)
	for i := range m.weights {
		m.weights[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	m.index()
	return m, nil
}

// Rule classes: what the context rules and scanners said about a word.
const (
	ruleNone = iota
	rulePerson
	ruleLocation
	ruleOrg
	ruleOther // a structured identifier (URL, email, handle, number…)
)

// tword is one word with what the features need.
type tword struct {
	lower  string // lower-cased
	text   string
	shape  uint32 // hash of the word's shape (0 until a feature needs it)
	before byte   // last non-space byte before the word ('^' at the start, '\n' on a new line)
	after  byte   // first non-space byte after the word ('$' at the end)
	gaz    uint8  // gazetteer bits
	common bool   // an ordinary word (common-word list, inflections included)
	rule   uint8
	strong bool // the rule that gave rule is a confident one (score ≥ ruleStrong)
	cap    bool
	cand   bool
	lowerH uint64 // hash of lower
}

// Feature templates.
const (
	fBias = iota + 1
	fWord
	fSuf3
	fSuf2
	fPre3
	fShape
	fPrev
	fNext
	fPrev2
	fNext2
	fPrevShape
	fNextShape
	fBefore
	fAfter
	fGaz
	fCommon
	fRule
	fRuleShape
	fStartShape
	fPrevWord
	fWordBefore
	fNextWord
	// Dynamic: the tags before.
	fTag1
	fTag12
	fTag1Word
	fTag1Shape
	fTag1Rule
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hstr(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func hnum(h, v uint64) uint64 {
	h ^= v
	h *= fnvPrime
	h ^= h >> 29
	return h
}

func seed(tmpl int) uint64 { return hnum(fnvOffset, uint64(tmpl)) }

// shapeOf maps letters to X/x, digits to d, other runes to themselves,
// collapsing runs longer than two: "McDonald" → "XxXxx", "2nd" → "dx".
func shapeOf(w string) uint64 {
	h := uint64(fnvOffset)
	var last rune = -1
	run := 0
	for _, r := range w {
		c := r
		switch {
		case unicode.IsUpper(r):
			c = 'X'
		case unicode.IsLetter(r):
			c = 'x'
		case unicode.IsDigit(r):
			c = 'd'
		}
		if c == last {
			run++
			if run >= 2 {
				continue
			}
		} else {
			run = 0
		}
		last = c
		h = hnum(h, uint64(c))
	}
	return h
}

// prepare fills tw for the words of d: lower-cased text, shape, the
// punctuation around each word, gazetteer bits and the rule class from
// spans (the scanners' and context rules' output).
func (m *tagger) prepare(tw []tword, s, lower string, ws []word, spans []Span) []tword {
	tw = tw[:0]
	for _, w := range ws {
		t := tword{lower: lowerWord(s, lower, w)}
		t.lowerH = hstr(fnvOffset, t.lower)
		t.text = w.text
		t.before = '^'
		for k := w.start - 1; k >= 0; k-- {
			if c := s[k]; c != ' ' && c != '\t' {
				t.before = c
				break
			}
		}
		t.after = '$'
		for k := w.end; k < len(s); k++ {
			if c := s[k]; c != ' ' && c != '\t' {
				t.after = c
				break
			}
		}
		r, _ := utf8.DecodeRuneInString(w.text)
		t.cap = unicode.IsUpper(r)
		fl := m.words[t.lower]
		t.gaz = fl & gzMask
		t.common = fl&wCommon != 0 || fl == 0 && !t.cap && len(t.lower) >= 3 && commonLower(t.lower)
		if t.cap && fl&wCommon == 0 {
			t.common = commonLower(t.lower)
		}
		stop := fl&wStop != 0
		t.cand = !isNumber(t.lower) && (t.cap || t.gaz&(gzFirst|gzCity) != 0 && !stop || !t.common && !stop && oddWord(t.lower))
		tw = append(tw, t)
	}
	// Rule classes: spans are few; mark the words each covers.
	for _, sp := range spans {
		c := uint8(ruleOther)
		switch sp.Type {
		case Person:
			c = rulePerson
		case Location:
			c = ruleLocation
		case Organization:
			c = ruleOrg
		}
		k := sort.Search(len(ws), func(i int) bool { return ws[i].end > sp.Start })
		for ; k < len(ws) && ws[k].start < sp.End; k++ {
			if c == ruleOther || tw[k].rule != ruleOther && (tw[k].rule == ruleNone || c < tw[k].rule) {
				tw[k].rule = c
				tw[k].strong = sp.Score >= ruleStrong
			}
		}
	}
	for i := range tw {
		t := &tw[i]
		t.cand = t.rule != ruleOther && t.before != '@' && t.before != '#' && (t.cand || t.rule != ruleNone && !isNumber(t.lower))
	}
	return tw
}

// lowerWord is a word lower-cased: for an ASCII word, its slice of the
// document's lower-cased text (no allocation); lower is asciiLower(s).
func lowerWord(s, lower string, w word) string {
	for i := w.start; i < w.end; i++ {
		if s[i] >= 0x80 {
			return lc(w.text)
		}
	}
	return lower[w.start:w.end]
}

// oddWord: a lower-case word of ASCII letters, three or more (the
// caller checks that no dictionary lists it: a name written in lower
// case, a nickname).
func oddWord(l string) bool {
	if len(l) < 3 {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return !derived(l)
}

// derived reports whether l is an ordinary word the common-word list
// lacks only in this form: a known word with an English suffix
// ("responder", "overthinking", "hopelessness").
func derived(l string) bool {
	for _, suf := range []string{"ers", "er", "ors", "or", "ings", "ly", "ness", "ment", "ments", "ful", "less", "able", "ible",
		"ity", "ive", "ize", "ise", "ism", "ist", "ists", "ation", "ations", "al", "y"} {
		if stem, ok := strings.CutSuffix(l, suf); ok && len(stem) >= 3 && (commonLower(stem) || commonLower(stem+"e")) {
			return true
		}
	}
	return false
}

// static appends the bucket of every tag-independent feature of word i.
func (m *tagger) static(f []uint32, tw []tword, i int) []uint32 {
	mask := uint64(1)<<m.bits - 1
	add := func(h uint64) { f = append(f, uint32(h&mask)) }
	t := &tw[i]
	word := func(k int) (uint64, uint32) {
		switch {
		case k < 0:
			return 1, 1
		case k >= len(tw):
			return 2, 2
		}
		if tw[k].shape == 0 {
			tw[k].shape = uint32(shapeOf(tw[k].text)) | 1<<31
		}
		return tw[k].lowerH, tw[k].shape
	}
	word(i)
	p1, ps := word(i - 1)
	n1, ns := word(i + 1)
	p2, _ := word(i - 2)
	n2, _ := word(i + 2)
	add(seed(fBias))
	add(hnum(seed(fWord), t.lowerH))
	l := t.lower
	if len(l) > 3 {
		add(hstr(seed(fSuf3), l[len(l)-3:]))
		add(hstr(seed(fPre3), l[:3]))
	}
	if len(l) > 2 {
		add(hstr(seed(fSuf2), l[len(l)-2:]))
	}
	add(hnum(seed(fShape), uint64(t.shape)))
	add(hnum(seed(fPrev), p1))
	add(hnum(seed(fNext), n1))
	add(hnum(seed(fPrev2), p2))
	add(hnum(seed(fNext2), n2))
	add(hnum(hnum(seed(fPrevShape), uint64(ps)), uint64(t.shape)))
	add(hnum(hnum(seed(fNextShape), uint64(ns)), uint64(t.shape)))
	add(hnum(hnum(seed(fBefore), uint64(t.before)), b2u(t.cap)))
	add(hnum(seed(fAfter), uint64(t.after)))
	add(hnum(hnum(seed(fGaz), uint64(t.gaz)), b2u(t.cap)))
	add(hnum(seed(fCommon), b2u(t.common)<<2|b2u(properTitle(l))<<1|b2u(t.cap)))
	add(hnum(seed(fRule), uint64(t.rule)<<1|b2u(t.strong)))
	add(hnum(hnum(seed(fRuleShape), uint64(t.rule)), uint64(t.shape)))
	start := t.before == '^' || t.before == '\n' || t.before == '.' || t.before == '!' || t.before == '?' || t.before == ':' || t.before == '"'
	add(hnum(hnum(seed(fStartShape), b2u(start)), uint64(t.shape)))
	add(hnum(hnum(seed(fPrevWord), p1), t.lowerH))
	add(hnum(hnum(seed(fWordBefore), uint64(t.before)), t.lowerH))
	add(hnum(hnum(seed(fNextWord), n1), t.lowerH))
	return f
}

// dynamic appends the buckets of the features of word i that depend on
// the tags of the two words before it.
func (m *tagger) dynamic(f []uint32, tw []tword, i int, tags []uint8) []uint32 {
	mask := uint64(1)<<m.bits - 1
	t1, t2 := uint64(nTags), uint64(nTags)
	if i > 0 {
		t1 = uint64(tags[i-1])
	}
	if i > 1 {
		t2 = uint64(tags[i-2])
	}
	t := &tw[i]
	f = append(f,
		uint32(hnum(seed(fTag1), t1)&mask),
		uint32(hnum(hnum(seed(fTag12), t1), t2)&mask),
		uint32(hnum(hnum(seed(fTag1Word), t1), t.lowerH)&mask),
		uint32(hnum(hnum(seed(fTag1Shape), t1), uint64(t.shape))&mask),
		uint32(hnum(hnum(seed(fTag1Rule), t1), uint64(t.rule))&mask))
	return f
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// properTitle reports whether the proper-noun list holds l with its
// first ASCII letter upper-cased ("john" → "John"), without building the
// string: the lookup of a converted byte slice does not allocate.
func properTitle(l string) bool {
	if l == "" || l[0] < 'a' || l[0] > 'z' || len(l) > 64 {
		return proper(titleCase(l))
	}
	var buf [64]byte
	b := append(buf[:0], l...)
	b[0] -= 32
	loadLex()
	return propers[string(b)]
}

// titleCase upper-cases the first ASCII letter ("john" → "John"), the
// form the proper-noun list holds.
func titleCase(l string) string {
	if l == "" || l[0] < 'a' || l[0] > 'z' {
		return l
	}
	return string(l[0]-32) + l[1:]
}

// allowed reports whether tag may follow prev (I-X only after B-X or I-X).
func allowed(prev, tag uint8) bool {
	if tag == tagO || tag%2 == 1 {
		return true
	}
	return prev == tag || prev == tag-1
}

// best returns the highest-scoring allowed tag for the features f.
func (m *tagger) best(f []uint32, prev uint8, scores *[nTags]int32) uint8 {
	*scores = [nTags]int32{}
	for _, b := range f {
		w := (*[nTags]int16)(m.weights[int(b)*nTags:]) // one bounds check, the loop unrolled
		for k := range scores {
			scores[k] += int32(w[k])
		}
	}
	bt, bs := uint8(tagO), scores[tagO]
	for k := uint8(1); k < nTags; k++ {
		if scores[k] > bs && allowed(prev, k) {
			bt, bs = k, scores[k]
		}
	}
	return bt
}

// tagWords decodes the tags of tw into tags.
func (m *tagger) tagWords(tw []tword, tags []uint8, f []uint32) ([]uint8, []uint32) {
	tags = tags[:0]
	var scores [nTags]int32
	for i := range tw {
		prev := uint8(tagO)
		if i > 0 {
			prev = tags[i-1]
		}
		if !tw[i].cand {
			tags = append(tags, tagO)
			continue
		}
		f = m.static(f[:0], tw, i)
		f = m.dynamic(f, tw, i, tags)
		tags = append(tags, m.best(f, prev, &scores))
	}
	return tags, f
}

// scanTagged appends the tagger's PERSON, LOCATION and ORGANIZATION
// spans (a B tag and the I tags of its type that follow it) that touch
// no span of the rules.
func scanTagged(m *tagger, d *doc, out []Span) []Span {
	d.tw = m.prepare(d.tw, d.s, d.lower, d.words, out)
	d.tags, d.feats = m.tagWords(d.tw, d.tags, d.feats)
	for i := 0; i < len(d.tags); i++ {
		tg := d.tags[i]
		if tg == tagO || tg >= tagBMisc {
			continue
		}
		typ := [...]string{Person, Location, Organization}[(tg-1)/2]
		inside := (tg-1)/2*2 + 2
		j, ruled := i, d.tw[i].rule != ruleNone
		for j+1 < len(d.tags) && d.tags[j+1] == inside {
			j++
			ruled = ruled || d.tw[j].rule != ruleNone
		}
		// Where a rule found a name the rule's span stands (its edges
		// are exact: "Mr. Okafor" is a person named Okafor); the tagger
		// adds what no rule saw.
		if j == i && placeByCue(d, i) {
			typ = Location // "moved to denver": a city that is also a name
		}
		if !ruled && (j > i || !notAName(d, i)) {
			out = append(out, Span{d.words[i].start, d.words[j].end, typ, 0.6})
		}
		i = j
	}
	return lowerPlaces(d, out)
}

// notAName: a word the tagger alone may not call a name or place: a
// title or honorific ("Mr", "Princess"), a function word, a nationality
// adjective ("German bank"), or an ordinary word that no gazetteer lists
// as a given name or city ("Mystery", "University").
func notAName(d *doc, i int) bool {
	t := &d.tw[i]
	l := strings.TrimSuffix(t.lower, ".")
	return titles[l] || honorifics[l] || orgWords[l] || t.gaz&wStop != 0 || stopwords[l] || demonym(d.words[i].text) ||
		t.common && t.gaz&(gzFirst|gzCity) == 0
}

var honorifics = toSet(`princess prince king queen duke duchess lord lady sir dame saint st captain capt sergeant sgt officer judge
senator president governor mayor coach pastor father brother sister uncle aunt`)

// lowerPlaceCues are the words before a place that make a lower-case
// city or country name a place ("moved to denver", "from ohio").
var lowerPlaceCues = []string{"moved to", "move to", "moving to", "live in", "lives in", "living in", "lived in", "born in",
	"grew up in", "raised in", "from", "visiting", "visit", "trip to", "flew to", "drove to", "back to", "based in", "near"}

// lowerPlaces adds the lower-case (or all-caps) cities, countries and
// states that follow a place cue and that no rule or tag covered. A city
// that is also an ordinary word ("bath", "reading") is left alone.
func lowerPlaces(d *doc, out []Span) []Span {
	for i, t := range d.tw {
		if d.tags[i] != tagO || t.rule != ruleNone {
			continue
		}
		w := d.words[i]
		if (!t.cap || isAllCapsWord(w.text)) && placeByCue(d, i) ||
			len(w.text) == 2 && w.text[0]-'A' < 26 && w.text[1]-'A' < 26 && stateCodes[w.text] && endsWithAny(trimOpeners(d.lower[max(0, w.start-16):w.start]), stateCues) {
			out = append(out, Span{w.start, w.end, Location, 0.55})
		}
	}
	return out
}

// stateCues come before a state's postal code used as a place ("in NJ");
// "in" alone would take "OK" and "ME" everywhere, so the code must be
// written in capitals and follow one of these.
var stateCues = []string{"in", "from", "live in", "lives in", "living in", "moved to", "move to", "born in", "near", "to"}

// placeByCue: word i is a city, country or state that is not an
// ordinary word, after a place cue.
func placeByCue(d *doc, i int) bool {
	t := &d.tw[i]
	if t.common || t.gaz&gzCity == 0 && !places[t.lower] {
		return false
	}
	w := d.words[i]
	return endsWithAny(trimOpeners(d.lower[max(0, w.start-16):w.start]), lowerPlaceCues)
}

// isAllCapsWord: two or more letters, none lower-case ("OHIO").
func isAllCapsWord(w string) bool {
	if len(w) < 2 {
		return false
	}
	letters := false
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= 0x80:
			return strings.ToUpper(w) == w && strings.ToLower(w) != w
		case c >= 'a' && c <= 'z':
			return false
		case c >= 'A' && c <= 'Z':
			letters = true
		}
	}
	return letters
}

// ruleStrong is the score from which a rule's name or place counts as a
// confident one in the features: the rules that fire on a cue (a title,
// "my name is", "lives in", a known country) rather than on capitals
// alone.
const ruleStrong = 0.6
