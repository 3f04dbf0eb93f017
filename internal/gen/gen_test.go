package gen

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/crisis"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/pii"
	"github.com/dspipe/dspipe/internal/stage"
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

// TestFewAccidentalDuplicates: with no duplicates planted, fusion (exact
// and near, at its default threshold) finds almost nothing to remove in
// generated data: the generator's text varies the way real text does, so
// demos and benchmarks measure a pipeline that keeps what it is given.
func TestFewAccidentalDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 50k conversations")
	}
	g := New(11)
	var x fusion.Index
	var buf []uint64
	const n = 50_000
	for i := 0; i < n; i++ {
		c := g.Next()
		var msgs []stage.Message
		for _, t := range c.Turns {
			msgs = append(msgs, stage.Message{Role: t.Role, Content: t.Content})
		}
		var f fusion.Features
		f, buf = fusion.Compute(msgs, buf)
		x.Add(&f, fusion.Rank{Position: int64(i)})
	}
	r, _ := x.Resolve(0) // in memory: no error
	removed := r.RemovedExact + r.RemovedNear
	t.Logf("%d of %d conversations would be removed (%d exact, %d near)", removed, n, r.RemovedExact, r.RemovedNear)
	require.Less(t, float64(removed)/n, 0.005)
}

// TestUnplantedTextTriggersNoDetector: with nothing planted, no detector
// finds anything in generated text (no identifier, crisis level, content
// flag or demographic mention), so the truth sidecar is the whole truth.
func TestUnplantedTextTriggersNoDetector(t *testing.T) {
	g := New(1)
	g.PIIRate, g.CrisisRate, g.DemographicRate, g.LowQualityRate = 0, 0, 0, 0
	for i := 0; i < 3000; i++ {
		c := g.Next()
		var users []string
		for _, tu := range c.Turns {
			if tu.Role == "user" {
				users = append(users, tu.Content)
			}
			for _, s := range pii.Detect(tu.Content) {
				if s.Type != pii.Organization {
					t.Fatalf("%s found in %q", s.Type, tu.Content)
				}
			}
			require.Empty(t, bias.Detect(tu.Content), tu.Content)
			require.False(t, content.Assess(tu.Content).Flagged, tu.Content)
		}
		require.Equal(t, "none", crisis.Assess(users).Level, "%q", users)
	}
}

// TestFusionRemovesWhatWasPlanted: with 5% exact and 5% near duplicates
// planted across three sources, fusion removes 10% ± 1% of the records.
func TestFusionRemovesWhatWasPlanted(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 30k conversations")
	}
	dir := t.TempDir()
	sum, err := Write(Options{Dir: dir, Records: 30_000, Sources: 3, Format: "chatml", Seed: 21, DupRate: 0.05, NearDupRate: 0.05})
	require.NoError(t, err)
	var x fusion.Index
	var buf []uint64
	n := 0
	for _, file := range sum.Files {
		f, err := os.Open(file)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct {
				Messages []stage.Message `json:"messages"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
			var ft fusion.Features
			ft, buf = fusion.Compute(rec.Messages, buf)
			x.Add(&ft, fusion.Rank{Position: int64(n)})
			n++
		}
		f.Close()
	}
	r, _ := x.Resolve(0) // in memory: no error
	share := float64(r.RemovedExact+r.RemovedNear) / float64(n)
	t.Logf("fusion removed %.2f%% of %d (%d exact, %d near)", 100*share, n, r.RemovedExact, r.RemovedNear)
	require.InDelta(t, 0.10, share, 0.01)
}

// TestMaxTurnsCutsConversations: with MaxTurns every conversation has at
// most that many turns (never fewer than two), the user's first, and some
// reach it.
func TestMaxTurnsCutsConversations(t *testing.T) {
	for _, limit := range []int{1, 2, 4} {
		g := New(5)
		g.MaxTurns, g.LowQualityRate = limit, 0 // a planted empty exchange comes after the cut
		want, longest := max(limit, 2), 0
		for range 500 {
			c := g.Next()
			require.Equal(t, "user", c.Turns[0].Role)
			require.GreaterOrEqual(t, len(c.Turns), 2)
			longest = max(longest, len(c.Turns))
		}
		require.Equal(t, want, longest, "MaxTurns %d", limit)
	}
}
