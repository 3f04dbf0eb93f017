package processor

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

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
func (p *Processor) planDataset(ctx context.Context, x *execState) (*dataPlan, error) {
	active := pipeline.ResolveDataset(p.datasetList(), x.req, p.env())
	defer func() {
		for _, a := range active {
			if err := a.Run.Close(); err != nil {
				p.log.Warn("processor: release a dataset stage", "execution_id", x.id, "stage", a.Name, "err", err)
			}
		}
	}()
	n, err := p.observeStaged(ctx, x, active)
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

// observeStaged reads the execution's staged records once, in topic
// order, and shows each to the dataset stages; it returns how many there
// were.
func (p *Processor) observeStaged(ctx context.Context, x *execState, active []pipeline.DatasetActive) (int, error) {
	n := 0
	var rec struct {
		ID          string                     `json:"id"`
		Messages    []stage.Message            `json:"messages"`
		Metadata    map[string]string          `json:"metadata"`
		Annotations map[string]json.RawMessage `json:"annotations"`
	}
	err := p.cfg.Kafka.ReadPartition(ctx, p.topics.Staged, x.partition, x.stagedFrom, func(r *kgo.Record) error {
		if string(r.Key) != x.id {
			return nil
		}
		m, err := wire.ReadMeta(r)
		if err != nil || m.Kind != wire.KindStaged {
			return err
		}
		v, err := p.openStaged(x, m, r.Value)
		if err != nil {
			return err
		}
		rec.ID, rec.Messages, rec.Metadata, rec.Annotations = "", rec.Messages[:0], nil, nil
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("staged record at offset %d: %w", r.Offset, err)
		}
		prio := 0
		if m.Source >= 0 && m.Source < len(x.req.Sources) {
			prio = x.req.Sources[m.Source].Priority
		}
		sr := pipeline.StagedRecord{Index: n, ID: rec.ID, Source: m.Source, Priority: prio, Position: m.Position,
			Messages: rec.Messages, Metadata: rec.Metadata, Annotations: rec.Annotations}
		for _, a := range active {
			a.Run.Observe(&sr)
		}
		n++
		return nil
	})
	return n, err
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
