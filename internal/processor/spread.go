package processor

import (
	"context"
	"fmt"
	"strings"

	json "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/wire"
)

// One execution, many processors. Ingest spreads an execution's records
// over every partition of the raw topic (kafka.Spread), so whichever
// processor owns a partition runs the record stages on the records there:
// the work of one large execution is shared by the whole group. What the
// stages made of a record goes two ways in the same transaction as the raw
// record's offset: the record itself to the staged topic (spread the same
// way), and its outcome (fate and findings, sealed, never text) to the
// outcomes topic, keyed by the execution, so to its home partition. The
// processor owning the home keeps everything with state: it counts the
// outcomes, raises the events and gates, and once it has counted as many
// outcomes as acquisition emitted records it closes the record stages and
// runs the output, which reads the staged records of every partition back
// in their sources' order (gather.go). Nothing here depends on how many
// processors there are, or on the order their outcomes arrive in.

// KindOutcome is the kind of an outcome record (its meta header).
const KindOutcome = "out"

// placeOutcome binds a sealed outcome to the outcomes topic.
const placeOutcome = "outcome"

// workExec is the execution a raw record belongs to, as the processor
// running its record stages needs it (request, resolved stages, data key):
// this processor's own from its state, another's as resolveForeign read it.
func (p *Processor) workExec(id string) *execState {
	if x := p.execs[id]; x != nil {
		return x
	}
	return p.foreign[id]
}

// maxForeign bounds the executions of other processors kept for their
// records; beyond it they are read again when next needed.
const maxForeign = 1024

// resolveForeign reads, outside the transaction, the executions of the
// polled raw records that this processor does not hold: from the latest
// snapshot and the events of their home partitions, once each. An
// execution's request is in its log before ingest emits any of its
// records, and a request never changes.
func (p *Processor) resolveForeign(ctx context.Context, fs kgo.Fetches) error {
	want := map[int32][]string{}
	seen := map[string]bool{}
	var n int
	var err error
	fs.EachRecord(func(r *kgo.Record) {
		id := string(r.Key)
		if err != nil || r.Topic != p.topics.Raw || seen[id] || p.workExec(id) != nil {
			return
		}
		seen[id] = true
		if n == 0 {
			if n, err = p.partitionCount(ctx); err != nil {
				return
			}
		}
		h := kafka.HomePartition(id, n)
		want[h] = append(want[h], id)
	})
	if err != nil {
		return err
	}
	for h, ids := range want {
		rec, err := recoverPartition(ctx, p.cfg.Kafka, h, true, func(msg string, args ...any) { p.log.Error(msg, args...) })
		if err != nil {
			return err
		}
		if len(p.foreign)+len(ids) > maxForeign {
			p.foreign = map[string]*execState{}
		}
		for _, id := range ids {
			x := rec.execs[id]
			if x == nil {
				p.log.Error("processor: records of an execution its home partition does not know are dropped", "execution_id", id, "home", h)
				x = &execState{id: id, partition: h, status: statusDone}
			}
			p.foreign[id] = x
			if !p.homedHere(h) {
				p.log.Info("processor: sharing the records of an execution homed on another instance", "execution_id", id, "home", h, "status", x.status)
			}
		}
	}
	return nil
}

// partitionCount is the number of partitions of the raw topic.
func (p *Processor) partitionCount(ctx context.Context) (int, error) {
	if p.partitions > 0 {
		return p.partitions, nil
	}
	td, err := kadm.NewClient(p.aux).ListTopics(ctx, p.topics.Raw)
	if err != nil {
		return 0, fmt.Errorf("processor: partitions of %s: %w", p.topics.Raw, err)
	}
	t, ok := td[p.topics.Raw]
	if !ok || t.Err != nil || len(t.Partitions) == 0 {
		return 0, fmt.Errorf("processor: partitions of %s: topic not found", p.topics.Raw)
	}
	p.partitions = len(t.Partitions)
	return p.partitions, nil
}

// work runs the record stages on one raw record (precomputed when it
// could be) and produces the staged record and its outcome.
func (p *Processor) work(r *kgo.Record, m wire.Meta, pre *outcome) error {
	x := p.workExec(string(r.Key))
	if x == nil || x.status != statusRunning {
		return nil // cancelled, failed or unknown: the record is dropped with its execution
	}
	run := p.stagesFor(x)
	if run.erasedErr != nil {
		x.run = nil
		return run.erasedErr
	}
	dk, err := p.keyOf(x)
	if err != nil {
		return err
	}
	o := *pre
	if !o.ready { // not precomputed (the execution became known within this poll)
		o = p.transformOne(r.Value, x, m, run, dk)
	}
	if o.err != nil {
		return o.err
	}
	p.metrics.work(p.homedHere(x.partition))
	p.produce(&kgo.Record{Topic: p.topics.Staged, Key: r.Key, Value: o.staged, Headers: o.stagedHead})
	p.produce(&kgo.Record{Topic: p.topics.Outcomes, Key: r.Key, Value: o.report, Headers: outcomeMeta(m).Headers()})
	return nil
}

