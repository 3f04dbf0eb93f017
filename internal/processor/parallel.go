package processor

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	json "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

// outcome is the pure result of the per-record stages for one raw record:
// the encoded canonical record, or the stage and reason of its rejection.
type outcome struct {
	ready  bool
	value  []byte
	stage  string
	reason string
	// findings are the active record stages' findings (nil where a stage
	// did not run), for their Count once the record's fate is applied;
	// fate says whether a stage holds the record for review.
	findings []pipeline.Finding
	fate     pipeline.Fate
	// withdrawn is the pseudonym of a data subject whose consent this
	// record says was withdrawn: the subject is to be erased.
	withdrawn string
	// prepared is the dataset stages' work on a kept record.
	prepared []prepared
	// meta is the raw record's metadata, read once here (hasMeta).
	meta    wire.Meta
	hasMeta bool
	// staged (with its headers) and report are what goes to the staged and
	// outcomes topics, sealed (spread.go); err says they could not be made.
	staged     []byte
	stagedHead []kgo.RecordHeader
	report     []byte
	err        error
}

// stageRun is an execution's resolved settings for the per-record stages.
type stageRun struct {
	// keepSourceIDs leaves metadata.source_id as the input had it; by
	// default it becomes a keyed hash (output.keep_source_ids).
	keepSourceIDs bool
	// requireConsent rejects records whose source's consent field does
	// not say consent was given (processing.require_consent).
	requireConsent bool
	// erased maps erased record ids and source-id hashes to their erasure;
	// erasedErr says they could not be read (the record is not processed).
	erased    map[string]string
	erasedErr error
	// stages are the record stages that run, in order (internal/stages).
	stages []pipeline.Active
	// prepare are the dataset stages whose per-record work is done here,
	// for every kept record, and travels with it (pipeline.PreparedCodec).
	prepare []preparing
}

// preparing is a dataset stage's run used only to prepare records.
type preparing struct {
	name  string
	codec pipeline.PreparedCodec
}

// prepared is one dataset stage's work on a kept record, encoded.
type prepared struct {
	name string
	b    []byte
}

// transform runs the per-record stages on one record. It touches no
// shared state, so records of one poll are transformed in parallel.
func transform(raw []byte, lim stage.Limits, idKey []byte, spec events.SourceSpec, m wire.Meta, execID string, run *stageRun, dk *crypt.DataKey) outcome {
	if m.Kind == wire.KindBad {
		return rejected(events.StageAcquisition, m.Err)
	}
	if dk != nil {
		plain, err := dk.Open(nil, raw, crypt.AD(nil, execID, crypt.PlaceRaw, m.Kind, m.Source, m.Position))
		if err != nil {
			return rejected(events.StageAcquisition, "the record does not decrypt with its execution's data key (altered or moved)")
		}
		raw = plain
	}
	in, err := stage.Validate(raw, lim)
	if err != nil {
		return rejected(events.StageValidation, err.Error())
	}
	uri := m.Object
	if uri == "" {
		uri = spec.Config["path"]
	}
	prov := stage.Provenance{Name: spec.DisplayName(m.Source), Type: spec.Type, URI: uri, Priority: spec.Priority, Position: m.Position}
	rec, err := stage.Standardize(in, prov, idKey)
	if err != nil {
		return rejected(events.StageStandardization, err.Error())
	}
	sid := ""
	if id := rec.Metadata["source_id"]; id != "" {
		sid = stage.SourceIDHash(idKey, prov.Name, id)
		if !run.keepSourceIDs {
			rec.Metadata["source_id"] = sid
		}
	}
	if o, stop := admit(raw, spec, &rec, sid, run); stop {
		return o
	}
	o := runStages(&rec, run)
	if o.value != nil && o.fate.Action != pipeline.Hold {
		o.prepared = prepareKept(&rec, spec, m, run)
	}
	return o
}

// prepareKept runs the dataset stages' per-record work on a kept record,
// as the output stage's first pass would see it.
func prepareKept(rec *stage.Record, spec events.SourceSpec, m wire.Meta, run *stageRun) []prepared {
	if len(run.prepare) == 0 {
		return nil
	}
	sr := pipeline.StagedRecord{ID: rec.ID, Source: m.Source, Priority: spec.Priority, Position: m.Position,
		Messages: rec.Messages, Metadata: rec.Metadata, Annotations: rec.Annotations}
	out := make([]prepared, len(run.prepare))
	for i, pr := range run.prepare {
		out[i] = prepared{name: pr.name, b: pr.codec.EncodePrepared(pr.codec.Prepare(&sr))}
	}
	return out
}

func rejected(stage, reason string) outcome {
	return outcome{ready: true, stage: stage, reason: reason}
}

