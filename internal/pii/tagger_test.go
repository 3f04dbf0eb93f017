package pii

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTaggerModelIsReproducible: `make train` rebuilds the embedded
// weights from the committed data bit for bit.
func TestTaggerModelIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tagger (seconds)")
	}
	b, err := TrainTagger("traindata")
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, taggerGz), "tagger.bin.gz is not what `make train` makes from traindata/ (%d bytes made, %d embedded): run make train and commit", len(b), len(taggerGz))
}

// TestTaggerFindsNamesTheRulesMiss: names written in lower case, a single
// first name opening a sentence, and places, in the informal writing of
// posts and chats (sentences written here).
func TestTaggerFindsNamesTheRulesMiss(t *testing.T) {
	cases := []struct{ text, want, typ string }{
		{"honestly i told jessica everything last night", "jessica", Person},
		{"Marcus is the only one who gets it", "Marcus", Person},
		{"me and tyler went to the lake again", "tyler", Person},
		{"we moved to denver when i was little", "denver", Location},
		{"my cousin lives in Leeds now and hates it", "Leeds", Location},
		{"we moved from NJ last spring", "NJ", Location},
	}
	for _, c := range cases {
		require.Contains(t, spansOf(c.text, c.typ), c.want, "%q", c.text)
	}
	for _, s := range Detect("it is OK in my opinion") {
		require.NotEqual(t, "OK", "it is OK in my opinion"[s.Start:s.End], "a state code needs a place cue")
	}
	// Ordinary words in lower case stay.
	for _, text := range []string{"i hope the weather will be nice", "grace under pressure is hard", "we went to the park and had fun"} {
		for _, s := range Detect(text) {
			require.NotEqual(t, Person, s.Type, "%q: %q", text, text[s.Start:s.End])
		}
	}
}

// TestAddressesWithoutAStreetLine: military mail, street corners and a
// postal code after a city are addresses or postal codes (forms written
// here).
func TestAddressesWithoutAStreetLine(t *testing.T) {
	cases := []struct{ text, want, typ string }{
		{"send it to Unit 2050 Box 4190, APO AP 96278 please", "Unit 2050 Box 4190, APO AP 96278", Address},
		{"my brother is at PSC 3, Box 5512, DPO AE 09498 until june", "PSC 3, Box 5512, DPO AE 09498", Address},
		{"write to USS Nimitz, FPO AP 96620-2820", "USS Nimitz, FPO AP 96620-2820", Address},
		{"we met at the corner of Maple Avenue and 5th Street", "Maple Avenue and 5th Street", Address},
		{"she lives in Arendal 4844 with her mum", "4844", ZIP},
	}
	for _, c := range cases {
		require.Contains(t, spansOf(c.text, c.typ), c.want, "%q", c.text)
	}
	require.Empty(t, Detect("the APO said no"), "a word alone is not an address")
}

// spansOf returns the texts Detect finds in text with type typ.
func spansOf(text, typ string) []string {
	var got []string
	for _, s := range Detect(text) {
		if s.Type == typ {
			got = append(got, text[s.Start:s.End])
		}
	}
	return got
}
