package content

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestToxicityModelIsReproducible: `make train` rebuilds the embedded
// weights from the committed data bit for bit.
func TestToxicityModelIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the model (seconds)")
	}
	b, err := TrainToxicity("traindata")
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, toxicityGz), "toxicity.bin.gz is not what `make train` makes from traindata/ (%d bytes made, %d embedded): run make train and commit", len(b), len(toxicityGz))
}

// TestToxicityRanksAbuseAboveCounselling: abuse aimed at someone ranks
// above the way counsellors and clients talk about anger and hurt, and
// counselling talk stays well under the flag threshold (sentences written
// here).
func TestToxicityRanksAbuseAboveCounselling(t *testing.T) {
	abuse := []string{
		"you are a worthless pathetic loser and everyone laughs at you",
		"shut up you stupid bitch nobody wants you here",
		"go kill yourself you disgusting freak",
	}
	calm := []string{
		"It is normal to feel angry at the people who hurt you.",
		"I hate how anxious I get before work and I want it to stop.",
		"My husband called me stupid again and I cried for an hour.",
		"Try writing down what you felt before the argument started.",
	}
	lowestAbuse := 1.0
	for _, s := range abuse {
		p, _ := toxicity().worst(s, nil)
		lowestAbuse = min(lowestAbuse, p[outToxic])
	}
	for _, s := range calm {
		p, _ := toxicity().worst(s, nil)
		require.Less(t, p[outToxic], lowestAbuse, "%q ranks with abuse", s)
		require.Less(t, p[outToxic], 0.3, "%q", s)
		require.Less(t, p[outHate], 0.3, "%q", s)
	}
}
