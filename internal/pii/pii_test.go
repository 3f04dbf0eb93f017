package pii

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/gen"
)

// types returns "TYPE:text" for each span, for readable assertions.
func types(text string) []string {
	var out []string
	for _, s := range Detect(text) {
		out = append(out, s.Type+":"+text[s.Start:s.End])
	}
	return out
}

func TestStructuredIdentifiersAreValidated(t *testing.T) {
	// Luhn: a valid Visa test number is found, a one-digit change is not.
	require.Contains(t, types("card 4111 1111 1111 1111 please"), "CREDIT_CARD:4111 1111 1111 1111")
	require.NotContains(t, types("card 4111 1111 1111 1112 please"), "CREDIT_CARD:4111 1111 1111 1112")
	// SSN area rules: 000, 666 and 9xx areas are not SSNs.
	require.Contains(t, types("ssn 123-45-6789"), "SSN:123-45-6789")
	for _, bad := range []string{"000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"} {
		require.NotContains(t, types("ssn "+bad), "SSN:"+bad)
	}
	require.Contains(t, types("write to jo.smith+x@mail.example.org today"), "EMAIL:jo.smith+x@mail.example.org")
	require.Contains(t, types("see https://example.com/a?b=1."), "URL:https://example.com/a?b=1")
	require.Contains(t, types("from 192.168.10.254 and 2001:db8::8a2e:370:7334"), "IP_ADDRESS:192.168.10.254")
	require.Contains(t, types("from 192.168.10.254 and 2001:db8::8a2e:370:7334"), "IP_ADDRESS:2001:db8::8a2e:370:7334")
	require.Contains(t, types("call me on +1 (415) 555-0132 tonight"), "PHONE:+1 (415) 555-0132")
	require.Contains(t, types("IBAN GB82 WEST 1234 5698 7654 32 thanks"), "ACCOUNT:GB82 WEST 1234 5698 7654 32")
	require.Contains(t, types("my medical record number is MRN-00481516"), "ID:MRN-00481516")
}

func TestCrisisLinesAreKept(t *testing.T) {
	for _, text := range []string{"Please call or text 988 now.", "Text HOME to 741741.", "Call 1-800-273-8255 any time."} {
		for _, s := range Detect(text) {
			require.NotEqual(t, Phone, s.Type, "%q: crisis lines stay readable", text)
		}
	}
}

func TestDatesAgesAddressesAndNames(t *testing.T) {
	got := types("My name is Jane Doe. I was born on March 3rd, 1961 and I'm a 74 year old widow living at 42 Oak Street, Springfield.")
	require.Contains(t, got, "PERSON:Jane Doe")
	require.Contains(t, got, "DATE:March 3rd, 1961")
	require.Contains(t, got, "AGE:74")
	// The parts after a street address keep their own types.
	require.Contains(t, got, "ADDRESS:42 Oak Street")
	require.Contains(t, got, "LOCATION:Springfield")
	got = types("Send it to 688 rue du centre 320\napt. 169\nmarke\nbelgium 97466 please")
	require.Contains(t, got, "ADDRESS:688 rue du centre 320")
	require.Contains(t, got, "ADDRESS:apt. 169")
	require.Contains(t, got, "LOCATION:marke")
	require.Contains(t, types("Patient is a 65-year-old male."), "AGE:65")
	require.Contains(t, types("He retired at the age of 71."), "AGE:71")
	require.Contains(t, types("my zip code is 610"), "ZIP:610")
	require.Contains(t, types("early shows on Isaac Lodge Street were loud"), "ADDRESS:Isaac Lodge Street")
	// A year alone is not a Safe Harbor identifier; ordinary capitalised
	// words are not names.
	got = types("Our choir started in 1985 and sings every week.")
	require.Empty(t, got)
	require.Contains(t, types("She grew up in Estonia and misses it."), "LOCATION:Estonia")
	require.Contains(t, types("Mr. Okafor is a 21 year old teacher."), "PERSON:Okafor")
}

func TestPseudonymsAreConsistentWithinAConversation(t *testing.T) {
	m := NewMasker(MaskPseudonym, nil)
	a := "Mary told me that John was angry."
	b := "I asked Mary again."
	ma, mb := m.Mask(a, Detect(a)), m.Mask(b, Detect(b))
	require.Equal(t, "[PERSON_1] told me that [PERSON_2] was angry.", ma)
	require.Equal(t, "I asked [PERSON_1] again.", mb, "the same person keeps the same pseudonym across turns")

	h1, h2 := NewMasker(MaskHash, []byte("salt-1")), NewMasker(MaskHash, []byte("salt-2"))
	require.Equal(t, h1.Mask(b, Detect(b)), NewMasker(MaskHash, []byte("salt-1")).Mask(b, Detect(b)), "a salted hash is stable")
	require.NotEqual(t, h1.Mask(b, Detect(b)), h2.Mask(b, Detect(b)), "and depends on the salt")
	require.Equal(t, "I asked [PERSON] again.", NewMasker(MaskTag, nil).Mask(b, Detect(b)))
}

