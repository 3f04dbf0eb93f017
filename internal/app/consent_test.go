package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecordsWithoutConsentAreRejected: with processing.require_consent,
// records whose source's consent field does not say consent was given are
// rejected with reason no_consent, counted per source in the manifest and
// the statistics; the others go through.
func TestRecordsWithoutConsentAreRejected(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	msgs := `"messages":[{"role":"user","content":"I have been feeling anxious lately."},{"role":"assistant","content":"Thank you for sharing. What has been on your mind?"}]`
	var b strings.Builder
	for i, c := range []string{`"yes"`, `true`, `"no"`, `"granted"`, ``, `false`, `"YES"`} {
		consent := ""
		if c != "" {
			consent = `"consent":` + c + `,`
		}
		b.WriteString(`{"id":"r` + string(rune('0'+i)) + `",` + consent + msgs + "}\n")
	}
	in := filepath.Join(s.data, "consent.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(b.String()), 0o644))
	req := localRequest(in)
	req.Sources[0].ConsentField = "consent"
	req.Sources[0].ConsentValues = []string{"yes", "true", "granted"}
	req.Processing = map[string]json.RawMessage{"require_consent": json.RawMessage(`true`)}
	id, feed := s.run(t, req)
	require.Equal(t, "completed", feed[len(feed)-1].Data["status"], "%v", feed[len(feed)-1].Data)
	x := waitProjected(t, s, id, feed)
	require.EqualValues(t, 4, x.Valid)
	require.EqualValues(t, 3, x.Rejected)

	rejected := readLines(t, filepath.Join(x.OutputDir, "rejected.jsonl"))
	require.Len(t, rejected, 3)
	for _, r := range rejected {
		require.True(t, strings.HasPrefix(r["reason"].(string), "no_consent: "), r["reason"])
	}
	var manifest struct {
		Sources []struct {
			NoConsent int64 `json:"no_consent"`
		} `json:"sources"`
	}
	mb, err := os.ReadFile(filepath.Join(x.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(mb, &manifest))
	require.EqualValues(t, 3, manifest.Sources[0].NoConsent)
	stats, err := s.client.Statistics(t.Context(), id)
	require.NoError(t, err)
	require.EqualValues(t, 3, stats["sources"].([]any)[0].(map[string]any)["no_consent"])
}
