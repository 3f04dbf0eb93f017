package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

// dataPlan is what the dataset stages decided about an execution's
// staged records, by their order in the staged topic.
type dataPlan struct {
	// copies is how many times each staged record is written: 0 when
	// fusion removed it or balancing left it out, more than 1 when
	// balancing oversampled it.
	copies    []int32
	merged    map[int32][]string
	fusion    *events.FusionSummary
	balancing *events.BalancingSummary
}

// planDataset is the output stage's first pass: it reads the execution's
// staged records and runs fusion (set, nil when off) and then balancing
// (bal, nil when off) over them.
func (p *Processor) planDataset(ctx context.Context, x *execState, set *fusion.Settings, bal *balance.Settings) (*dataPlan, error) {
	in, err := p.readPlanInput(ctx, x, set != nil, bal)
	if err != nil {
		return nil, err
	}
	plan := &dataPlan{copies: make([]int32, in.idx.Len()), merged: map[int32][]string{}}
	for i := range plan.copies {
		plan.copies[i] = 1
	}
	if set != nil {
		plan.fuse(in, set, len(x.req.Sources))
	}
	if bal != nil {
		plan.balance(in, bal)
	}
	return plan, nil
}

// planInput is what the plan needs of each staged record, in topic order.
type planInput struct {
	idx    fusion.Index
	ids    []string
	srcOf  []int32
	groups []string // balancing groups, when balancing runs
}

// readPlanInput reads the execution's staged records once for the plan:
// their ids, sources, fusion features (when fusion runs) and balancing
// groups (when balancing does).
func (p *Processor) readPlanInput(ctx context.Context, x *execState, features bool, bal *balance.Settings) (*planInput, error) {
	in := &planInput{}
	var buf []uint64
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
		if bal != nil {
			in.groups = append(in.groups, groupOf(bal.Key, x, m.Source, rec.Metadata, rec.Annotations))
		}
		var f fusion.Features
		if features {
			f, buf = fusion.Compute(rec.Messages, buf)
		}
		prio := 0
		if m.Source >= 0 && m.Source < len(x.req.Sources) {
			prio = x.req.Sources[m.Source].Priority
		}
		in.idx.Add(&f, fusion.Rank{Priority: prio, Source: m.Source, Position: m.Position})
		in.ids = append(in.ids, rec.ID)
		in.srcOf = append(in.srcOf, int32(m.Source))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// fuse keeps one record of each duplicate cluster and records what it
// merged.
func (plan *dataPlan) fuse(in *planInput, set *fusion.Settings, sources int) {
	res := in.idx.Resolve(set.NearThreshold)
	sum := &events.FusionSummary{Records: int64(len(plan.copies)), Clusters: int64(res.Clusters), RemovedExact: int64(res.RemovedExact),
		RemovedNear: int64(res.RemovedNear), NearThreshold: set.NearThreshold, KeptPerSource: make([]int64, sources)}
	for i, k := range res.Keeper {
		if k != int32(i) {
			plan.copies[i] = 0
			plan.merged[k] = append(plan.merged[k], in.ids[i])
			continue
		}
		sum.Kept++
		if s := in.srcOf[i]; s >= 0 && int(s) < len(sum.KeptPerSource) {
			sum.KeptPerSource[s]++
		}
	}
	for _, m := range plan.merged {
		sort.Strings(m)
	}
	plan.fusion = sum
}

// balance selects (and repeats) the records fusion kept toward the
// target distribution.
func (plan *dataPlan) balance(in *planInput, bal *balance.Settings) {
	var items []balance.Item
	var at []int
	for i, c := range plan.copies {
		if c > 0 {
			items = append(items, balance.Item{ID: in.ids[i], Group: in.groups[i]})
			at = append(at, i)
		}
	}
	sel := balance.Select(*bal, items)
	for k, i := range at {
		plan.copies[i] = sel.Copies[k]
	}
	plan.balancing = &sel.Summary
}

// wantData is how many data records the plan writes (valid when there is
// no plan).
func (plan *dataPlan) wantData(valid int64) int64 {
	if plan == nil {
		return valid
	}
	var n int64
	for _, c := range plan.copies {
		n += int64(c)
	}
	return n
}

// groupOf is a record's group under a balancing key.
func groupOf(key string, x *execState, src int, md map[string]string, ann map[string]json.RawMessage) string {
	switch {
	case key == "source":
		if src >= 0 && src < len(x.req.Sources) {
			return x.req.Sources[src].DisplayName(src)
		}
	case strings.HasPrefix(key, "metadata."):
		if v := md[strings.TrimPrefix(key, "metadata.")]; v != "" {
			return v
		}
	case strings.HasPrefix(key, "bias."):
		var b struct {
			Mentions []struct{ Axis, Group string } `json:"mentions"`
		}
		if json.Unmarshal(ann["bias"], &b) == nil {
			axis := strings.TrimPrefix(key, "bias.")
			for _, m := range b.Mentions {
				if m.Axis == axis {
					return m.Group
				}
			}
		}
	}
	return balance.None
}
