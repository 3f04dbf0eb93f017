package gen

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSameSeedSameBytes(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		_, err := Write(Options{Dir: d, Records: 500, Sources: 3, Format: "mixed", Compression: "zstd", Seed: 4, DupRate: 0.1, NearDupRate: 0.1})
		require.NoError(t, err)
	}
	entries, err := os.ReadDir(a)
	require.NoError(t, err)
	require.Len(t, entries, 4)
	for _, e := range entries {
		x, err := os.ReadFile(filepath.Join(a, e.Name()))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b, e.Name()))
		require.NoError(t, err)
		require.Equal(t, x, y, e.Name())
	}
}

// TestTruthPointsAtWhatWasWritten checks the sidecar: positions are the
// lines written, PII spans cover text of their type, and duplicates sit in
// another source than their original, with the same text.
func TestTruthPointsAtWhatWasWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sum, err := Write(Options{Dir: dir, Records: 3000, Sources: 3, Format: "chatml", Seed: 8, DupRate: 0.05, NearDupRate: 0.05})
	require.NoError(t, err)
	type line struct {
		ID       string                     `json:"id"`
		Messages []struct{ Content string } `json:"messages"`
	}
	bySource := map[string][]line{}
	for i, f := range sum.Files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		name := "source-" + string(rune('1'+i))
		for sc.Scan() {
			var l line
			require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
			bySource[name] = append(bySource[name], l)
		}
		fh.Close()
	}
	tf, err := os.Open(sum.Truth)
	require.NoError(t, err)
	defer tf.Close()
	sc := bufio.NewScanner(tf)
	byID := map[string]Truth{}
	var dups, spans int
	for sc.Scan() {
		var tr Truth
		require.NoError(t, json.Unmarshal(sc.Bytes(), &tr))
		byID[tr.ID] = tr
		l := bySource[tr.Source][tr.Position-1]
		require.Equal(t, tr.ID, l.ID, "truth position points at its record")
		for _, sp := range tr.PII {
			text := l.Messages[sp.Message].Content[sp.Start:sp.End]
			require.NotEmpty(t, text)
			if sp.Type == "EMAIL" {
				require.Contains(t, text, "@")
			}
			spans++
		}
		if tr.DuplicateOf != "" {
			orig := byID[tr.DuplicateOf]
			require.NotEqual(t, orig.Source, tr.Source, "a planted duplicate is in another source")
			require.Equal(t, bySource[orig.Source][orig.Position-1].Messages, l.Messages)
			dups++
		}
	}
	require.Greater(t, dups, 50)
	require.Greater(t, spans, 500)
}

func TestArrayContainerIsOneJSONArray(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sum, err := Write(Options{Dir: dir, Records: 50, Sources: 2, Format: "mixed", Seed: 2, Array: true})
	require.NoError(t, err)
	for _, f := range sum.Files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var arr []json.RawMessage
		require.NoError(t, json.Unmarshal(b, &arr), f)
		require.Len(t, arr, 25)
	}
}
