package pipeline

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMergedIDs: the ids merged into each keeper come back sorted, apart
// from other keepers', whatever order they were added in.
func TestMergedIDs(t *testing.T) {
	var m Merged
	require.Nil(t, m.Of(3))
	m.Add(7, "c")
	m.Add(3, "zz")
	m.Add(7, "a")
	m.Add(3, "b")
	m.Add(0, "")
	require.Equal(t, 5, m.Len())
	require.Equal(t, []string{"a", "c"}, m.Of(7))
	require.Equal(t, []string{"b", "zz"}, m.Of(3))
	require.Nil(t, m.Of(5))
	m.Add(5, "q")
	require.Equal(t, []string{"q"}, m.Of(5))
	require.Equal(t, map[int32][]string{0: {""}, 3: {"b", "zz"}, 5: {"q"}, 7: {"a", "c"}}, m.All())
}
