package fusion

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/stage"
)

// words60 is a long user turn; variants change a few of its words.
func words60(prefix, suffix string) []stage.Message { return wordsFrom(0, prefix, suffix) }

// wordsFrom is words60 without its first skip words.
func wordsFrom(skip int, prefix, suffix string) []stage.Message {
	var b strings.Builder
	for i := skip; i < 60; i++ {
		fmt.Fprintf(&b, "w%d ", i)
	}
	return msgs(prefix+" "+b.String()+" "+suffix, "I hear you. What would help most right now?")
}

type rec struct {
	msgs []stage.Message
	rank Rank
}

func resolve(recs []rec, threshold float64) Result {
	var x Index
	for _, r := range recs {
		f, _ := Compute(r.msgs, nil)
		x.Add(&f, r.rank)
	}
	r, err := x.Resolve(threshold)
	if err != nil {
		panic(err)
	}
	return r
}

// TestClustersTable: which record each one's cluster keeps, over exact
// copies (normalised case, punctuation and spacing), rank order (priority,
// then the source's order, then position), roles, distinct records, and a
// threshold of 1 (exact only).
func TestClustersTable(t *testing.T) {
	a := msgs("I can't stop worrying about money since I lost my job last month.", "That is a lot of pressure. What worries you most?")
	aCase := msgs("i can't stop worrying about money, since I lost my job last month!", "That is a lot of pressure.  What worries you most?")
	aRoles := []stage.Message{{Role: stage.RoleAssistant, Content: a[0].Content}, {Role: stage.RoleUser, Content: a[1].Content}}
	b := msgs("My sister and I have not spoken in two years and I miss her.", "Families can carry long silences. What would you want to say?")
	for _, c := range []struct {
		name      string
		recs      []rec
		threshold float64
		keeper    []int32
		exact     int
		clusters  int
	}{
		{"distinct records stay", []rec{{a, Rank{}}, {b, Rank{Position: 1}}}, 0, []int32{0, 1}, 0, 0},
		{"an exact copy goes, the better priority stays", []rec{{a, Rank{Priority: 2}}, {aCase, Rank{Priority: 1, Source: 1}}}, 0, []int32{1, 1}, 1, 1},
		{"equal priority: the earlier source stays", []rec{{a, Rank{Priority: 1, Source: 1}}, {aCase, Rank{Priority: 1, Source: 0}}}, 0, []int32{1, 1}, 1, 1},
		{"same source: the earlier position stays", []rec{{a, Rank{Position: 9}}, {aCase, Rank{Position: 3}}, {a, Rank{Position: 5}}}, 0, []int32{1, 1, 1}, 2, 1},
		{"roles are part of the text", []rec{{a, Rank{}}, {aRoles, Rank{Position: 1}}}, 1, []int32{0, 1}, 0, 0},
		{"threshold 1 removes exact copies only", []rec{{words60("x", ""), Rank{}}, {words60("x", "y"), Rank{Position: 1}}}, 1, []int32{0, 1}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := resolve(c.recs, c.threshold)
			require.Equal(t, c.keeper, r.Keeper)
			require.Equal(t, c.exact, r.RemovedExact)
			require.Equal(t, c.clusters, r.Clusters)
		})
	}
}

// TestNearDuplicatesChain: A is near B and B near C, while A is not near
// C. C has the best rank and is kept; B, near it, goes; A stays: a chain
// never removes a record that is not itself near the one kept. The result
// does not depend on the order the records arrived in.
func TestNearDuplicatesChain(t *testing.T) {
	A := words60("alpha", "")
	B := words60("alpha", "one two three four")
	C := wordsFrom(8, "omega psi chi phi rho tau eta zeta", "one two three four")
	fa, _ := Compute(A, nil)
	fb, _ := Compute(B, nil)
	fc, _ := Compute(C, nil)
	const threshold = 0.7
	require.GreaterOrEqual(t, Similarity(&fa.Sig, &fb.Sig), threshold+Margin, "premise: A near B")
	require.GreaterOrEqual(t, Similarity(&fb.Sig, &fc.Sig), threshold+Margin, "premise: B near C")
	require.Less(t, Similarity(&fa.Sig, &fc.Sig), threshold, "premise: A not near C")
	for _, order := range [][3]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		all := []rec{{A, Rank{Priority: 3}}, {B, Rank{Priority: 2}}, {C, Rank{Priority: 1}}}
		recs := []rec{all[order[0]], all[order[1]], all[order[2]]}
		at := map[int]int32{}
		for i, o := range order {
			at[o] = int32(i)
		}
		r := resolve(recs, threshold)
		require.Equal(t, at[0], r.Keeper[at[0]], "A stays, order %v", order)
		require.Equal(t, at[2], r.Keeper[at[1]], "B goes to C, order %v", order)
		require.Equal(t, at[2], r.Keeper[at[2]], "C stays, order %v", order)
		require.Equal(t, 1, r.RemovedNear)
	}
}
