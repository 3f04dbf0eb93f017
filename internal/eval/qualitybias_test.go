package eval

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/quality"
)

// TestBiasFindsTheAxisOnBBQ holds the bias lists to the floor on
// the development split: the category's axis is found in at least 90% of
// the rows of every category.
func TestBiasFindsTheAxisOnBBQ(t *testing.T) {
	gold, err := ReadBiasFile(sharedEval(t, "bias/bbq-contexts.dev.jsonl"))
	require.NoError(t, err)
	pred := make([]BiasPrediction, len(gold))
	for i, g := range gold {
		pred[i].ID = g.ID
		for _, m := range bias.Detect(g.Text) {
			pred[i].Mentions = append(pred[i].Mentions, struct {
				Axis  string `json:"axis"`
				Group string `json:"group"`
			}{m.Axis, m.Group})
		}
	}
	rows, found := AxisFound(gold, pred)
	for c, n := range rows {
		require.GreaterOrEqual(t, float64(found[c])/float64(n), 0.90, c)
	}
}

// TestQualitySeparatesPlantedAndKeepsRealData: planted low-quality
// conversations score below good ones (AUC ≥ 0.95), and the real,
// reviewed conversations in ../shared/data are rejected under 5%.
func TestQualitySeparatesPlantedAndKeepsRealData(t *testing.T) {
	lines := GeneratedConversations(3000, 11)
	rows := make([]QualityRow, len(lines))
	for i, l := range lines {
		r := quality.Assess(l.Messages, 0)
		rows[i] = QualityRow{ID: l.ID, Score: r.Score, Reasons: r.Reasons(quality.DefaultMinScore)}
	}
	// Empty turns are dropped by standardization before the stage and
	// counted; here the planted empty turns are still in the messages,
	// as the analyzer's input would have them before standardization.
	for i, l := range lines {
		empty := 0
		for _, m := range l.Messages {
			if len(m.Content) == 0 || m.Content == " " {
				empty++
			}
		}
		if empty > 0 {
			r := quality.Assess(l.Messages, empty)
			rows[i].Score = r.Score
		}
	}
	require.GreaterOrEqual(t, QualityAUC(lines, rows), 0.95)

	data := sharedEval(t, "../data")
	for _, f := range []string{"esconv-test.json", "counsel-chat.csv"} {
		convs, err := StandardizedFile(filepath.Join(data, f))
		require.NoError(t, err)
		require.NotEmpty(t, convs)
		rejected := 0
		for _, c := range convs {
			if r := quality.Assess(c.Messages, 0); r.Score < quality.DefaultMinScore {
				rejected++
			}
		}
		require.Less(t, float64(rejected)/float64(len(convs)), 0.05, f)
	}
}

// TestFusionFindsPlantedDuplicates: exact recall 1.0, near recall ≥ 0.9
// and precision ≥ 0.95 at the default threshold.
func TestFusionFindsPlantedDuplicates(t *testing.T) {
	s, err := ScoreFusion(t.TempDir(), 3000, 3, 0.8)
	require.NoError(t, err)
	t.Logf("%+v", s)
	require.Positive(t, s.PlantedExact)
	require.Equal(t, s.PlantedExact, s.ExactFound)
	require.GreaterOrEqual(t, float64(s.NearFound)/float64(s.PlantedNear), 0.9)
	require.GreaterOrEqual(t, float64(s.RemovedJustified)/float64(s.Removed), 0.95)
}
