package pipeline

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/stage"
)

// fixed is a stage that always decides the same and records that it ran
// and what the text looked like when it did.
type fixed struct {
	v    Verdict
	saw  *[]string
	name string
}

func (f fixed) Apply(r *Record) (Verdict, Finding) {
	*f.saw = append(*f.saw, f.name+":"+r.Messages[0].Content+"/"+r.Original[0].Content)
	r.Messages[0].Content = "changed by " + f.name
	return f.v, f.name
}
func (fixed) Count(*Summaries, Finding, Fate, Where) []events.Payload      { return nil }
func (fixed) Close(*Summaries, *events.StageCompleted, events.Counts) Gate { return Gate{} }
func (fixed) Manifest() (string, any)                                      { return "1", nil }
func (fixed) EncodeFinding(Finding) ([]byte, error)                        { return nil, nil }
func (fixed) DecodeFinding([]byte) (Finding, error)                        { return nil, nil }

func run(vs ...Verdict) (Result, []string) {
	var saw []string
	var active []Active
	for i, v := range vs {
		name := string(rune('a' + i))
		active = append(active, Active{Name: name, Run: fixed{v, &saw, name}})
	}
	rec := stage.Record{Messages: []stage.Message{{Role: "user", Content: "hello"}}}
	return Run(active, &rec), saw
}

// TestRunDrivesTheStagesInOrder: every stage sees the record as the stage
// before left it and the original text; a block stops the stages; a
// yielding rejection stands unless a later stage holds the record; the
// first rejection is the one reported.
func TestRunDrivesTheStagesInOrder(t *testing.T) {
	res, saw := run(Verdict{}, Verdict{})
	require.Equal(t, Fate{Action: Keep}, res.Fate)
	require.Equal(t, []string{"a:hello/hello", "b:changed by a/hello"}, saw)
	require.Equal(t, []Finding{"a", "b"}, res.Findings)

	res, saw = run(Verdict{Action: Block, Reason: "never"}, Verdict{})
	require.Equal(t, Fate{Action: Reject, Stage: "a", Reason: "never"}, res.Fate)
	require.Len(t, saw, 1, "a block stops the stages")
	require.Equal(t, []Finding{"a", nil}, res.Findings, "a stage that did not run has no finding")

	res, _ = run(Verdict{Action: Reject, Reason: "low", Yield: true}, Verdict{Action: Hold})
	require.Equal(t, Fate{Action: Hold, Stage: "b"}, res.Fate, "a hold overrides a yielding rejection")

	res, saw = run(Verdict{Action: Reject, Reason: "low", Yield: true}, Verdict{}, Verdict{Action: Reject, Reason: "later", Yield: true})
	require.Equal(t, Fate{Action: Reject, Stage: "a", Reason: "low"}, res.Fate)
	require.Len(t, saw, 3, "the stages after a yielding rejection still run")

	res, _ = run(Verdict{Action: Hold}, Verdict{Action: Reject, Reason: "bad"})
	require.Equal(t, Fate{Action: Reject, Stage: "b", Reason: "bad"}, res.Fate, "a plain rejection is final")
}
