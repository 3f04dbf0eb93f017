package app_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/testwait"
)

// TestErasedRecordsAreDroppedByLaterExecutions: an erasure naming records
// by their sources' own ids (10 of 10,000) and by output record id (1) makes
// the next execution over the same source drop exactly those records with
// reason "erased: <erasure id>"; everything else comes out in the same
// order, and the erased ids themselves are stored nowhere.
func TestErasedRecordsAreDroppedByLaterExecutions(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: twoUsers})
	var b strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, `{"id":"subject-%04d@example.org","messages":[{"role":"user","content":"Question number %d about sleep."},{"role":"assistant","content":"Answer number %d: keep a regular schedule."}]}`+"\n", i, i, i)
	}
	in := filepath.Join(s.data, "subjects.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(b.String()), 0o644))
	req := localRequest(in)
	req.Output.Compression = "none"
	req.Output.KeepSourceIDs = false
	alice, admin := s.as("alice-token-1"), s.as("admin-token-1")
	first, status := runAs(t, s, alice, req)
	require.Equal(t, "completed", status)
	ctx := context.Background()
	x1, err := s.store.Execution(ctx, first)
	require.NoError(t, err)
	before := readLines(t, filepath.Join(x1.OutputDir, "data.jsonl"))
	require.Len(t, before, 10000)

	var sources []map[string]string
	erase := map[int]bool{}
	for i := 3; i < 9970; i += 997 { // 10 subjects
		erase[i] = true
		sources = append(sources, map[string]string{"source": "s1", "id": fmt.Sprintf("subject-%04d@example.org", i)})
	}
	byRecordID := before[5000]["id"].(string)
	erase[5000] = true
	var out map[string]any
	err = alice.DoV1(ctx, "POST", "/erasures", map[string]any{"source_ids": sources}, &out)
	require.Equal(t, 403, apiStatus(err), "erasure is for admins")
	require.NoError(t, admin.DoV1(ctx, "POST", "/erasures", map[string]any{"source_ids": sources, "record_ids": []string{byRecordID}}, &out))
	erasure := out["erasure_id"].(string)
	require.EqualValues(t, 11, out["records"])

	second, status := runAs(t, s, alice, req)
	require.Equal(t, "completed", status)
	x2, err := s.store.Execution(ctx, second)
	require.NoError(t, err)
	after := readLines(t, filepath.Join(x2.OutputDir, "data.jsonl"))
	require.Len(t, after, 9989)
	var kept []map[string]any
	for i, r := range before {
		if !erase[i] {
			kept = append(kept, r)
		}
	}
	require.Equal(t, kept, after, "everything else is identical, in the same order")
	rejected := readLines(t, filepath.Join(x2.OutputDir, "rejected.jsonl"))
	require.Len(t, rejected, 11)
	for _, r := range rejected {
		require.Equal(t, "erased: "+erasure, r["reason"])
	}
	require.NotContains(t, dumpSchema(t, s.cfg.DBSchema), "subject-0003@example.org", "the erased ids are stored as pseudonyms only")

	// The finished first output was written again without them: a new
	// version beside the old one, which is gone; everything else equal in
	// content and order; the manifest and the trail name the erasure.
	var x1b = x1
	testwait.For(t, 30*time.Second, "the finished output was never rewritten", func() bool {
		x1b, err = s.store.Execution(ctx, first)
		return err == nil && x1b.OutputDir != x1.OutputDir
	})
	require.Equal(t, x1.OutputDir+".v2", x1b.OutputDir)
	require.NoDirExists(t, x1.OutputDir)
	rewritten := readLines(t, filepath.Join(x1b.OutputDir, "data.jsonl"))
	require.Equal(t, kept, rewritten)
	filesMatch(t, x1b.OutputDir, first)
	mb, err := os.ReadFile(filepath.Join(x1b.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.Contains(t, string(mb), erasure)
	require.Contains(t, readEvents(t, s, first), `"erasure":"`+erasure+`","removed":11`)
	// dsctl erase posts the same call.
	if bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "dsctl")); err == nil {
		if _, err := os.Stat(bin); err == nil {
			cmd := exec.Command(bin, "erase", "-source", "s1=subject-9999@example.org", "-record", "no-such-record")
			cmd.Env = append(os.Environ(), "DSPIPE_API_URL="+s.client.Base, "DSPIPE_TOKEN=admin-token-1")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			require.Contains(t, string(out), `"erasure_id": "er_`)
			require.Contains(t, string(out), `"records": 2`)
		}
	}
	files, err := s.store.OutputFiles(ctx, first)
	require.NoError(t, err)
	for _, f := range files {
		if f.Name == "data.jsonl" {
			require.EqualValues(t, 9989, f.Records)
		}
	}
}
