package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testwait"
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

// TestWithdrawnConsentErasesTheSubject: a record saying its data subject
// withdrew consent is rejected, and the subject is erased: a finished
// output that holds the subject's earlier record is rewritten without it.
func TestWithdrawnConsentErasesTheSubject(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	row := func(id, consent, text string) string {
		return `{"id":"` + id + `","consent":"` + consent + `","messages":[{"role":"user","content":"` + text + `"},{"role":"assistant","content":"Thank you for telling me about it."}]}` + "\n"
	}
	first := filepath.Join(s.data, "first.jsonl")
	require.NoError(t, os.WriteFile(first, []byte(row("subject-a", "yes", "I sleep badly since the move.")+row("subject-b", "yes", "Work has been stressful lately.")), 0o644))
	second := filepath.Join(s.data, "second.jsonl")
	require.NoError(t, os.WriteFile(second, []byte(row("subject-a", "withdrawn", "Please remove what I shared.")), 0o644))
	run := func(path string) (string, []map[string]any) {
		req := localRequest(path)
		req.Output.Compression = "none"
		req.Sources[0].ConsentField = "consent"
		req.Processing = map[string]json.RawMessage{"require_consent": json.RawMessage(`true`)}
		id, feed := s.run(t, req)
		x := waitProjected(t, s, id, feed)
		return id, readLines(t, filepath.Join(x.OutputDir, "data.jsonl"))
	}
	a, before := run(first)
	require.Len(t, before, 2)
	b, _ := run(second)
	require.Contains(t, readEvents(t, s, b), `"code":"consent_withdrawn"`)
	var x store.Execution
	testwait.For(t, 30*time.Second, "the finished output was never rewritten", func() bool {
		var err error
		x, err = s.store.Execution(t.Context(), a)
		return err == nil && strings.HasSuffix(x.OutputDir, ".v2")
	})
	after := readLines(t, filepath.Join(x.OutputDir, "data.jsonl"))
	require.Equal(t, before[1:], after, "subject-a is gone, subject-b untouched")
}
