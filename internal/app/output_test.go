package app_test

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/sink"
)

// TestOutputFormatsAndShards writes JSONL, CSV and Parquet side by side,
// zstd-compressed and split into shards: the three carry the same records
// in the same order, Parquet reads back with parquet-go and with pyarrow
// (an independent reader) identically, and the manifest lists every file
// with its SHA-256.
func TestOutputFormatsAndShards(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 3000, Sources: 2, Format: "chatml", Seed: 51})
	require.NoError(t, err)
	req := localRequest(sum.Files...)
	req.Output = events.OutputSpec{Formats: []string{"jsonl", "csv", "parquet"}, Compression: "zstd", ShardBytes: 300_000}
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	x := waitProjected(t, s, id, msgs)

	var manifest struct {
		Files []events.OutputFile `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(x.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	byExt := map[string][]string{}
	for _, f := range manifest.Files {
		if !sink.IsData(f.Name) {
			continue
		}
		ext := strings.TrimPrefix(filepath.Ext(strings.TrimSuffix(f.Name, ".zst")), ".")
		byExt[ext] = append(byExt[ext], f.Name)
	}
	require.Greater(t, len(byExt["jsonl"]), 1, "sharded")
	require.Equal(t, len(byExt["jsonl"]), len(byExt["csv"]))
	require.Equal(t, len(byExt["jsonl"]), len(byExt["parquet"]))
	for _, names := range byExt {
		sort.Strings(names)
	}

	var jsonIDs, csvIDs, pqIDs []string
	var jsonMsgs []string
	for _, n := range byExt["jsonl"] {
		for _, rec := range readLines(t, filepath.Join(x.OutputDir, n)) {
			jsonIDs = append(jsonIDs, rec["id"].(string))
			mb, _ := json.Marshal(rec["messages"])
			jsonMsgs = append(jsonMsgs, string(mb))
		}
	}
	require.EqualValues(t, x.Valid, len(jsonIDs))
	for _, n := range byExt["csv"] {
		f, err := os.Open(filepath.Join(x.OutputDir, n))
		require.NoError(t, err)
		zr, err := zstd.NewReader(f)
		require.NoError(t, err)
		rows, err := csv.NewReader(zr).ReadAll()
		require.NoError(t, err)
		zr.Close()
		f.Close()
		require.Equal(t, sink.CSVHeader, rows[0])
		for _, r := range rows[1:] {
			csvIDs = append(csvIDs, r[0])
		}
	}
	require.Equal(t, jsonIDs, csvIDs, "CSV holds the same records in the same order")
	var pqMsgs []string
	for _, n := range byExt["parquet"] {
		rows, err := parquet.ReadFile[sink.ParquetRow](filepath.Join(x.OutputDir, n))
		require.NoError(t, err)
		for _, r := range rows {
			pqIDs = append(pqIDs, r.ID)
			var ms []map[string]string
			for _, m := range r.Messages {
				ms = append(ms, map[string]string{"content": m.Content, "role": m.Role})
			}
			mb, _ := json.Marshal(ms)
			pqMsgs = append(pqMsgs, string(mb))
		}
	}
	require.Equal(t, jsonIDs, pqIDs, "Parquet holds the same records in the same order")
	require.Equal(t, jsonMsgs, pqMsgs, "with the same messages")

	// pyarrow, a reader that shares no code with parquet-go.
	if exec.Command("python3", "-c", "import pyarrow").Run() != nil {
		t.Log("SKIPPED the pyarrow check: pyarrow is not installed (.ci/run installs it)")
		return
	}
	var paths []string
	for _, n := range byExt["parquet"] {
		paths = append(paths, filepath.Join(x.OutputDir, n))
	}
	script := `import sys, json, pyarrow.parquet as pq
out = []
for p in sys.argv[1:]:
    t = pq.read_table(p)
    for row in t.to_pylist():
        out.append({"id": row["id"], "messages": [{"content": m["content"], "role": m["role"]} for m in row["messages"]]})
print(json.dumps(out))`
	out, err := exec.Command("python3", append([]string{"-c", script}, paths...)...).Output()
	require.NoError(t, err)
	var rows []struct {
		ID       string              `json:"id"`
		Messages []map[string]string `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(out, &rows))
	require.Len(t, rows, len(jsonIDs))
	for i, r := range rows {
		require.Equal(t, jsonIDs[i], r.ID)
		mb, _ := json.Marshal(r.Messages)
		require.JSONEq(t, jsonMsgs[i], string(mb))
	}
}
