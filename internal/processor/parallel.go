package processor

import (
	"github.com/dspipe/dspipe/internal/safety"
	json "github.com/goccy/go-json"
	"runtime"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
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
	safety *safety.Outcome // set when the safety stage ran
}

// transform runs validation and standardization on one record. It touches no
// shared state, so records of one poll are transformed in parallel.
func transform(raw []byte, lim stage.Limits, idKey []byte, spec events.SourceSpec, m wire.Meta, execID string, sr *safetyRun) outcome {
	if m.Kind == wire.KindBad {
		return outcome{ready: true, stage: events.StageAcquisition, reason: m.Err}
	}
	in, err := stage.Validate(raw, lim)
	if err != nil {
		return outcome{ready: true, stage: events.StageValidation, reason: err.Error()}
	}
	uri := m.Object
	if uri == "" {
		uri = spec.Config["path"]
	}
	prov := stage.Provenance{Name: spec.DisplayName(m.Source), Type: spec.Type, URI: uri, Priority: spec.Priority, Position: m.Position}
	rec, err := stage.Standardize(in, prov, execID, idKey)
	if err != nil {
		return outcome{ready: true, stage: events.StageStandardization, reason: err.Error()}
	}
	var so *safety.Outcome
	if sr != nil {
		o := safety.Apply(&rec, sr.Settings, sr.salt)
		if o.Blocked != "" {
			return outcome{ready: true, stage: events.StageSafety, reason: o.Blocked, safety: &o}
		}
		so = &o
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return outcome{ready: true, stage: events.StageStandardization, reason: "cannot encode the canonical record"}
	}
	return outcome{ready: true, value: b, safety: so}
}

// precompute transforms every raw record of running executions in recs on
// all cores; the sequential pass then applies the outcomes in log order.
func (p *Processor) precompute(recs []*kgo.Record) []outcome {
	out := make([]outcome, len(recs))
	type job struct {
		i    int
		spec events.SourceSpec
		m    wire.Meta
		id   string
		sr   *safetyRun
	}
	var jobs []job
	for i, r := range recs {
		if r.Topic != p.topics.Raw {
			continue
		}
		x := p.execs[string(r.Key)]
		if x == nil || x.status != statusRunning {
			continue
		}
		m, err := wire.ReadMeta(r)
		if err != nil || (m.Kind != wire.KindRecord && m.Kind != wire.KindBad) || m.Source < 0 || m.Source >= len(x.req.Sources) {
			continue
		}
		jobs = append(jobs, job{i: i, spec: x.req.Sources[m.Source], m: m, id: x.id, sr: p.safetyFor(x)})
	}
	workers := runtime.GOMAXPROCS(0)
	if len(jobs) < 64 || workers < 2 {
		for _, j := range jobs {
			out[j.i] = transform(recs[j.i].Value, p.cfg.Limits, p.cfg.RecordIDKey, j.spec, j.m, j.id, j.sr)
		}
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(jobs) + workers - 1) / workers
	for w := 0; w < len(jobs); w += chunk {
		part := jobs[w:min(w+chunk, len(jobs))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range part {
				out[j.i] = transform(recs[j.i].Value, p.cfg.Limits, p.cfg.RecordIDKey, j.spec, j.m, j.id, j.sr)
			}
		}()
	}
	wg.Wait()
	return out
}
