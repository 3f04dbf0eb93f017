package processor

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/stages"
	"github.com/dspipe/dspipe/internal/wire"
)

// turnCap is a hypothetical tenth stage, written only here: it rejects
// conversations longer than processing.turn_cap.max turns. Nothing else in
// the processor knows of it.
type turnCap struct{}

func (turnCap) Name() string { return "turn_cap" }
func (turnCap) Key() string  { return "turn_cap" }
func (turnCap) Validate(events.Request) error {
	return nil
}
func (turnCap) Resolve(req events.Request, _ pipeline.Env) pipeline.RecordRun {
	var s struct {
		Max int `json:"max"`
	}
	if json.Unmarshal(req.Processing["turn_cap"], &s) != nil || s.Max <= 0 {
		return nil
	}
	return &turnCapRun{max: s.Max}
}

type turnCapRun struct{ max, capped int }

func (c *turnCapRun) Apply(r *pipeline.Record) (pipeline.Verdict, pipeline.Finding) {
	if len(r.Messages) > c.max {
		return pipeline.Verdict{Action: pipeline.Reject, Reason: fmt.Sprintf("%d turns, over %d", len(r.Messages), c.max)}, true
	}
	return pipeline.Verdict{}, false
}
func (c *turnCapRun) Count(_ *pipeline.Summaries, f pipeline.Finding, _ pipeline.Fate, _ pipeline.Where) []events.Payload {
	if f.(bool) {
		c.capped++
	}
	return nil
}
func (c *turnCapRun) EncodeFinding(f pipeline.Finding) ([]byte, error) { return json.Marshal(f) }
func (c *turnCapRun) DecodeFinding(b []byte) (pipeline.Finding, error) {
	var capped bool
	err := json.Unmarshal(b, &capped)
	return capped, err
}
func (c *turnCapRun) Close(_ *pipeline.Summaries, _ *events.StageCompleted, _ events.Counts) pipeline.Gate {
	if c.capped > 1 {
		return pipeline.Gate{Failure: "too many records over the turn cap"}
	}
	return pipeline.Gate{}
}
func (c *turnCapRun) Manifest() (string, any) { return "1", map[string]int{"max": c.max} }

// TestATenthStageIsOneEntryInTheList: a stage added to the list runs in
// its place, rejects with its reason, closes with its gate, and appears in
// the stage events and the manifest, with no other change to the
// processor; a request that does not ask for it does not report it.
func TestATenthStageIsOneEntryInTheList(t *testing.T) {
	p := &Processor{cfg: Config{QualityEnabled: true, Limits: stage.DefaultLimits, RecordIDKey: []byte("k"), RecordStages: append(stages.Record(), turnCap{})}}
	x := testExec(events.Request{Processing: map[string]json.RawMessage{"turn_cap": json.RawMessage(`{"max":2}`)},
		Sources: []events.SourceSpec{{Type: "local", Config: map[string]string{"path": "a.jsonl"}}}})
	x.perSource, x.noConsent = make([]int64, 1), make([]int64, 1)
	require.Equal(t, []string{events.StageAcquisition, events.StageValidation, events.StageStandardization, events.StageQuality, "turn_cap"},
		p.recordStages(x))

	long := []byte(`{"messages":[{"role":"user","content":"I have not slept for weeks and work is hard."},` +
		`{"role":"assistant","content":"That sounds exhausting. What keeps you awake?"},{"role":"user","content":"Mostly worry about money."}]}`)
	o := p.transformOne(long, x, wire.Meta{Kind: wire.KindRecord}, p.stagesFor(x), nil)
	require.NoError(t, o.err)
	require.Equal(t, "turn_cap", o.stage)
	require.Equal(t, "3 turns, over 2", o.reason)
	// Its finding travels to the home partition in the stage's encoding.
	var rep wire.Outcome
	require.NoError(t, json.Unmarshal(o.report, &rep))
	found, err := p.decodeFindings(x, rep)
	require.NoError(t, err)
	require.NoError(t, p.countOutcome(x, wire.Meta{}, rep, found))
	require.NoError(t, p.countOutcome(x, wire.Meta{}, rep, found))
	sc := events.StageCompleted{Stage: "turn_cap"}
	require.Equal(t, "too many records over the turn cap", p.gate(x, &sc).Failure)

	var names []string
	for _, m := range p.stagesRun(x) {
		names = append(names, m.Name)
	}
	require.Contains(t, names, "turn_cap", "the manifest lists it with its settings")

	plain := testExec(events.Request{})
	require.NotContains(t, p.recordStages(plain), "turn_cap", "not asked for: not run, not reported")
}
