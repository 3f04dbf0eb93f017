package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/gen"
)

type pos struct {
	source string
	at     int64
}

// TestFusionRemovesPlantedDuplicatesAcrossSources plants exact and near
// duplicates across three sources of different formats: one record of
// every planted pair remains, the one from the higher-priority source,
// with the other's id in its lineage; every removal is a real duplicate;
// the manifest and statistics report the clusters; and running the same
// request again writes byte-identical data.
func TestFusionRemovesPlantedDuplicatesAcrossSources(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_FUSION": "true"}})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 3000, Sources: 3, Format: "mixed", Seed: 41, DupRate: 0.06, NearDupRate: 0.06})
	require.NoError(t, err)
	truth := map[string]gen.Truth{}
	byPos := map[pos]string{}
	tf, err := os.Open(sum.Truth)
	require.NoError(t, err)
	sc := bufio.NewScanner(tf)
	for sc.Scan() {
		var tr gen.Truth
		require.NoError(t, json.Unmarshal(sc.Bytes(), &tr))
		truth[tr.ID] = tr
		byPos[pos{tr.Source, tr.Position}] = tr.ID
	}
	tf.Close()

	req := localRequest(sum.Files...)
	for i := range req.Sources {
		req.Sources[i].Name = fmt.Sprintf("source-%d", i+1)
		req.Sources[i].Priority = 3 - i // source-3 first
	}
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	x := waitProjected(t, s, id, msgs)
	data := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))

	present := map[string]bool{}
	merged := 0
	for _, rec := range data {
		src := rec["source"].(map[string]any)
		gid := byPos[pos{src["name"].(string), int64(src["position"].(float64))}]
		require.NotEmpty(t, gid)
		present[gid] = true
		for _, l := range rec["lineage"].([]any) {
			if l.(map[string]any)["stage"] == "fusion" {
				merged += len(l.(map[string]any)["merged"].([]any))
			}
		}
	}
	require.Positive(t, merged, "keepers list what was merged into them")

	// Recall: of every planted pair, one record remains, from the source
	// with the better priority (a higher source number here).
	var exact, near, exactOK, nearOK int
	srcNum := func(tr gen.Truth) int { var n int; fmt.Sscanf(tr.Source, "source-%d", &n); return n }
	for gid, tr := range truth {
		orig := tr.DuplicateOf
		if orig == "" {
			orig = tr.NearDupOf
		}
		if orig == "" {
			continue
		}
		both := present[gid] && present[orig]
		if tr.DuplicateOf != "" {
			exact++
			if !both {
				exactOK++
				want := gid
				if srcNum(truth[orig]) > srcNum(tr) {
					want = orig
				}
				// Neither may remain when a third copy ranks higher.
				require.True(t, present[want] || !present[gid] && !present[orig], "the higher-priority source's copy of %s is kept", gid)
			}
		} else {
			near++
			if !both {
				nearOK++
			}
		}
	}
	require.Positive(t, exact)
	require.Positive(t, near)
	require.Equal(t, exact, exactOK, "every planted exact duplicate is removed")
	require.GreaterOrEqual(t, float64(nearOK)/float64(near), 0.9, "near-duplicate recall")

	var manifest struct {
		Fusion  events.FusionSummary `json:"fusion"`
		Sources []struct {
			Valid, Output int64
		} `json:"sources"`
		Files []events.OutputFile `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(x.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	require.EqualValues(t, len(data), manifest.Fusion.Kept)
	require.EqualValues(t, x.Valid-int64(len(data)), manifest.Fusion.RemovedExact+manifest.Fusion.RemovedNear)
	var out int64
	for _, src := range manifest.Sources {
		out += src.Output
	}
	require.EqualValues(t, len(data), out, "per-source output counts add up")

	var stats struct {
		Fusion events.FusionSummary `json:"fusion"`
	}
	require.NoError(t, s.client.Do(t.Context(), "GET", "/statistics/"+id, nil, &stats))
	require.Equal(t, manifest.Fusion, stats.Fusion, "statistics report the fusion figures")

	// Same input, same settings: the same bytes.
	req.Output.Destination = "again"
	id2, msgs2 := s.run(t, req)
	require.Equal(t, "completed", msgs2[len(msgs2)-1].Data["status"])
	x2 := waitProjected(t, s, id2, msgs2)
	b2, err := os.ReadFile(filepath.Join(x2.OutputDir, "manifest.json"))
	require.NoError(t, err)
	var manifest2 struct {
		Files []events.OutputFile `json:"files"`
	}
	require.NoError(t, json.Unmarshal(b2, &manifest2))
	require.Equal(t, manifest.Files[0].Name, manifest2.Files[0].Name)
	require.Equal(t, manifest.Files[0].SHA256, manifest2.Files[0].SHA256, "byte-identical data files")
	_ = fusion.Version
}
