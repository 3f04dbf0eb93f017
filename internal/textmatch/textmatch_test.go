package textmatch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWholeWordsStemsAndPhrases(t *testing.T) {
	m := New([]Phrase{{Text: "kill myself"}, {Text: "kms"}, {Text: "stockpil", Stem: true}, {Text: "self-harm"}, {Text: "9mm"}})
	var got []string
	m.Each("i want to kill myself. kmsx kms stockpiling self-harm 9mm", func(p, s, e int) {
		got = append(got, m.phrases[p].Text)
	})
	require.Equal(t, []string{"kill myself", "kms", "stockpil", "self-harm", "9mm"}, got)
}

func FuzzEach(f *testing.F) {
	m := New([]Phrase{{Text: "kill myself"}, {Text: "a b"}, {Text: "ab", Stem: true}})
	f.Add("kill myself a b abc")
	f.Fuzz(func(t *testing.T, s string) {
		s = strings.ToLower(s)
		m.Each(s, func(p, a, b int) {
			if a < 0 || b > len(s) || a >= b {
				t.Fatalf("bad range %d..%d", a, b)
			}
		})
	})
}

// TestCurlyQuotesAndDashesEndAWord: “africans” and word—word are words
// between punctuation, as their ASCII forms are.
func TestCurlyQuotesAndDashesEndAWord(t *testing.T) {
	m := New([]Phrase{{Text: "africans"}, {Text: "fine"}})
	var got []int
	m.Each(Normalise("Stupid “Africans” are fine—really"), func(p, _, _ int) { got = append(got, p) })
	if len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("got %v", got)
	}
}
