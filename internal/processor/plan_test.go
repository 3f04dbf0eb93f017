package processor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/stages"
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

type planRec struct {
	id       string
	msgs     []stage.Message
	source   int
	priority int
	group    string
}

// planWith runs the dataset list, resolved for req, over records given as
// conversations with their source, priority and metadata.group, as the
// output stage's first pass shows them.
func planWith(req events.Request, recs []planRec) *dataPlan {
	active := pipeline.ResolveDataset(stages.Dataset(), req, pipeline.Env{FusionEnabled: true})
	for i, r := range recs {
		sr := pipeline.StagedRecord{Index: i, ID: r.id, Source: r.source, Priority: r.priority, Position: int64(i), Messages: r.msgs,
			Metadata: map[string]string{"group": r.group}}
		for _, a := range active {
			a.Run.Observe(&sr)
		}
	}
	plan := pipeline.NewPlan(len(recs))
	for _, a := range active {
		a.Run.Decide(plan)
	}
	return plan
}

// TestPlanFusesThenBalances: an exact copy in a lower-priority source is
// removed and named in its keeper's lineage; balancing then works on what
// fusion kept only, and the plan's count of data records follows both.
func TestPlanFusesThenBalances(t *testing.T) {
	a := conv("I have not slept properly for weeks and I feel on edge all day.", "That sounds exhausting. What happens when you try to sleep?")
	b := conv("My manager criticises everything I do and I dread Mondays.", "That is a heavy weight to carry into every week.")
	c := conv("I moved to a new city and I do not know anyone here yet.", "Moving is lonely at first. What did you enjoy back home?")
	recs := []planRec{
		{"r0", a, 1, 2, "g1"}, // the copy: lower priority (2 > 1)
		{"r1", b, 0, 1, "g1"},
		{"r2", a, 0, 1, "g1"}, // the keeper of a
		{"r3", c, 0, 1, "g2"},
	}
	req := events.Request{Sources: []events.SourceSpec{{Type: "local"}, {Type: "local"}}, Fusion: json.RawMessage(`{"near_threshold":0.8}`)}
	plan := planWith(req, recs)
	require.Equal(t, []int32{0, 1, 1, 1}, plan.Copies)
	require.Equal(t, map[int32][]string{2: {"r0"}}, plan.Merged.All())
	require.EqualValues(t, 1, plan.Fusion.RemovedExact)
	require.Equal(t, []int64{3, 0}, plan.Fusion.KeptPerSource)
	require.Nil(t, plan.Balancing, "balancing was not asked for")
	require.EqualValues(t, 3, wantData(plan, 99))

	// g2 twice g1's share over the 3 records fusion kept, oversampling:
	// g1 keeps one of its two, g2's one record is written twice, and the
	// removed copy stays removed.
	req.Processing = map[string]json.RawMessage{"balancing": json.RawMessage(`{"key":"metadata.group","targets":{"g1":1,"g2":2},"oversample":true}`)}
	plan = planWith(req, recs)
	require.Zero(t, plan.Copies[0])
	require.EqualValues(t, 1, plan.Copies[1]+plan.Copies[2])
	require.EqualValues(t, 2, plan.Copies[3])
	require.EqualValues(t, 3, wantData(plan, 99))
	require.EqualValues(t, 1, plan.Balancing.Groups[1].Repeated)
	require.EqualValues(t, 99, wantData(nil, 99), "no plan: every valid record")
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
// the stage failed (data, rejected and quarantine files, the
// staging directory), Abort removes it, and Abort after Commit keeps the
// published output.
func TestOutputWriterAbortLeavesNothing(t *testing.T) {
	root := t.TempDir()
	x := testExec(events.Request{Sources: []events.SourceSpec{{Type: "local"}, {Type: "local"}}})
	final := filepath.Join(root, "out-1")
	w, err := newOutputWriter(root, final, x)
	require.NoError(t, err)
	require.NoError(t, w.write(wire.KindStaged, []byte(`{"id":"a"}`)))
	require.NoError(t, w.write(wire.KindRejected, []byte(`{"stage":"validation"}`)))
	require.NoError(t, w.write(wire.KindQuarantined, []byte(`{"id":"q"}`)))
	w.Abort()
	w.Abort() // twice is fine
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing left under the root")

	w, err = newOutputWriter(root, final, x)
	require.NoError(t, err)
	require.NoError(t, w.write(wire.KindStaged, []byte(`{"id":"a"}`)))
	_, err = w.finishRecords()
	require.NoError(t, err)
	require.EqualValues(t, 1, w.dataRecords)
	require.NoError(t, w.Commit(false))
	w.Abort()
	b, err := os.ReadFile(filepath.Join(final, "data.jsonl"))
	require.NoError(t, err)
	require.Equal(t, "{\"id\":\"a\"}\n", string(b))
}

// TestFirstPassDecodesOnlyWhatTheStagesRead: with fusion's features (and
// the record's id) travelling with the record, the output's first pass
// decodes only the fields the active stages read: nothing for fusion
// alone, the id and metadata when balancing groups by a metadata value,
// never the messages. It observes the work it was given. Without them (or with a stage that
// reads every field) it decodes the whole record and fusion computes the
// same features itself.
func TestFirstPassDecodesOnlyWhatTheStagesRead(t *testing.T) {
	msgs := conv("I have not slept properly for weeks.", "That sounds exhausting.")
	value, err := json.Marshal(map[string]any{"id": "r1", "messages": msgs, "metadata": map[string]string{"group": "g1"},
		"annotations": map[string]any{"quality": map[string]float64{"score": 1}}})
	require.NoError(t, err)
	p := &Processor{}
	for _, c := range []struct {
		name      string
		balancing string
		metadata  bool
	}{{"fusion alone", "", false}, {"and balancing by metadata", `{"key":"metadata.group","targets":{"g1":1}}`, true}} {
		req := events.Request{Sources: []events.SourceSpec{{Type: "local"}}, Fusion: json.RawMessage(`{"near_threshold":0.8}`)}
		if c.balancing != "" {
			req.Processing = map[string]json.RawMessage{"balancing": json.RawMessage(c.balancing)}
		}
		active := pipeline.ResolveDataset(stages.Dataset(), req, pipeline.Env{FusionEnabled: true})
		preparers := make([]pipeline.Preparer, len(active))
		for k, a := range active {
			preparers[k], _ = a.Run.(pipeline.Preparer)
		}
		require.NotNil(t, preparers[0], "fusion prepares")
		codec := preparers[0].(pipeline.PreparedCodec)
		own := codec.Prepare(&pipeline.StagedRecord{ID: "r1", Messages: msgs})
		frame := appendFrame(nil, 0, wire.Meta{}, 0, value, []kgo.RecordHeader{{Key: preparedHeader + active[0].Name, Value: codec.EncodePrepared(own)}})
		travelled := frame[frameHeader+len(value):]
		x := testExec(req)

		it := stagedItem{value: value, sealedPrep: travelled}
		p.prepareStaged(x, &it, active, preparers, fieldsRead(active))
		require.NoError(t, it.err, c.name)
		require.Equal(t, c.metadata, it.rec.ID == "r1", "%s: the id decoded only when a stage reads it (fusion's work carries it)", c.name)
		require.Nil(t, it.rec.Messages, "%s: no stage reads text: the messages stay undecoded", c.name)
		require.Equal(t, c.metadata, it.rec.Metadata["group"] == "g1", "%s: metadata decoded only when read", c.name)
		require.Equal(t, own, it.prepared[0], c.name)

		it = stagedItem{value: value}
		p.prepareStaged(x, &it, active, preparers, fieldsRead(active))
		require.NoError(t, it.err, c.name)
		require.Equal(t, msgs, it.rec.Messages, "%s: no features travelled: fusion needs the text", c.name)
		require.Equal(t, own, it.prepared[0], "%s: and computes the same features", c.name)

		withReader := append([]pipeline.DatasetActive{{Name: "reader", Run: allReader{}}}, active...)
		it = stagedItem{value: value, sealedPrep: travelled}
		p.prepareStaged(x, &it, withReader, append([]pipeline.Preparer{nil}, preparers...), fieldsRead(withReader))
		require.NoError(t, it.err, c.name)
		require.Equal(t, msgs, it.rec.Messages, "%s: a stage that reads every field gets them", c.name)
		require.NotNil(t, it.rec.Annotations["quality"], c.name)
	}
}

// allReader is a dataset run that does not say what it reads.
type allReader struct{}

func (allReader) Observe(*pipeline.StagedRecord) {}
func (allReader) Decide(*pipeline.Plan) error    { return nil }
func (allReader) Close() error                   { return nil }
func (allReader) Manifest() (string, any)        { return "1", nil }

// TestEachParallelCallsEveryIndexOnce: however many items, each index is
// worked exactly once.
func TestEachParallelCallsEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 1001, 4099} {
		calls := make([]atomic.Int32, n)
		eachParallel(n, func(i int) { calls[i].Add(1) })
		for i := range calls {
			require.EqualValues(t, 1, calls[i].Load(), "n=%d index %d", n, i)
		}
	}
}
