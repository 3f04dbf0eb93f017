package processor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

func conv(texts ...string) []stage.Message {
	var m []stage.Message
	for i, t := range texts {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		m = append(m, stage.Message{Role: role, Content: t})
	}
	return m
}

// planOf builds a plan over records given as conversations with their
// source and priority, as readPlanInput would have read them.
func planOf(t *testing.T, recs []struct {
	id       string
	msgs     []stage.Message
	source   int
	priority int
	group    string
}) (*dataPlan, *planInput) {
	t.Helper()
	in := &planInput{}
	var buf []uint64
	for i, r := range recs {
		var f fusion.Features
		f, buf = fusion.Compute(r.msgs, buf)
		in.idx.Add(&f, fusion.Rank{Priority: r.priority, Source: r.source, Position: int64(i)})
		in.ids = append(in.ids, r.id)
		in.srcOf = append(in.srcOf, int32(r.source))
		in.groups = append(in.groups, r.group)
	}
	plan := &dataPlan{copies: make([]int32, len(recs)), merged: map[int32][]string{}}
	for i := range plan.copies {
		plan.copies[i] = 1
	}
	return plan, in
}

// TestPlanFusesThenBalances: an exact copy in a lower-priority source is
// removed and named in its keeper's lineage; balancing then works on what
// fusion kept only, and the plan's count of data records follows both.
func TestPlanFusesThenBalances(t *testing.T) {
	a := conv("I have not slept properly for weeks and I feel on edge all day.", "That sounds exhausting. What happens when you try to sleep?")
	b := conv("My manager criticises everything I do and I dread Mondays.", "That is a heavy weight to carry into every week.")
	c := conv("I moved to a new city and I do not know anyone here yet.", "Moving is lonely at first. What did you enjoy back home?")
	recs := []struct {
		id       string
		msgs     []stage.Message
		source   int
		priority int
		group    string
	}{
		{"r0", a, 1, 2, "g1"}, // the copy: lower priority (2 > 1)
		{"r1", b, 0, 1, "g1"},
		{"r2", a, 0, 1, "g1"}, // the keeper of a
		{"r3", c, 0, 1, "g2"},
	}
	plan, in := planOf(t, recs)
	plan.fuse(in, &fusion.Settings{NearThreshold: 0.8}, 2)
	require.Equal(t, []int32{0, 1, 1, 1}, plan.copies)
	require.Equal(t, map[int32][]string{2: {"r0"}}, plan.merged)
	require.EqualValues(t, 1, plan.fusion.RemovedExact)
	require.Equal(t, []int64{3, 0}, plan.fusion.KeptPerSource)
	require.EqualValues(t, 3, plan.wantData(99))

	// g2 twice g1's share over the 3 records fusion kept, oversampling:
	// g1 keeps one of its two, g2's one record is written twice, and the
	// removed copy stays removed.
	plan.balance(in, &balance.Settings{Key: "source", Targets: map[string]float64{"g1": 1, "g2": 2}, Oversample: true})
	require.Zero(t, plan.copies[0])
	require.EqualValues(t, 1, plan.copies[1]+plan.copies[2])
	require.EqualValues(t, 2, plan.copies[3])
	require.EqualValues(t, 3, plan.wantData(99))
	require.EqualValues(t, 1, plan.balancing.Groups[1].Repeated)
	var none *dataPlan
	require.EqualValues(t, 99, none.wantData(99), "no plan: every valid record")
}

// TestVerifyCountsNamesTheMismatch: the output is published only when the
// files hold exactly what the events counted.
func TestVerifyCountsNamesTheMismatch(t *testing.T) {
	x := testExec(events.Request{})
	x.counts = events.Counts{Valid: 3, Rejected: 1}
	w := &outputWriter{staged: 3, dataRecords: 3, files: []events.OutputFile{{Name: "rejected.jsonl", Records: 1}, {Name: "quarantine.jsonl"}}}
	require.NoError(t, verifyCounts(x, nil, w))
	w.dataRecords = 2
	err := verifyCounts(x, nil, w)
	require.ErrorContains(t, err, "staged topic holds 3 valid (2 written), 1 rejected and 0 quarantined records, expected 3 (3), 1 and 0")
}

// TestOutputWriterAbortLeavesNothing: whatever the writer had open when
// the stage failed (spools, data, rejected and quarantine files, the
// staging directory), Abort removes it, and Abort after Commit keeps the
// published output.
func TestOutputWriterAbortLeavesNothing(t *testing.T) {
	root := t.TempDir()
	x := testExec(events.Request{Sources: []events.SourceSpec{{Type: "local"}, {Type: "local"}}})
	final := filepath.Join(root, "out-1")
	w, err := newOutputWriter(root, final, x, nil)
	require.NoError(t, err)
	require.NoError(t, w.write(wire.KindStaged, 1, []byte(`{"id":"a"}`)))
	require.NoError(t, w.write(wire.KindRejected, 0, []byte(`{"stage":"validation"}`)))
	require.NoError(t, w.write(wire.KindQuarantined, 0, []byte(`{"id":"q"}`)))
	w.Abort()
	w.Abort() // twice is fine
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing left under the root")

	w, err = newOutputWriter(root, final, x, nil)
	require.NoError(t, err)
	require.NoError(t, w.write(wire.KindStaged, 0, []byte(`{"id":"a"}`)))
	_, err = w.finishRecords()
	require.NoError(t, err)
	require.EqualValues(t, 1, w.dataRecords)
	require.NoError(t, w.Commit(false))
	w.Abort()
	b, err := os.ReadFile(filepath.Join(final, "data.jsonl"))
	require.NoError(t, err)
	require.Equal(t, "{\"id\":\"a\"}\n", string(b))
}