// transformOne runs the record stages on one raw record and seals what
// goes to the staged and outcomes topics. It touches no shared state.
func (p *Processor) transformOne(raw []byte, x *execState, m wire.Meta, run *stageRun, dk *crypt.DataKey) outcome {
	var o outcome
	if m.Source < 0 || m.Source >= len(x.req.Sources) {
		o = rejected(events.StageValidation, "record names an unknown source")
	} else {
		o = transform(raw, p.cfg.Limits, p.cfg.RecordIDKey, x.req.Sources[m.Source], m, x.id, run, dk)
	}
	o.meta, o.hasMeta = m, true
	o.err = seal(&o, x, m, run, dk)
	return o
}

// outcomeMeta is the meta of a raw record's outcome: where the record was
// (its sealed report is bound to it).
func outcomeMeta(m wire.Meta) wire.Meta {
	return wire.Meta{Kind: KindOutcome, Source: m.Source, Position: m.Position, Seq: m.Seq, Object: m.Object, Read: m.Read, Size: m.Size}
}

// seal encodes and encrypts the staged record (the canonical record, or
// the rejection) and the outcome report.
func seal(o *outcome, x *execState, m wire.Meta, run *stageRun, dk *crypt.DataKey) error {
	sm := wire.Meta{Kind: wire.KindStaged, Source: m.Source, Position: m.Position, Seq: m.Seq}
	v := o.value
	switch {
	case o.value == nil:
		name := ""
		if m.Source >= 0 && m.Source < len(x.req.Sources) {
			name = x.req.Sources[m.Source].DisplayName(m.Source)
		}
		b, err := json.Marshal(wire.Rejection{Source: name, SourceIx: m.Source, Position: m.Position, Object: m.Object, Stage: o.stage, Reason: o.reason})
		if err != nil {
			return err
		}
		sm.Kind, v = wire.KindRejected, b
	case o.fate.Action == pipeline.Hold:
		sm.Kind = wire.KindQuarantined
	}
	rep := wire.Outcome{Stage: o.stage, Reason: o.reason, Action: uint8(o.fate.Action), FateStage: o.fate.Stage, FateReason: o.fate.Reason, Withdrawn: o.withdrawn}
	if len(o.findings) > 0 {
		rep.Findings = make([]json.RawMessage, len(o.findings))
		for i, a := range run.stages {
			if i >= len(o.findings) || o.findings[i] == nil {
				continue
			}
			b, err := a.Run.EncodeFinding(o.findings[i])
			if err != nil {
				return fmt.Errorf("processor: %s: encode a finding: %w", a.Name, err)
			}
			rep.Findings[i] = b
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	o.staged, o.report = v, b
	o.stagedHead = sm.Headers()
	if dk != nil {
		o.staged = dk.Seal(make([]byte, 0, len(v)+crypt.Overhead), v, crypt.AD(nil, x.id, crypt.PlaceStaged, sm.Kind, sm.Source, sm.Position))
		o.report = dk.Seal(make([]byte, 0, len(b)+crypt.Overhead), b, crypt.AD(nil, x.id, placeOutcome, KindOutcome, m.Source, m.Seq))
	}
	for _, pr := range o.prepared {
		pb := pr.b
		if dk != nil {
			pb = dk.Seal(make([]byte, 0, len(pb)+crypt.Overhead), pb, preparedAD(x.id, pr.name, sm))
		}
		o.stagedHead = append(o.stagedHead, kgo.RecordHeader{Key: preparedHeader + pr.name, Value: pb})
	}
	o.value, o.prepared = nil, nil // sealed in staged; the plaintext is not kept
	return nil
}

// preparedHeader prefixes the staged record header that carries a dataset
// stage's work on the record (its name follows), sealed.
const preparedHeader = "prep."

// preparedAD binds a sealed prepared value to its stage and record.
func preparedAD(id, name string, m wire.Meta) []byte {
	return crypt.AD(nil, id, "prepared:"+name, m.Kind, m.Source, m.Seq)
}

// handleOutcome counts one record's outcome at the execution's home: the
// counts, each stage's finding, the events the stages raise; then closes
// the record stages once every record acquisition emitted is counted.
func (p *Processor) handleOutcome(ctx context.Context, r *kgo.Record) error {
	x := p.execs[string(r.Key)]
	if x == nil || x.status != statusRunning {
		return nil // cancelled, failed or unknown: the outcome is dropped with its execution
	}
	m, err := wire.ReadMeta(r)
	if err != nil || m.Kind != KindOutcome {
		p.log.Error("processor: outcome without metadata", "execution_id", x.id, "offset", r.Offset)
		return nil
	}
	// The key store not answering aborts the transaction (it is tried
	// again); an outcome that does not open fails the execution.
	dk, err := p.keyOf(x)
	if err != nil {
		return err
	}
	rep, err := openOutcome(x.id, dk, m, r.Value)
	if err != nil {
		return p.fail(ctx, x, events.StageValidation, events.CategoryProcessing, err.Error())
	}
	if !x.countOnce(m) {
		if x.redelivered++; x.redelivered == 1 { // once per execution: a redelivery comes in runs
			p.log.Warn("processor: outcomes delivered again are not counted again", "execution_id", x.id, "source", m.Source, "seq", m.Seq, "offset", r.Offset)
		}
		p.metrics.duplicate()
		return nil
	}
	for _, s := range p.recordStages(x) {
		if err := p.startStage(x, s); err != nil {
			return err
		}
	}
	x.noteRead(m)
	x.dirty = true
	x.counts.Received++
	known := m.Source >= 0 && m.Source < len(x.req.Sources)
	if known && rep.Stage != "" && strings.HasPrefix(rep.Reason, NoConsent) {
		x.noConsent[m.Source]++
	}
	if rep.Withdrawn != "" {
		if err := p.eraseWithdrawn(x, m, rep.Withdrawn); err != nil {
			return err
		}
	}
	found, err := p.decodeFindings(x, rep)
	if err != nil {
		return p.fail(ctx, x, events.StageValidation, events.CategoryProcessing, err.Error())
	}
	if err := p.countOutcome(x, m, rep, found); err != nil {
		return err
	}
	switch {
	case rep.Stage != "":
		x.counts.Rejected++
		p.metrics.record(rep.Stage, "rejected")
	case pipeline.Action(rep.Action) == pipeline.Hold:
		p.metrics.record(rep.FateStage, "quarantined")
	case known:
		x.counts.Valid++
		x.perSource[m.Source]++
		p.metrics.record("records", "kept")
	}
	if x.acquired() && x.counts.Received >= x.counts.Total {
		return p.closeRecordStages(ctx, x)
	}
	return nil
}

// openOutcome decrypts and decodes one outcome report.
func openOutcome(id string, dk *crypt.DataKey, m wire.Meta, v []byte) (wire.Outcome, error) {
	var rep wire.Outcome
	if dk != nil {
		var err error
		if v, err = dk.Open(nil, v, crypt.AD(nil, id, placeOutcome, KindOutcome, m.Source, m.Seq)); err != nil {
			return rep, fmt.Errorf("the outcome of record %d of source %d does not decrypt with its execution's data key (altered or moved)", m.Position, m.Source)
		}
	}
	if err := json.Unmarshal(v, &rep); err != nil {
		return rep, fmt.Errorf("the outcome of record %d of source %d is unreadable", m.Position, m.Source)
	}
	return rep, nil
}

// decodeFindings decodes an outcome's findings, each by its stage.
func (p *Processor) decodeFindings(x *execState, rep wire.Outcome) ([]pipeline.Finding, error) {
	if len(rep.Findings) == 0 {
		return nil, nil
	}
	out := make([]pipeline.Finding, len(rep.Findings))
	for i, a := range p.stagesFor(x).stages {
		if i >= len(rep.Findings) || len(rep.Findings[i]) == 0 || string(rep.Findings[i]) == "null" {
			continue
		}
		f, err := a.Run.DecodeFinding(rep.Findings[i])
		if err != nil {
			return nil, fmt.Errorf("a finding of the %s stage is unreadable", a.Name)
		}
		out[i] = f
	}
	return out, nil
}

// countOutcome hands each active record stage its finding once the
// record's fate is known, and raises the events the stages ask for.
func (p *Processor) countOutcome(x *execState, m wire.Meta, rep wire.Outcome, found []pipeline.Finding) error {
	if len(found) == 0 {
		return nil
	}
	fate := pipeline.Fate{Action: pipeline.Action(rep.Action), Stage: rep.FateStage, Reason: rep.FateReason}
	w := pipeline.Where{Source: x.req.Sources[m.Source].DisplayName(m.Source), Position: m.Position}
	for i, a := range p.stagesFor(x).stages {
		if i >= len(found) || found[i] == nil {
			continue
		}
		for _, e := range a.Run.Count(&x.Summaries, found[i], fate, w) {
			if err := p.emit(x, e); err != nil {
				return err
			}
		}
	}
	return nil
}
