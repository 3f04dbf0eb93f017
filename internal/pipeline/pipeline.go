// Package pipeline is the shape every per-record stage after
// standardization has (quality, safety, bias, and any stage after them):
// a value that resolves its settings from the request, applies itself to
// one record at a time and says what should happen to it, counts what it
// found into the execution's summaries, and closes with a gate. The list
// of stages, in the order they run, is internal/stages; the processor
// only drives that list (Run), so the stages an execution reports are the
// ones that ran.
package pipeline

import (
	"encoding/json"
	gojson "github.com/goccy/go-json"
	"slices"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/stage"
)

// Env is what the server decides about the stages: which ones it allows
// and the defaults a request may override.
type Env struct {
	QualityEnabled, SafetyEnabled, BiasEnabled, FusionEnabled bool
	// CrisisThreshold quarantines records at this crisis score
	// (CRISIS_DETECTION_THRESHOLD); BiasThreshold fails the bias gate
	// above this score (BIAS_VALIDATION_THRESHOLD).
	CrisisThreshold, BiasThreshold float64
	// PIISalt keys pseudonyms and hashes of masked identifiers.
	PIISalt []byte
}

// Summaries are an execution's running summaries, one per stage that keeps
// one; they travel in progress and stage-completed events, so a restarted
// processor rebuilds them from the log.
type Summaries struct {
	Quality *events.QualitySummary
	Safety  *events.SafetySummary
	Bias    *events.BiasSummary
}

// Record is one record on its way through the stages.
type Record struct {
	*stage.Record
	// Original is the messages as standardized, before any stage changed
	// them: detectors that judge the text as written (demographic
	// mentions, content) read these, not the masked text.
	Original []stage.Message
}

// Annotate sets annotations[key] to v as JSON.
func (r *Record) Annotate(key string, v any) {
	b, err := gojson.Marshal(v) // as encoding/json writes it, faster
	if err != nil {
		return
	}
	if r.Annotations == nil {
		r.Annotations = map[string]json.RawMessage{}
	}
	r.Annotations[key] = b
}

// Action is what a stage decides for a record.
type Action uint8

const (
	// Keep the record (annotated or changed by the stage).
	Keep Action = iota
	// Hold it for a reviewer (quarantine).
	Hold
	// Reject it with a reason. With Verdict.Yield, a later stage's Hold
	// overrides the rejection (crisis content is never dropped for its
	// form); the later stages still run.
	Reject
	// Block rejects it whatever later stages would say; they do not run.
	Block
)

// Verdict is one stage's decision on one record.
type Verdict struct {
	Action Action
	Reason string
	Yield  bool
}

// Finding is what a stage found in one record, for its own Count.
type Finding any

// Fate is what became of a record after every stage: kept, held, or
// rejected by Stage.
type Fate struct {
	Action Action
	Stage  string
	Reason string
}

// Where is a record's place, for the events a stage raises about it:
// positions and ids, never content.
type Where struct {
	Source   string
	Position int64
}

// Gate is what closing a stage decided: alerts to raise, and a reason
// when the stage fails the execution.
type Gate struct {
	Alerts  []events.Alert
	Failure string
}

// RecordStage is a per-record stage.
type RecordStage interface {
	// Name is the stage's name in events (events.Stage*).
	Name() string
	// Key is where the request holds the stage's settings under
	// "processing" ("" when they live elsewhere).
	Key() string
	// Validate checks the stage's settings in a request, as the API
	// accepts it; the error says what to fix.
	Validate(req events.Request) error
	// Resolve reads the stage's settings from the request, with the
	// server's defaults; nil means the stage does not run for it.
	Resolve(req events.Request, env Env) RecordRun
}

// RecordRun is a stage resolved for one execution. Apply is pure (no I/O,
// no shared state): records of one poll are applied in parallel.
type RecordRun interface {
	Apply(r *Record) (Verdict, Finding)
	// Count adds one record's finding to the summaries, once its fate is
	// known, and returns the events to raise (reviews, alerts).
	Count(s *Summaries, f Finding, fate Fate, w Where) []events.Payload
	// EncodeFinding and DecodeFinding carry a finding from the processor
	// that applied the stage to the one that counts it (the execution's
	// home partition may be another processor's): what Count reads, never
	// text. Decode(Encode(f)) must count exactly as f.
	EncodeFinding(f Finding) ([]byte, error)
	DecodeFinding(b []byte) (Finding, error)
	// Close puts the stage's summary on its completed event and applies
	// its gate.
	Close(s *Summaries, sc *events.StageCompleted, c events.Counts) Gate
	// Manifest is the stage's version and resolved settings, as the
	// output's manifest records them.
	Manifest() (version string, settings any)
}

// Refresher is a run whose summary holds figures computed from the counts
// (a score): Refresh brings them up to date before a progress event.
type Refresher interface {
	Refresh(s *Summaries)
}

// Running is a stage that runs for an execution: its name and its run
// (RecordRun or DatasetRun).
type Running[R comparable] struct {
	Name string
	Run  R
}

// Active is a record stage that runs for an execution.
type Active = Running[RecordRun]

// resolvable is a stage of either list.
type resolvable[R comparable] interface {
	Name() string
	Resolve(req events.Request, env Env) R
}

// resolveList resolves a list for one request: the stages that run, in
// order (a nil run is a stage that does not).
func resolveList[S resolvable[R], R comparable](list []S, req events.Request, env Env) []Running[R] {
	var out []Running[R]
	var none R
	for _, s := range list {
		if r := s.Resolve(req, env); r != none {
			out = append(out, Running[R]{Name: s.Name(), Run: r})
		}
	}
	return out
}

// Resolve resolves the record list for one request.
func Resolve(list []RecordStage, req events.Request, env Env) []Active {
	return resolveList[RecordStage, RecordRun](list, req, env)
}

// Result is what the stages made of one record: its fate, and each active
// stage's finding (nil where the stage did not run).
type Result struct {
	Fate     Fate
	Findings []Finding
}

// Run applies the active stages to a standardized record in order. A
// Block stops at once; a yielding Reject stands unless a later stage
// holds the record.
func Run(active []Active, rec *stage.Record) Result {
	r := Record{Record: rec, Original: slices.Clone(rec.Messages)}
	res := Result{Fate: Fate{Action: Keep}, Findings: make([]Finding, len(active))}
	var soft *Fate
	for i, a := range active {
		v, f := a.Run.Apply(&r)
		res.Findings[i] = f
		switch {
		case v.Action == Block, v.Action == Reject && !v.Yield:
			res.Fate = Fate{Action: Reject, Stage: a.Name, Reason: v.Reason}
			return res
		case v.Action == Reject && soft == nil:
			soft = &Fate{Action: Reject, Stage: a.Name, Reason: v.Reason}
		case v.Action == Hold:
			res.Fate = Fate{Action: Hold, Stage: a.Name}
		}
	}
	if soft != nil && res.Fate.Action != Hold {
		res.Fate = *soft
	}
	return res
}
