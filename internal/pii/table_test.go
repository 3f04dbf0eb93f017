package pii

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEachIdentifierTypeWithItsOffsets: one sentence per Safe Harbor type
// (and ORGANIZATION); the identifier is found with that type at exactly
// the bytes it occupies, in text with multi-byte characters before it so
// that offsets are bytes, not runes.
func TestEachIdentifierTypeWithItsOffsets(t *testing.T) {
	for _, c := range []struct {
		typ, text, value string
	}{
		{Person, "Ça va — my therapist Dr. Margaret Okafor said to rest.", "Margaret Okafor"},
		{Address, "Ça va — I live at 221 Baker Street now.", "221 Baker Street"},
		{Location, "Ça va — we moved to Sacramento last spring.", "Sacramento"},
		{ZIP, "Ça va — my zip code is 94110 if that helps.", "94110"},
		{Date, "Ça va — it happened on March 3, 2021 at home.", "March 3, 2021"},
		{Age, "Ça va — I am 87 years old and tired.", "87"}, // the number alone is the identifier
		{Phone, "Ça va — call me on (415) 555-0132 tonight.", "(415) 555-0132"},
		{Email, "Ça va — write to ana.ruiz@example.org please.", "ana.ruiz@example.org"},
		{SSN, "Ça va — my ssn is 123-45-6789, sadly.", "123-45-6789"},
		{CreditCard, "Ça va — card 4111 1111 1111 1111 was stolen.", "4111 1111 1111 1111"},
		{Account, "Ça va — IBAN GB82 WEST 1234 5698 7654 32 is mine.", "GB82 WEST 1234 5698 7654 32"},
		{IPAddress, "Ça va — my router is 192.168.10.254 at home.", "192.168.10.254"},
		{URL, "Ça va — see https://example.com/me?id=7 for more.", "https://example.com/me?id=7"},
		{ID, "Ça va — my medical record number is MRN-00481516.", "MRN-00481516"},
		{Username, "Ça va — follow me at @sadgirl_1999 there.", "@sadgirl_1999"},
	} {
		t.Run(c.typ, func(t *testing.T) {
			start := strings.Index(c.text, c.value)
			require.GreaterOrEqual(t, start, 0)
			want := Span{Start: start, End: start + len(c.value), Type: c.typ}
			var got []Span
			for _, s := range Detect(c.text) {
				got = append(got, Span{Start: s.Start, End: s.End, Type: s.Type})
			}
			require.Contains(t, got, want, "%q: found %v", c.text, types(c.text))
		})
	}
}

// TestMaskingStrategies: the same text under each strategy. Tags name the
// type; pseudonyms number each distinct value per type, the same value
// (in any case) keeping its number across turns of one conversation;
// salted hashes are the same for the same value in any conversation, and
// change with the salt. Masking leaves everything else byte for byte.
func TestMaskingStrategies(t *testing.T) {
	turn1 := "I told Maria Lopez and then maria lopez told John Smith; call 415-555-0132."
	turn2 := "Later John Smith called again."
	mask := func(m *Masker, text string) string { return m.Mask(text, Detect(text)) }

	tag := NewMasker(MaskTag, nil)
	require.Equal(t, "I told [PERSON] and then [PERSON] told [PERSON]; call [PHONE].", mask(tag, turn1))

	ps := NewMasker(MaskPseudonym, nil)
	require.Equal(t, "I told [PERSON_1] and then [PERSON_1] told [PERSON_2]; call [PHONE_1].", mask(ps, turn1))
	require.Equal(t, "Later [PERSON_2] called again.", mask(ps, turn2), "one conversation, one pseudonym per person")
	require.Equal(t, "Later [PERSON_1] called again.", mask(NewMasker(MaskPseudonym, nil), turn2), "a new conversation numbers afresh")

	h1 := mask(NewMasker(MaskHash, []byte("salt-a")), turn2)
	require.Regexp(t, `^Later \[PERSON:[0-9a-f]{8}\] called again\.$`, h1)
	require.Equal(t, h1, mask(NewMasker(MaskHash, []byte("salt-a")), turn2), "the same across conversations")
	require.NotEqual(t, h1, mask(NewMasker(MaskHash, []byte("salt-b")), turn2), "keyed by the salt")
	require.Contains(t, mask(NewMasker(MaskHash, []byte("salt-a")), turn1), strings.TrimPrefix(strings.TrimSuffix(h1, " called again."), "Later "),
		"John Smith hashes alike in both turns")

	require.Equal(t, "nothing to hide here", NewMasker(MaskTag, nil).Mask("nothing to hide here", nil))
	// Spans that overlap or run past the text are skipped, never sliced.
	require.Equal(t, "[PERSON] b", NewMasker(MaskTag, nil).Mask("ab b", []Span{{0, 2, Person, 1}, {1, 3, Person, 1}, {3, 99, Person, 1}}))
}
