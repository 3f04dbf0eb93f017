package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
)

// TestBalancingReachesTargetsOverATopic selects records so that three
// topics reach target shares (the others get none): the output holds the
// selected records per topic as the manifest and statistics report, the
// achieved shares match the targets, and a second run selects the same
// records.
func TestBalancingReachesTargetsOverATopic(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 4000, Sources: 1, Format: "chatml", Seed: 61})
	require.NoError(t, err)
	req := localRequest(sum.Files...)
	req.Processing = map[string]json.RawMessage{"balancing": json.RawMessage(`{"key":"metadata.topic","targets":{"anxiety":2,"grief":1,"sleep":1}}`)}
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	x := waitProjected(t, s, id, msgs)
	data := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	got := map[string]int{}
	for _, rec := range data {
		got[rec["metadata"].(map[string]any)["topic"].(string)]++
	}
	require.Len(t, got, 3, "unnamed topics get none")
	require.InDelta(t, 2*got["grief"], got["anxiety"], 2)
	require.InDelta(t, got["grief"], got["sleep"], 1)

	var manifest struct {
		Balancing events.BalancingSummary `json:"balancing"`
	}
	b, err := os.ReadFile(filepath.Join(x.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	require.EqualValues(t, len(data), manifest.Balancing.Selected)
	for _, g := range manifest.Balancing.Groups {
		require.EqualValues(t, got[g.Group], g.Selected, g.Group)
		if g.Target > 0 {
			require.InDelta(t, g.Target, g.Achieved, 0.01, g.Group)
		}
	}
	var stats struct {
		Balancing events.BalancingSummary `json:"balancing"`
	}
	require.NoError(t, s.client.Do(t.Context(), "GET", "/statistics/"+id, nil, &stats))
	require.Equal(t, manifest.Balancing, stats.Balancing)

	req.Output.Destination = "again"
	id2, msgs2 := s.run(t, req)
	require.Equal(t, "completed", msgs2[len(msgs2)-1].Data["status"])
	x2 := waitProjected(t, s, id2, msgs2)
	data2 := readLines(t, filepath.Join(x2.OutputDir, "data.jsonl.zst"))
	require.Equal(t, len(data), len(data2))
	for i := range data {
		require.Equal(t, data[i]["id"], data2[i]["id"], "the same records, in the same order")
	}
}
