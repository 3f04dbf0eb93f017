package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Masking strategies.
const (
	MaskTag       = "tag"       // [PHONE]
	MaskPseudonym = "pseudonym" // [PERSON_1], the same for the same value within a conversation
	MaskHash      = "hash"      // [PERSON:3f2a91c0], a salted hash, the same across conversations
)

// Masker replaces detected identifiers. One Masker serves one conversation,
// so a person keeps one pseudonym across all turns.
type Masker struct {
	Strategy string
	Salt     []byte
	seen     map[string]int // type + normalised value → pseudonym number
	count    map[string]int // per type
}

// NewMasker returns a masker for one conversation.
func NewMasker(strategy string, salt []byte) *Masker {
	if strategy == "" {
		strategy = MaskTag
	}
	return &Masker{Strategy: strategy, Salt: salt, seen: map[string]int{}, count: map[string]int{}}
}

// Mask returns text with every span replaced.
func (m *Masker) Mask(text string, spans []Span) string {
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	at := 0
	for _, s := range spans {
		if s.Start < at || s.End > len(text) {
			continue
		}
		b.WriteString(text[at:s.Start])
		b.WriteString(m.replacement(s.Type, text[s.Start:s.End]))
		at = s.End
	}
	b.WriteString(text[at:])
	return b.String()
}

func (m *Masker) replacement(typ, value string) string {
	switch m.Strategy {
	case MaskPseudonym:
		key := typ + "\x00" + normalise(value)
		n, ok := m.seen[key]
		if !ok {
			m.count[typ]++
			n = m.count[typ]
			m.seen[key] = n
		}
		return fmt.Sprintf("[%s_%d]", typ, n)
	case MaskHash:
		h := hmac.New(sha256.New, m.Salt)
		h.Write([]byte(typ + "\x00" + normalise(value)))
		return "[" + typ + ":" + hex.EncodeToString(h.Sum(nil)[:4]) + "]"
	}
	return "[" + typ + "]"
}

// normalise makes "Mary", "MARY" and "mary " one person.
func normalise(v string) string {
	return strings.ToLower(strings.Join(strings.Fields(v), " "))
}
