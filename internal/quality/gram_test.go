package quality

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// gramStatsBySorting is the reference: sort the grams, count runs.
func gramStatsBySorting(hashes []uint64) stats {
	var st stats
	n := len(hashes)
	if n < 5 {
		return st
	}
	var grams []uint64
	for i := 0; i+2 <= n; i++ {
		grams = append(grams, hashes[i]*31+hashes[i+1])
	}
	slices.Sort(grams)
	best, run := 1, 1
	for i := 1; i < len(grams); i++ {
		if grams[i] == grams[i-1] {
			run++
			best = max(best, run)
		} else {
			run = 1
		}
	}
	if best > 1 {
		st.top2 = float64(best*2) / float64(n)
	}
	type at struct {
		h uint64
		i int
	}
	var five []at
	for i := 0; i+5 <= n; i++ {
		h := hashes[i]
		for k := 1; k < 5; k++ {
			h = h*1000003 + hashes[i+k]
		}
		five = append(five, at{h >> 20, i})
	}
	slices.SortFunc(five, func(a, b at) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return a.i - b.i
	})
	covered := make([]bool, n)
	for i := 1; i < len(five); i++ {
		if five[i].h == five[i-1].h {
			for k := five[i].i; k < five[i].i+5; k++ {
				covered[k] = true
			}
		}
	}
	c := 0
	for _, v := range covered {
		if v {
			c++
		}
	}
	st.dup5 = float64(c) / float64(n)
	return st
}

// TestGramStatsCountsAsSortingDoes: the one-pass counts equal the sorted
// reference on repetitive and on varied word sequences.
func TestGramStatsCountsAsSortingDoes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 500; trial++ {
		n := r.IntN(300)
		vocab := 1 + r.IntN(40) // small vocabularies repeat a lot
		hs := make([]uint64, n)
		for i := range hs {
			hs[i] = uint64(r.IntN(vocab)) * 0x9e3779b97f4a7c15
		}
		require.Equal(t, gramStatsBySorting(hs), gramStats(hs), "trial %d", trial)
	}
}
