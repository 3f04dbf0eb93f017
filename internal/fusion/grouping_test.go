package fusion

import (
	"bytes"
	"encoding/binary"
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
		es = append(es, keyed{key: key, at: int32((i * 7919) % 30000), i: int32(i)})
	}
	type pair struct{ first, other int32 }
	var want []pair
	eachGroup(append([]keyed(nil), es...), func(f, o int32) { want = append(want, pair{f, o}) })

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
	require.NoError(t, g.each(func(f, o int32) { got[pair{f, o}] = true }))
	require.Len(t, got, len(want))
	for _, p := range want {
		require.True(t, got[p], "pair %v", p)
	}
	files, _ = filepath.Glob(filepath.Join(dir, ".fusion-*"))
	require.Empty(t, files, "the buckets' file is removed")
}
