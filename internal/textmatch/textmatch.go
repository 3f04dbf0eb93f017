// Package textmatch finds many phrases in lower-cased text in one pass: it
// visits each word start once and tries only the phrases that begin with
// that word (or a stem that prefixes it), instead of searching the whole
// text once per phrase. Matches are whole words unless the phrase is a
// stem ("masturbat" matches "masturbating").
package textmatch

import "strings"

// Phrase is one thing to find; Stem lets the last word run on.
type Phrase struct {
	Text string
	Stem bool
}

// Matcher finds a fixed set of phrases.
type Matcher struct {
	phrases []Phrase
	byFirst map[string][]int // first word → phrase indices
	// firsts has a bit for the shape (length, first and last byte) of
	// every first word: most words of a text begin no phrase, and the bit
	// says so without hashing the word.
	firsts []uint64
	stems  [256][]int // single-word stems by their first byte, tried by prefix
}

// shapeOf is a word's shape: its length (up to 15), first and last byte.
func shapeOf(w string) uint32 {
	return uint32(min(len(w), 15))<<16 | uint32(w[0])<<8 | uint32(w[len(w)-1])
}

// IsWordByte reports whether c belongs to a word: ASCII letters and
// digits, and any byte of a multi-byte character.
func IsWordByte(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 }

// New builds a matcher; phrases must be lower-case.
func New(phrases []Phrase) *Matcher {
	m := &Matcher{phrases: phrases, byFirst: map[string][]int{}, firsts: make([]uint64, 1<<20/64)}
	for i, p := range phrases {
		first := p.Text
		if k := strings.IndexFunc(p.Text, func(r rune) bool { return r < 0x80 && !IsWordByte(byte(r)) }); k >= 0 {
			first = p.Text[:k]
		} else if p.Stem {
			if p.Text != "" {
				m.stems[p.Text[0]] = append(m.stems[p.Text[0]], i)
			}
			continue
		}
		m.byFirst[first] = append(m.byFirst[first], i)
		if first != "" {
			h := shapeOf(first)
			m.firsts[h>>6] |= 1 << (h & 63)
		}
	}
	return m
}

// Len is the number of phrases.
func (m *Matcher) Len() int { return len(m.phrases) }

// Any reports whether any phrase occurs in s.
func (m *Matcher) Any(s string) bool {
	found := false
	m.Each(s, func(int, int, int) { found = true })
	return found
}

// Each calls fn for every match, in text order: the phrase's index and its
// byte range in s.
func (m *Matcher) Each(s string, fn func(phrase, start, end int)) {
	for i := 0; i < len(s); {
		if !IsWordByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && IsWordByte(s[j]) {
			j++
		}
		if h := shapeOf(s[i:j]); m.firsts[h>>6]&(1<<(h&63)) != 0 {
			for _, k := range m.byFirst[s[i:j]] {
				p := m.phrases[k]
				if strings.HasPrefix(s[i:], p.Text) {
					end := i + len(p.Text)
					if p.Stem || end == len(s) || !IsWordByte(s[end]) || !IsWordByte(p.Text[len(p.Text)-1]) {
						fn(k, i, end)
					}
				}
			}
		}
		for _, k := range m.stems[s[i]] {
			if p := m.phrases[k]; strings.HasPrefix(s[i:j], p.Text) {
				fn(k, i, j)
			}
		}
		i = j
	}
}

// Normalise lower-cases text and drops apostrophes, so "I'm", "Im" and
// "I’m" all match the phrase "im".
func Normalise(s string) string {
	// One pass for ASCII text (most of it); any other byte takes the
	// Unicode path.
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return normaliseUnicode(s)
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '\'' || c == '`':
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func normaliseUnicode(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\'', '’', '`':
			return -1
		case '“', '”', '„', '«', '»', '—', '–', '…', '‘':
			// Curly quotes and dashes are punctuation, not letters
			// of a word: “africans” is the word africans.
			return ' '
		}
		return r
	}, strings.ToLower(s))
}
