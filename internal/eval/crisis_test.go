package eval

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/crisis"
)

// TestCrisisTargetsHoldOnTheDevelopmentSplit: the safety issue's two
// targets, measured in process on ../shared/eval (skipped, saying so, when
// it is absent).
func TestCrisisTargetsHoldOnTheDevelopmentSplit(t *testing.T) {
	f, err := os.Open(sharedEval(t, "crisis/cssrs-reddit.dev.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var gold, pred []CrisisRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var row struct {
			ID    string   `json:"id"`
			Label string   `json:"label"`
			Posts []string `json:"posts"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
		gold = append(gold, CrisisRow{ID: row.ID, Label: row.Label})
		pred = append(pred, CrisisRow{ID: row.ID, Level: crisis.Assess(row.Posts).Level})
	}
	require.NoError(t, sc.Err())
	c := ScoreCrisis(gold, pred)
	ba, sup := c.Pooled([]string{"Behavior", "Attempt"}, 2), c.FlaggedAtLeast("Supportive", 3)
	t.Logf("Behavior+Attempt flagged >= ideation %.3f; Supportive flagged >= behavior %.3f", ba, sup)
	require.GreaterOrEqual(t, ba, 0.95)
	require.LessOrEqual(t, sup, 0.15)
}

// TestContentSelfHarmRecallHolds: the safety issue's content target on
// the development split, in process.
func TestContentSelfHarmRecallHolds(t *testing.T) {
	gold, err := ReadContentFile(sharedEval(t, "content/openai-moderation.dev.jsonl"))
	require.NoError(t, err)
	f, err := os.Open(sharedEval(t, "content/openai-moderation.dev.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var pred []ContentRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var row struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
		pred = append(pred, ContentRow{ID: row.ID, Categories: content.Assess(row.Text).Categories})
	}
	s := ScoreContent(gold, pred, content.FlagThreshold)
	t.Logf("self-harm recall %.3f precision %.3f", s["self_harm"].Recall(), s["self_harm"].Precision())
	require.GreaterOrEqual(t, s["self_harm"].Recall(), 0.85)
}

func TestCrisisMacroF1(t *testing.T) {
	perfect := CrisisScore{Matrix: map[string]map[string]int{}}
	for i, l := range CrisisLabels {
		perfect.Matrix[l] = map[string]int{[]string{"none", "indicator", "ideation", "behavior", "attempt"}[i]: 3}
	}
	require.InDelta(t, 1.0, perfect.MacroF1(), 1e-9)
	// Everyone called ideation: only Ideation has an F1 (P 1/5, R 1).
	flat := CrisisScore{Matrix: map[string]map[string]int{}}
	for _, l := range CrisisLabels {
		flat.Matrix[l] = map[string]int{"ideation": 2}
	}
	require.InDelta(t, (2*0.2*1/1.2)/5, flat.MacroF1(), 1e-9)
}