// admit rejects a record without consent (when the request requires it)
// or that an erasure names.
func admit(raw []byte, spec events.SourceSpec, rec *stage.Record, sid string, run *stageRun) (outcome, bool) {
	if run.requireConsent {
		if why, withdrawn := consentMissing(raw, spec); why != "" {
			o := rejected(events.StageValidation, NoConsent+": "+why)
			if withdrawn { // the data subject: its source id, else the record
				o.withdrawn = sid
				if o.withdrawn == "" {
					o.withdrawn = rec.ID
				}
			}
			return o, true
		}
	}
	if er, ok := run.erased[rec.ID]; ok {
		return rejected(events.StageValidation, Erased+": "+er), true
	}
	if er, ok := run.erased[sid]; ok && sid != "" {
		return rejected(events.StageValidation, Erased+": "+er), true
	}
	return outcome{}, false
}

// runStages drives the execution's record stages over a standardized
// record and encodes it unless it was rejected.
func runStages(rec *stage.Record, run *stageRun) outcome {
	res := pipeline.Run(run.stages, rec)
	o := outcome{ready: true, findings: res.Findings, fate: res.Fate}
	if res.Fate.Action == pipeline.Reject {
		o.stage, o.reason = res.Fate.Stage, res.Fate.Reason
		return o
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return rejected(events.StageStandardization, "cannot encode the canonical record")
	}
	o.value = b
	return o
}

// Erased is the reason of records an erasure names.
const Erased = "erased"

// NoConsent is the reason of records rejected for want of consent.
const NoConsent = "no_consent"

// defaultConsent are the values that mean consent given when a source
// names none.
var defaultConsent = []string{"true", "yes", "1", "granted"}

// defaultWithdrawn are the values that mean consent withdrawn when a
// source names none.
var defaultWithdrawn = []string{"withdrawn", "revoked"}

// consentMissing says why a record's consent field does not record consent
// given, or "" when it does, and whether it says consent was withdrawn.
func consentMissing(raw []byte, spec events.SourceSpec) (string, bool) {
	if spec.ConsentField == "" {
		return "the source names no consent_field", false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return "the record is not a JSON object", false
	}
	v, ok := top[spec.ConsentField]
	if !ok {
		return fmt.Sprintf("field %q is absent", spec.ConsentField), false
	}
	var got string
	var str string
	if json.Unmarshal(v, &str) == nil {
		got = str
	} else {
		got = string(v) // true, false, a number
	}
	got = strings.ToLower(strings.TrimSpace(got))
	values := spec.ConsentValues
	if len(values) == 0 {
		values = defaultConsent
	}
	for _, c := range values {
		if got == strings.ToLower(c) {
			return "", false
		}
	}
	withdrawn := spec.ConsentWithdrawn
	if len(withdrawn) == 0 {
		withdrawn = defaultWithdrawn
	}
	for _, c := range withdrawn {
		if got == strings.ToLower(c) {
			return fmt.Sprintf("field %q says consent was withdrawn", spec.ConsentField), true
		}
	}
	return fmt.Sprintf("field %q does not say consent was given", spec.ConsentField), false
}

// precompute runs the record stages on every raw record of running
// executions in recs, on all cores; the sequential pass then produces the
// outcomes in log order.
func (p *Processor) precompute(recs []*kgo.Record) []outcome {
	out := make([]outcome, len(recs))
	type job struct {
		i   int
		x   *execState
		m   wire.Meta
		run *stageRun
		dk  *crypt.DataKey
	}
	var jobs []job
	for i, r := range recs {
		if r.Topic != p.topics.Raw {
			continue
		}
		x := p.workExec(string(r.Key))
		if x == nil || x.status != statusRunning {
			continue
		}
		m, err := wire.ReadMeta(r)
		if err != nil || (m.Kind != wire.KindRecord && m.Kind != wire.KindBad) {
			continue
		}
		dk, err := p.keyOf(x)
		if err != nil || p.stagesFor(x).erasedErr != nil {
			continue // work() tries again and reports the failure
		}
		jobs = append(jobs, job{i: i, x: x, m: m, run: p.stagesFor(x), dk: dk})
	}
	eachParallel(len(jobs), func(k int) {
		j := jobs[k]
		out[j.i] = p.transformOne(recs[j.i].Value, j.x, j.m, j.run, j.dk)
	})
	return out
}

// eachParallel calls fn for 0..n-1 on every core (one goroutine for fewer
// than 64 items). The cores take small runs of items as they finish the
// last, not a fixed share each: records differ in cost (a long
// conversation takes many times a short one), and a core with a fixed
// share of the cheap ones would sit idle until the other finished.
func eachParallel(n int, fn func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 64 || workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	const run = 8
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(run)) - run
				if from >= n {
					return
				}
				for i := from; i < min(from+run, n); i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
}
