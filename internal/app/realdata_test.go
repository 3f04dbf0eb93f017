package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// sharedData returns ../shared/data from the repository root, or skips,
// saying so, when the shared folder is absent.
func sharedData(t *testing.T) string {
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "data"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(p, "counsel-chat.csv")); err != nil {
		t.Skipf("SKIPPED: %s is absent (real-data test needs ../shared beside the repository)", p)
	}
	return p
}

// TestRealCounsellingDataCompletesWithDefaults submits the two real
// counselling datasets together with every stage on and every setting at
// its default, as a new user would: the execution completes and none of
// their records is blocked.
func TestRealCounsellingDataCompletesWithDefaults(t *testing.T) {
	t.Parallel()
	data := sharedData(t)
	s := startStack(t, stackOpts{env: map[string]string{
		"DSPIPE_LOCAL_ROOTS":        data,
		"ENABLE_SAFETY_VALIDATION":  "true",
		"ENABLE_QUALITY_ASSESSMENT": "true",
		"ENABLE_BIAS_DETECTION":     "true",
		"ENABLE_FUSION":             "true",
	}})
	id, msgs := s.run(t, localRequest(filepath.Join(data, "counsel-chat.csv"), filepath.Join(data, "esconv-test.json")))
	last := msgs[len(msgs)-1]
	require.Equal(t, "completed", last.Data["status"], "%v", last.Data)
	waitProjected(t, s, id, msgs)
	stats, err := s.client.Statistics(context.Background(), id)
	require.NoError(t, err)
	safety := stats["safety"].(map[string]any)
	b, _ := json.Marshal(map[string]any{"safety": safety, "bias": stats["bias"].(map[string]any)["intervals"]})
	t.Logf("real counselling data with the defaults: %s", b)
	require.EqualValues(t, 0, safety["blocked"], "no record of real counselling data is blocked")
	for _, a := range stats["alerts"].([]any) {
		alert := a.(map[string]any)
		require.Equal(t, "review_quarantine", alert["code"], "only records held for a reviewer: %v", alert)
		require.Equal(t, "warning", alert["severity"])
	}
}
