package fusion

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/stage"
)

// spillRecords are conversations with exact copies and near copies (one
// word changed) among distinct ones.
func spillRecords() []rec {
	var out []rec
	for i := 0; i < 1500; i++ {
		base := []stage.Message{
			{Role: "user", Content: "since the move to the new flat number " + itoa(i) + " I have not slept well and the days feel long and heavy"},
			{Role: "assistant", Content: "that sounds exhausting, what helps you wind down in the evening before bed on a weekday"},
		}
		out = append(out, rec{base, Rank{Source: i % 3, Position: int64(i)}})
		switch i % 10 {
		case 0: // an exact copy in another source
			out = append(out, rec{base, Rank{Source: (i + 1) % 3, Position: int64(i + 100000)}})
		case 1: // a near copy
			near := append([]stage.Message(nil), base...)
			near[1].Content += " or at the weekend"
			out = append(out, rec{near, Rank{Source: (i + 2) % 3, Position: int64(i + 200000)}})
		}
	}
	return out
}

func itoa(i int) string {
	return string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
}

// TestSpilledIndexResolvesAlike: an index whose signatures spill to disk
// finds exactly the clusters the in-memory index finds; its file holds no
// signature in the clear and is gone after Close.
func TestSpilledIndexResolvesAlike(t *testing.T) {
	recs := spillRecords()
	want := resolve(recs, 0.8)
	require.Positive(t, want.RemovedExact)
	require.Positive(t, want.RemovedNear)

	dir := t.TempDir()
	var x Index
	x.SpillBeyond(dir, 100)
	var first Signature
	for i, r := range recs {
		f, _ := Compute(r.msgs, nil)
		if i == 0 {
			first = f.Sig
		}
		x.Add(&f, r.rank)
	}
	got, err := x.Resolve(0.8)
	require.NoError(t, err)
	require.Equal(t, want, got)

	files, _ := filepath.Glob(filepath.Join(dir, ".fusion-*"))
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.Len(t, b, len(recs)*featSealed)
	var clear [2 * NumPerm]byte
	for k, v := range first {
		binary.LittleEndian.PutUint16(clear[2*k:], uint16(v>>16))
	}
	require.False(t, bytes.Contains(b, clear[:16]), "signatures are encrypted at rest")
	require.NoError(t, x.Close())
	files, _ = filepath.Glob(filepath.Join(dir, ".fusion-*"))
	require.Empty(t, files, "Close removes the spill file")
}

// TestSpillThatCannotBeWrittenIsAnError: a spill directory that does not
// exist fails Resolve with a reason, never a wrong result.
func TestSpillThatCannotBeWrittenIsAnError(t *testing.T) {
	var x Index
	x.SpillBeyond(filepath.Join(t.TempDir(), "missing"), 1)
	for _, r := range spillRecords()[:10] {
		f, _ := Compute(r.msgs, nil)
		x.Add(&f, r.rank)
	}
	_, err := x.Resolve(0.8)
	require.ErrorContains(t, err, "fusion: spill the index")
}

// TestIDsAreKeptWhateverTheirForm: record ids (32 lower-case hex digits)
// are held as their 16 bytes, in memory or spilled to an encrypted file
// that holds no id in the clear and is gone after close, and come back
// the same; an id of any other form comes back as it was.
func TestIDsAreKeptWhateverTheirForm(t *testing.T) {
	ids := []string{"0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF", "short", "", "ffffffffffffffffffffffffffffffff",
		"0123456789abcdef0123456789abcdeg"}
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("%016x%016x", uint64(i+1)*0x9e3779b97f4a7c15, uint64(i+1)*0xbf58476d1ce4e5b9))
	}
	for _, spill := range []bool{false, true} {
		dir := t.TempDir()
		l := idList{}
		if spill {
			l.spillDir, l.spillAfter = dir, 100
		}
		for _, id := range ids {
			l.add(id)
		}
		for i, id := range ids {
			got, err := l.at(i)
			require.NoError(t, err)
			require.Equal(t, id, got, "id %d (spilled: %v)", i, spill)
		}
		require.Len(t, l.other, 4, "the ids not in the packed form are kept apart")
		files, _ := filepath.Glob(filepath.Join(dir, ".fusion-*"))
		if !spill {
			require.Empty(t, files)
			continue
		}
		require.Len(t, files, 1)
		b, err := os.ReadFile(files[0])
		require.NoError(t, err)
		raw, _ := hex.DecodeString(ids[len(ids)-1])
		require.False(t, bytes.Contains(b, raw), "ids are encrypted at rest")
		require.NoError(t, l.close())
		files, _ = filepath.Glob(filepath.Join(dir, ".fusion-*"))
		require.Empty(t, files, "close removes the file")
	}
}

// TestGroupingInPassesResolvesAlike: with the grouping budget far below
// the records, a spilled index spreads every grouping over many buckets
// of an encrypted file and still finds exactly the clusters of one sort in
// memory; an index in memory sorts in memory whatever the budget.
func TestGroupingInPassesResolvesAlike(t *testing.T) {
	recs := spillRecords()
	want := resolve(recs, 0.8)
	exactOnly := resolve(recs, 1)
	defer func(b int) { groupBudget = b }(groupBudget)
	groupBudget = 97
	require.Equal(t, want, resolve(recs, 0.8), "in memory")
	require.Equal(t, exactOnly, resolve(recs, 1), "exact only")
	require.Equal(t, want, resolveSpilled(t, recs, 0.8), "spilled")
}

// resolveSpilled clusters recs in an index that spills beyond 100
// records.
func resolveSpilled(t *testing.T, recs []rec, threshold float64) Result {
	t.Helper()
	var x Index
	x.SpillBeyond(t.TempDir(), 100)
	defer x.Close()
	for _, r := range recs {
		f, _ := Compute(r.msgs, nil)
		x.Add(&f, r.rank)
	}
	got, err := x.Resolve(threshold)
	require.NoError(t, err)
	return got
}
