package fusion

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGroupingInBuckets: beyond its budget a grouping spreads its entries
// over buckets in one encrypted file (no key in the clear), hands back the
// same groups, in the same order within each, as one sort in memory, and
// removes the file.
func TestGroupingInBuckets(t *testing.T) {
	defer func(b int) { groupBudget = b }(groupBudget)
	groupBudget = 3000
	var es []keyed
	for i := range 30000 {
		key := uint64(i%4000) * 0x9e3779b97f4a7c15 // groups of seven or eight
		es = append(es, keyed{key: key, at: int32((i * 7919) % 30000), i: int32(i), sketch: uint64(i) * 0xbf58476d1ce4e5b9})
	}
	type pair struct{ first, other int32 }
	var want []pair
	eachGroup(append([]keyed(nil), es...), func(f, o *keyed) { want = append(want, pair{f.i, o.i}) })

	dir := t.TempDir()
	g := newGrouping(dir, len(es))
	require.Equal(t, 10, g.parts)
	for _, e := range es {
		g.add(e)
	}
	files, _ := filepath.Glob(filepath.Join(dir, ".fusion-*"))
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.NotEmpty(t, b)
	var clear [8]byte
	binary.LittleEndian.PutUint64(clear[:], es[1].key)
	require.False(t, bytes.Contains(b, clear[:]), "keys are encrypted at rest")

	got := map[pair]bool{}
	require.NoError(t, g.each(func(f, o *keyed) {
		got[pair{f.i, o.i}] = true
		require.Equal(t, es[o.i], *o, "an entry comes back whole")
	}))
	require.Len(t, got, len(want))
	for _, p := range want {
		require.True(t, got[p], "pair %v", p)
	}
	files, _ = filepath.Glob(filepath.Join(dir, ".fusion-*"))
	require.Empty(t, files, "the buckets' file is removed")
}

// TestSketchNeverTurnsAwayASimilarPair: whatever two signatures, when
// their similarity reaches t their sketches allow it; and most pairs that
// only share some values are turned away by the sketches alone.
func TestSketchNeverTurnsAwayASimilarPair(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	turned, unlike := 0, 0
	for range 20000 {
		var a, b packed
		same := rnd.IntN(NumPerm + 1)
		for k := range a {
			a[k] = uint16(rnd.Uint32())
			b[k] = uint16(rnd.Uint32())
			if k < same {
				b[k] = a[k]
			}
		}
		for _, th := range []float64{0.5, 0.85, 0.95, 1} {
			if similarity16(&a, &b) >= th {
				require.True(t, sketchAllows(sketch(&a), sketch(&b), th), "similarity %v, threshold %v", similarity16(&a, &b), th)
			}
		}
		if similarity16(&a, &b) <= 0.5 {
			unlike++
			if !sketchAllows(sketch(&a), sketch(&b), 0.85) {
				turned++
			}
		}
	}
	require.Greater(t, float64(turned)/float64(unlike), 0.99, "pairs at half similarity or less turned away by the sketches")
}
