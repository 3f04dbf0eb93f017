package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/testwait"
)

// TestOutputSplits: output.splits writes one data file per split, each
// record in the split its id hashes to and in no other, the manifest
// counts them, a rerun writes the same bytes, and an erasure rewrite keeps
// every other record in its split. A bad splits setting is a 400 that says
// what to fix.
func TestOutputSplits(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: twoUsers})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 3000, Sources: 2, Format: "chatml", Seed: 61})
	require.NoError(t, err)
	splits := []events.Split{{Name: "train", Fraction: 0.8}, {Name: "validation", Fraction: 0.1}, {Name: "test", Fraction: 0.1}}
	req := localRequest(sum.Files...)
	req.Output.Compression = "none"
	req.Output.Splits = splits
	alice, admin := s.as("alice-token-1"), s.as("admin-token-1")
	ctx := context.Background()

	bad := req
	bad.Output.Splits = []events.Split{{Name: "train", Fraction: 0.8}, {Name: "test", Fraction: 0.1}}
	_, err = alice.Submit(ctx, bad)
	require.Equal(t, 400, apiStatus(err))
	require.Contains(t, err.Error(), "output.splits: the fractions add up to 0.9")

	first, status := runAs(t, s, alice, req)
	require.Equal(t, "completed", status)
	x1, err := s.store.Execution(ctx, first)
	require.NoError(t, err)
	var m struct {
		Files        []events.OutputFile `json:"files"`
		OutputSplits []struct {
			Name     string  `json:"name"`
			Fraction float64 `json:"fraction"`
			Records  int64   `json:"records"`
		} `json:"output_splits"`
	}
	b, err := os.ReadFile(filepath.Join(x1.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Len(t, m.OutputSplits, 3)
	sp := sink.NewSplitter(splits)
	seen := map[string]string{}
	bySplit := map[string][]map[string]any{}
	var total int64
	for i, want := range splits {
		got := m.OutputSplits[i]
		require.Equal(t, want.Name, got.Name)
		require.Equal(t, want.Fraction, got.Fraction)
		recs := readLines(t, filepath.Join(x1.OutputDir, "data-"+want.Name+".jsonl"))
		require.EqualValues(t, got.Records, len(recs))
		require.Greater(t, len(recs), 0)
		for _, r := range recs {
			id := r["id"].(string)
			require.Equal(t, want.Name, splits[sp.Of(id)].Name, "record %s is in the split its id hashes to", id)
			// Exact copies share an id (it hashes the content), so a copy
			// is never in another split.
			require.Contains(t, []string{"", want.Name}, seen[id], "record %s is in two splits", id)
			seen[id] = want.Name
		}
		bySplit[want.Name] = recs
		total += got.Records
	}
	require.InDelta(t, 0.8, float64(m.OutputSplits[0].Records)/float64(total), 0.05)
	for _, f := range m.Files {
		require.NotEqual(t, "data.jsonl", f.Name, "with splits there is no undivided data file")
	}

	second, status := runAs(t, s, alice, req)
	require.Equal(t, "completed", status)
	x2, err := s.store.Execution(ctx, second)
	require.NoError(t, err)
	for _, sp := range splits {
		a, err := os.ReadFile(filepath.Join(x1.OutputDir, "data-"+sp.Name+".jsonl"))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(x2.OutputDir, "data-"+sp.Name+".jsonl"))
		require.NoError(t, err)
		require.Equal(t, a, b, "a rerun writes the same %s split", sp.Name)
	}

	// Erase one test-split record: the rewrite drops it and leaves every
	// other record in its split, in order.
	gone := bySplit["test"][0]["id"].(string)
	require.NoError(t, admin.DoV1(ctx, "POST", "/erasures", map[string]any{"record_ids": []string{gone}}, nil))
	var x1b = x1
	testwait.For(t, 30*time.Second, "the finished output was never rewritten", func() bool {
		x1b, err = s.store.Execution(ctx, first)
		return err == nil && x1b.OutputDir != x1.OutputDir
	})
	for _, sp := range splits {
		var want []map[string]any
		for _, r := range bySplit[sp.Name] {
			if r["id"] != gone { // an exact copy shares the id and goes too
				want = append(want, r)
			}
		}
		require.Equal(t, want, readLines(t, filepath.Join(x1b.OutputDir, "data-"+sp.Name+".jsonl")), sp.Name)
	}
}
