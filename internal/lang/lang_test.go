package lang

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDetectsEachCandidate(t *testing.T) {
	for want, text := range map[string]string{
		English:    "I have been feeling really low since my brother moved away and I don't know what to do about it.",
		Spanish:    "Me siento muy triste desde que mi hermano se fue de la casa y no sé qué hacer con todo esto.",
		French:     "Je me sens très seul depuis que mon frère est parti et je ne sais pas quoi faire avec tout ça.",
		German:     "Ich fühle mich sehr allein, seit mein Bruder ausgezogen ist, und ich weiß nicht, was ich tun soll.",
		Portuguese: "Eu me sinto muito sozinho desde que o meu irmão foi embora e não sei o que fazer com isso.",
		Italian:    "Mi sento molto solo da quando mio fratello se ne è andato e non so cosa fare di tutto questo.",
		Dutch:      "Ik voel me erg alleen sinds mijn broer is verhuisd en ik weet niet wat ik moet doen.",
	} {
		r := Detect(text)
		require.Equal(t, want, r.Lang, "%q: %+v", text, r)
		require.Greater(t, r.FunctionShare, 0.2)
	}
}

func TestScriptsAndGibberish(t *testing.T) {
	require.Equal(t, Cyrillic, Detect("Я чувствую себя очень одиноким с тех пор").Lang)
	require.Equal(t, Han, Detect("我最近感到非常孤独").Lang)
	g := Detect("qxz vbnm lkjh asdf qwer tyui zxcv poiu mnbv")
	require.Equal(t, Unknown, g.Lang)
	require.Equal(t, Unknown, Detect("").Lang)
	require.Equal(t, Unknown, Detect("?!... 123").Lang)
}

func TestReadsOnlyTheFirstWords(t *testing.T) {
	r := Detect(strings.Repeat("the cat is on the mat ", 10000))
	require.Equal(t, English, r.Lang)
	require.Equal(t, MaxWords, r.Words)
}

func FuzzDetect(f *testing.F) {
	f.Add("I'm not sure what to do")
	f.Add("l’été où j’ai")
	f.Add("\xff\xfe'''")
	f.Fuzz(func(t *testing.T, s string) {
		r := Detect(s)
		require.GreaterOrEqual(t, r.Confidence, 0.0)
		require.LessOrEqual(t, r.Confidence, 1.0)
		require.LessOrEqual(t, r.Words, MaxWords)
	})
}

func BenchmarkDetect(b *testing.B) {
	text := strings.Repeat("I have been feeling really low since my brother moved away, and I don't know what to do about it. ", 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Detect(text)
	}
}

// The packed table answers as the map does, for every function word and
// for words that are none; no function word is longer than 8 bytes, as
// scanASCII assumes.
func TestLookupAgreesWithTheIndex(t *testing.T) {
	for w, set := range index {
		if len(w) > 8 {
			t.Errorf("%q: longer than 8 bytes", w)
		}
		if got := lookup([]byte(w)); got != set {
			t.Errorf("%q: %08b, want %08b", w, got, set)
		}
	}
	for _, w := range []string{"", "x", "thee", "therapist", "abcdefgh", "zzzzzzzzz", "tha", "c'es", "th"} {
		if got := lookup([]byte(w)); got != index[w] {
			t.Errorf("%q: %08b, want %08b", w, got, index[w])
		}
	}
}

// The ASCII scan sees the words, and their candidates, that scan does.
func TestScanASCIIAgreesWithScan(t *testing.T) {
	texts := []string{"", "'", "I'm fine, THE end", "don't  stop 'til it's done", "a1b2 c--d e'f'g '' x",
		"supercalifragilistic words and the longest ones", strings.Repeat("the cat and a dog ", 40)}
	for _, text := range texts {
		var want []uint8
		var sc scripts
		n := scan(text, &sc, func(w []byte) { want = append(want, lookup(w)) })
		var got []uint8
		m := scanASCII(text, func(set uint8) { got = append(got, set) })
		if n != m || !slices.Equal(got, want) {
			t.Errorf("%q: %d words %v, want %d %v", text, m, got, n, want)
		}
		if !isASCII(text) {
			t.Errorf("%q: not ASCII?", text)
		}
	}
	for _, text := range []string{"héllo", "abcdefgh\u00e9", "plain text that is long enough ’"} {
		if isASCII(text) {
			t.Errorf("%q: ASCII?", text)
		}
	}
}
