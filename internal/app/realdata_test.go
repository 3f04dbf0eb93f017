package app_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/testenv"
)

// TestRealCounsellingDataCompletesWithDefaults submits the two real
// counselling datasets together with every stage on and every setting at
// its default, as a new user would: the execution completes and none of
// their records is blocked.
func TestRealCounsellingDataCompletesWithDefaults(t *testing.T) {
	t.Parallel()
	data := testenv.Shared(t, "data")
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
