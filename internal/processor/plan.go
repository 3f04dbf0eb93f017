package processor

import (
	"context"
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

// dataPlan is what the dataset stages decided about an execution's
// staged records, by their order in the staged topic.
type dataPlan = pipeline.Plan

// planDataset is the output stage's first pass: it reads the execution's
// staged records once, shows each to the active dataset stages (fresh
// runs: a retried output observes again from nothing), then lets them
// decide in list order.
func (p *Processor) planDataset(ctx context.Context, x *execState, g *gathered) (*dataPlan, error) {
	active := pipeline.ResolveDataset(p.datasetList(), x.req, p.env())
	defer func() {
		for _, a := range active {
			if err := a.Run.Close(); err != nil {
				p.log.Warn("processor: release a dataset stage", "execution_id", x.id, "stage", a.Name, "err", err)
			}
		}
	}()
	n, err := p.observeStaged(ctx, x, g, active)
	if err != nil {
		return nil, err
	}
	plan := pipeline.NewPlan(n)
	for _, a := range active {
		if err := a.Run.Decide(plan); err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
	}
	return plan, nil
}

// observeBatch is how many staged records the first pass opens, decodes
// and prepares together on every core before the stages observe them, in
// order.
const observeBatch = 512

// observeStaged reads the execution's gathered staged records once, in
// their sources' order, and shows each to the dataset stages; it returns
// how many there were. Decryption, decoding and the stages' Prepare run on every core;
// Observe sees the records one by one, in order.
func (p *Processor) observeStaged(ctx context.Context, x *execState, g *gathered, active []pipeline.DatasetActive) (int, error) {
	if _, err := p.keyOf(x); err != nil { // fetched once, before the workers share it
		return 0, err
	}
	preparers := make([]pipeline.Preparer, len(active))
	for k, a := range active {
		preparers[k], _ = a.Run.(pipeline.Preparer)
	}
	reads := fieldsRead(active)
	batch := make([]stagedItem, 0, observeBatch)
	n := 0
	flush := func() error {
		eachParallel(len(batch), func(i int) { p.prepareStaged(x, &batch[i], active, preparers, reads) })
		for i := range batch {
			it := &batch[i]
			if it.err != nil {
				return it.err
			}
			it.rec.Index = n
			for k, a := range active {
				it.rec.Prepared = it.prepared[k]
				a.Run.Observe(&it.rec)
			}
			n++
		}
		clear(batch)
		batch = batch[:0]
		return nil
	}
	err := g.each(func(r *gatheredRecord) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.m.Kind != wire.KindStaged {
			return nil
		}
		// The values are the reader's buffer: the batch keeps its own copy.
		batch = append(batch, stagedItem{m: r.m, value: append([]byte(nil), r.value...), sealedPrep: append([]byte(nil), r.prepared...), offset: r.offset})
		if len(batch) == observeBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// stagedItem is one staged record in the first pass: read, then opened,
// decoded and prepared on any core, then observed in order.
type stagedItem struct {
	m          wire.Meta
	value      []byte
	sealedPrep []byte // the dataset stages' work, done where the record stages ran
	offset     int64
	rec        pipeline.StagedRecord
	prepared   []any // per active dataset stage
	err        error
}

// fieldsRead is the fields of a staged record the active dataset stages
// read when their prepared work is there.
func fieldsRead(active []pipeline.DatasetActive) pipeline.Fields {
	var f pipeline.Fields
	for _, a := range active {
		fr, ok := a.Run.(pipeline.FieldReader)
		if !ok {
			return pipeline.AllFields
		}
		f |= fr.Reads()
	}
	return f
}

// prepareStaged opens and decodes one staged record and runs the dataset
// stages' Prepare on it, or opens what the processor that ran the record
// stages prepared; reads is fieldsRead(active). It changes nothing but
// the item.
func (p *Processor) prepareStaged(x *execState, it *stagedItem, active []pipeline.DatasetActive, preparers []pipeline.Preparer, reads pipeline.Fields) {
	// The work that travelled with the record first: when it is all there,
	// only the fields the active stages read are decoded (the messages,
	// most of the record, are skipped by fusion and balancing; with fusion
	// alone the record is not even opened).
	it.prepared = make([]any, len(preparers))
	need := reads
	for k, pr := range preparers {
		if pr == nil {
			continue
		}
		if v, ok := p.openPrepared(x, it, active[k].Name, pr); ok {
			it.prepared[k] = v
		} else {
			need = pipeline.AllFields // the stage prepares the record itself
		}
	}
	var rec stagedFields
	if need != 0 {
		v, err := p.openStaged(x, it.m, it.value)
		if err != nil {
			it.err = err
			return
		}
		if rec, err = decodeStaged(v, need); err != nil {
			it.err = fmt.Errorf("staged record at offset %d: %w", it.offset, err)
			return
		}
	}
	prio := 0
	if it.m.Source >= 0 && it.m.Source < len(x.req.Sources) {
		prio = x.req.Sources[it.m.Source].Priority
	}
	it.rec = pipeline.StagedRecord{ID: rec.ID, Source: it.m.Source, Priority: prio, Position: it.m.Position,
		Messages: rec.Messages, Metadata: rec.Metadata, Annotations: rec.Annotations}
	for k, pr := range preparers {
		if pr != nil && it.prepared[k] == nil {
			it.prepared[k] = pr.Prepare(&it.rec)
		}
	}
}

// stagedFields are the parts of a staged record the dataset stages read.
type stagedFields struct {
	ID          string                     `json:"id"`
	Messages    []stage.Message            `json:"messages"`
	Metadata    map[string]string          `json:"metadata"`
	Annotations map[string]json.RawMessage `json:"annotations"`
}

// decodeStaged decodes a staged record's id and at least the fields in
// need; the decoder skips the others without building them.
func decodeStaged(v []byte, need pipeline.Fields) (stagedFields, error) {
	var rec stagedFields
	switch {
	case need&pipeline.FieldMessages != 0:
		err := json.Unmarshal(v, &rec)
		return rec, err
	case need&^pipeline.FieldID == 0:
		var r struct {
			ID string `json:"id"`
		}
		err := json.Unmarshal(v, &r)
		rec.ID = r.ID
		return rec, err
	}
	var r struct {
		ID          string                     `json:"id"`
		Metadata    map[string]string          `json:"metadata"`
		Annotations map[string]json.RawMessage `json:"annotations"`
	}
	err := json.Unmarshal(v, &r)
	rec.ID, rec.Metadata, rec.Annotations = r.ID, r.Metadata, r.Annotations
	return rec, err
}

// openPrepared opens and decodes a dataset stage's work that travelled with
// the record; false when there is none (or it does not open: the stage
// then prepares the record itself).
func (p *Processor) openPrepared(x *execState, it *stagedItem, name string, pr pipeline.Preparer) (any, bool) {
	c, ok := pr.(pipeline.PreparedCodec)
	sealed := preparedIn(it.sealedPrep, name)
	if !ok || sealed == nil {
		return nil, false
	}
	b := sealed
	if x.dk != nil {
		var err error
		if b, err = x.dk.Open(nil, sealed, preparedAD(x.id, name, it.m)); err != nil {
			return nil, false
		}
	}
	v, err := c.DecodePrepared(b)
	return v, err == nil
}

// wantData is how many data records the plan writes (valid when there is
// no plan).
func wantData(plan *dataPlan, valid int64) int64 {
	if plan == nil {
		return valid
	}
	var n int64
	for _, c := range plan.Copies {
		n += int64(c)
	}
	return n
}