// FuzzDetect: any input gives sorted, non-overlapping spans on rune
// boundaries inside the text, and masking never panics.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{"", "My name is Jane Doe, call +1 415 555 0132.", "İİİ 12 Straße 5\nBerlin, 10115", "ssn 123-45-6789 4111111111111111",
		"a@b.co http://x.y/ 1.2.3.4 ::1", "\xff\xfe 2020-01-02 10:11:12 Mr. X", strings.Repeat("Ab ", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		spans := Detect(text)
		end := 0
		for _, s := range spans {
			if s.Start < end || s.End <= s.Start || s.End > len(text) {
				t.Fatalf("bad span %+v (previous end %d, len %d)", s, end, len(text))
			}
			if utf8.ValidString(text) && (!utf8.RuneStart(text[s.Start]) || (s.End < len(text) && !utf8.RuneStart(text[s.End]))) {
				t.Fatalf("span %+v splits a character", s)
			}
			end = s.End
		}
		_ = NewMasker(MaskPseudonym, nil).Mask(text, spans)
	})
}

func BenchmarkPIIDetect(b *testing.B) {
	text := strings.Repeat("I have been feeling anxious since my move to Denver last March. My therapist, Dr. Alvarez, said I should call 555-201-4477 "+
		"or email help@clinic.example.org if it gets worse. Honestly some days I just want to sleep and not wake up. ", 4)
	b.SetBytes(int64(len(text)))
	for i := 0; i < b.N; i++ {
		Detect(text)
	}
}

// BenchmarkPIIDetectTurns runs Detect on the turns of generated
// conversations, one at a time as the safety stage does: most hold no
// identifier, unlike BenchmarkPIIDetect's text.
func BenchmarkPIIDetectTurns(b *testing.B) {
	g := gen.New(7)
	var turns []string
	var size int64
	for range 300 {
		for _, t := range g.Next().Turns {
			turns = append(turns, t.Content)
			size += int64(len(t.Content))
		}
	}
	b.SetBytes(size / int64(len(turns)))
	i := 0
	for b.Loop() {
		Detect(turns[i%len(turns)])
		i++
	}
}

func TestLastWords(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "a", " a b  c ": "a b c", "one two three four": "two three four", "x\ny  z": "x y z", "  ": ""} {
		require.Equal(t, want, lastWords(in, 3), "%q", in)
	}
}

func TestFirmsNamedAfterPeopleAreNotPeople(t *testing.T) {
	got := types("She worked at Barnes, Okafor and Lindqvist for a year.")
	require.Contains(t, got, "ORGANIZATION:Barnes, Okafor and Lindqvist")
	require.NotContains(t, got, "PERSON:Barnes")
	require.Empty(t, types("Turn left at the lights, then take the second St. on the right."))
}

// TestHandlesAreUsernamesAndWeekdaysAreNotDates: handles and Reddit user
// and community names are identifiers (USERNAME); an email address is
// not a handle; a weekday alone is not a date element.
func TestHandlesAreUsernamesAndWeekdaysAreNotDates(t *testing.T) {
	span := func(text, typ string) string {
		for _, s := range Detect(text) {
			if s.Type == typ {
				return text[s.Start:s.End]
			}
		}
		return ""
	}
	require.Equal(t, "@jess_91", span("thanks @jess_91 for the advice", Username))
	require.Equal(t, "/u/throwaway_sad", span("posted by /u/throwaway_sad yesterday", Username))
	require.Equal(t, "r/depression", span("I found r/depression last week", Username))
	require.Empty(t, span("mail me at jess@example.com", Username), "an email is not a handle")
	require.Equal(t, "jess@example.com", span("mail me at jess@example.com", Email))
	require.Empty(t, span("meet at 5 @ the cafe", Username))
	require.Empty(t, span("See you on Monday, it was a long Friday.", Date))
	require.Equal(t, "March 3, 2020", span("We met on March 3, 2020.", Date))
	require.Contains(t, SafeHarbor, Username)
}

// TestPlacesByTheirNounOrPreposition: a name guessed without a person cue
// is a place when it ends with a place noun or follows "in", "near" or
// "on"; a name with a person cue stays a person (sentences written here).
func TestPlacesByTheirNounOrPreposition(t *testing.T) {
	got := types("We drove past Halvorsen Tower and then stayed near Ostrava for a night.")
	require.Contains(t, got, "LOCATION:Halvorsen Tower")
	require.Contains(t, got, "LOCATION:Ostrava")
	require.Contains(t, types("Yesterday Mr. Halvorsen said the tower was closed."), "PERSON:Halvorsen")
}

// unchangedByUpper answers as comparing with strings.ToUpper does.
func TestUnchangedByUpper(t *testing.T) {
	for _, w := range []string{"", "A", "a", "NASA", "NaSA", "ÉCOLE", "École", "ÉCOLe", "eÉ", "123", "I'M", "ĲSSEL", "ß"} {
		if got, want := unchangedByUpper(w), strings.ToUpper(w) == w; got != want {
			t.Errorf("%q: %v, want %v", w, got, want)
		}
	}
}

// Every state code is two capitals, as lowerPlaces checks before the
// lookup.
func TestStateCodesAreTwoCapitals(t *testing.T) {
	for c := range stateCodes {
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			t.Errorf("%q", c)
		}
	}
}
