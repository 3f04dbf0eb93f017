package fusion

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// gatheredRecords are spillRecords as the pipeline hands them to fusion:
// by source, then position, with gaps where validation rejected a record.
func gatheredRecords() []rec {
	recs := spillRecords()
	bySource := make([][]rec, 3)
	for _, r := range recs {
		bySource[r.rank.Source] = append(bySource[r.rank.Source], r)
	}
	var out []rec
	for s, rs := range bySource {
		for k, r := range rs {
			r.rank.Position = int64(k + k/7) // a gap every seventh record
			r.rank.Priority = 2 - s%2        // source 1 first, then 0 and 2
			out = append(out, r)
		}
	}
	return out
}

// TestRanksInRunsResolveAsRanksOneByOne: records in the pipeline's order
// keep their ranks as a few runs, and cluster exactly as the same records
// added in a shuffled order (every record's rank kept apart), spilled and
// grouped in many buckets or not.
func TestRanksInRunsResolveAsRanksOneByOne(t *testing.T) {
	recs := gatheredRecords()
	var x Index
	for _, r := range recs {
		f, _ := Compute(r.msgs, nil)
		x.Add(&f, r.rank)
	}
	inRuns, err := x.Resolve(0.8)
	require.NoError(t, err)
	require.Less(t, len(x.ranks.runs), len(recs)/5, "runs, not a rank a record")
	require.Nil(t, x.ranks.at, "runs that do not interleave need no place a record")
	require.Positive(t, inRuns.RemovedExact)
	require.Positive(t, inRuns.RemovedNear)

	perm := rand.New(rand.NewPCG(1, 2)).Perm(len(recs))
	var y Index
	for _, k := range perm {
		f, _ := Compute(recs[k].msgs, nil)
		y.Add(&f, recs[k].rank)
	}
	shuffled, err := y.Resolve(0.8)
	require.NoError(t, err)
	require.Greater(t, len(y.ranks.runs), len(recs)/2, "shuffled, nearly every record is a run of its own")
	require.Equal(t, inRuns.Clusters, shuffled.Clusters)
	require.Equal(t, inRuns.RemovedExact, shuffled.RemovedExact)
	require.Equal(t, inRuns.RemovedNear, shuffled.RemovedNear)
	for to, from := range perm {
		require.Equal(t, inRuns.Keeper[from], int32(perm[shuffled.Keeper[to]]), "record %d", from)
	}

	defer func(b int) { groupBudget = b }(groupBudget)
	groupBudget = 97
	require.Equal(t, inRuns, resolveSpilled(t, recs, 0.8))
}

// TestRankPlaces: a record's place is its rank's place among all, ties
// broken by the order added, whether the runs interleave or not.
func TestRankPlaces(t *testing.T) {
	for name, ranks := range map[string][]rank{
		"apart":      {{0, 1, 5}, {0, 1, 6}, {0, 0, 1}, {0, 0, 2}, {0, 0, 9}, {1, 0, 0}},
		"interleave": {{0, 0, 1}, {0, 0, 2}, {0, 1, 0}, {0, 0, 3}, {0, 0, 0}, {0, 1, 0}},
	} {
		var r rankRuns
		for _, k := range ranks {
			r.add(k)
		}
		r.seal()
		for i := range ranks {
			want := 0
			for j := range ranks {
				if ranks[j].less(ranks[i]) || !ranks[i].less(ranks[j]) && j < i {
					want++
				}
			}
			require.Equal(t, int32(want), r.place(int32(i)), "%s: record %d", name, i)
			require.Equal(t, ranks[i], r.rankOf(int32(i)), "%s: record %d", name, i)
		}
	}
}
