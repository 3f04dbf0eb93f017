package crisis_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/crisis"
	"github.com/dspipe/dspipe/internal/gen"
)

// TestPlantedLevelsAreFound grades the crisis lines `dsctl gen` plants (the
// data every demo and benchmark uses): each planted level is graded at or
// above its label for at least 98% of records, and every planted attempt
// is graded an attempt above the default quarantine threshold (0.8).
func TestPlantedLevelsAreFound(t *testing.T) {
	g := gen.New(42)
	found, total := map[string]int{}, map[string]int{}
	for i := 0; i < 20000; i++ {
		c := g.Next()
		label := c.Truth.Crisis
		if label == crisis.None {
			continue
		}
		var texts []string
		for _, turn := range c.Turns {
			if turn.Role == "user" {
				texts = append(texts, turn.Content)
			}
		}
		r := crisis.Assess(texts)
		total[label]++
		if crisis.Rank(r.Level) >= crisis.Rank(label) {
			found[label]++
		}
		if label == crisis.Attempt {
			require.Equal(t, crisis.Attempt, r.Level, "a disclosed attempt is an attempt: %v", r.Indicators)
			require.GreaterOrEqual(t, r.Score, 0.8, "and is quarantined at the default threshold")
		}
	}
	for _, lv := range []string{crisis.Indicator, crisis.Ideation, crisis.Behavior, crisis.Attempt} {
		require.Positive(t, total[lv])
		share := float64(found[lv]) / float64(total[lv])
		t.Logf("%s: %d of %d graded at or above the label (%.3f)", lv, found[lv], total[lv], share)
		require.GreaterOrEqual(t, share, 0.98, lv)
	}
}

// TestAPastAttemptIsStillAnAttempt: the C-SSRS counts lifetime attempts.
func TestAPastAttemptIsStillAnAttempt(t *testing.T) {
	for _, text := range []string{
		"I tried to kill myself years ago.",
		"Back then I attempted suicide and spent a week in hospital.",
		"When I was younger I took a lot of pills and ended up in the ER.",
	} {
		r := crisis.Assess([]string{text})
		require.Equal(t, crisis.Attempt, r.Level, text)
		require.GreaterOrEqual(t, r.Score, 0.8, text)
	}
}
