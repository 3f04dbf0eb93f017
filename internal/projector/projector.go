// Package projector maintains the Postgres read models from the event log.
// Offsets live in Postgres and are written in the same transaction as the
// read-model change, so every event is projected exactly once; each
// partition is claimed with a generation that fences a stale owner. Rebuild
// replays the log from offset zero into a fresh schema.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
)

// Projector is the projection service.
type Projector struct {
	kafka kafka.Config
	store *store.Store
	log   *slog.Logger
	topic string

	mu   sync.Mutex
	gens map[int32]int32
}

// New builds a projector writing into st.
func New(kc kafka.Config, st *store.Store, log *slog.Logger) *Projector {
	return &Projector{kafka: kc, store: st, log: log, topic: kc.Topics().Events, gens: map[int32]int32{}}
}

// Run consumes the event topic until ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	cl, err := p.kafka.Client(
		kgo.ConsumerGroup("dspipe-projector-"+p.store.Schema()),
		kgo.ConsumeTopics(p.topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		// Eager rebalances: every rebalance reassigns every partition, so
		// after a failed apply all of them are claimed again from Postgres.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.AdjustFetchOffsetsFn(p.claim),
		kgo.OnPartitionsRevoked(p.release),
		kgo.OnPartitionsLost(p.release),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, part int32, err error) {
			p.log.Warn("projector: fetch", "topic", t, "partition", part, "err", err)
		})
		var applyErr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if applyErr != nil || len(fp.Records) == 0 {
				return
			}
			p.mu.Lock()
			gen, ok := p.gens[fp.Partition]
			p.mu.Unlock()
			if !ok {
				return // revoked while polling
			}
			applyErr = p.apply(ctx, fp.Partition, gen, fp.Records)
		})
		if applyErr != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(applyErr, store.ErrFenced) {
				p.log.Warn("projector: fenced; leaving partitions to their new owner", "err", applyErr)
			} else {
				p.log.Error("projector: apply failed; re-reading from the stored offsets", "err", applyErr)
			}
			// Apply nothing more until the partitions are claimed again with
			// their offsets reloaded from Postgres, the only truth: a later
			// batch must never be stored past the one that failed.
			p.mu.Lock()
			clear(p.gens)
			p.mu.Unlock()
			cl.ForceRebalance()
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func (p *Projector) claim(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	out := map[string]map[int32]kgo.Offset{}
	for topic, parts := range assigned {
		out[topic] = map[int32]kgo.Offset{}
		for part := range parts {
			gen, next, err := p.store.Claim(ctx, topic, part)
			if err != nil {
				return nil, err
			}
			p.mu.Lock()
			p.gens[part] = gen
			p.mu.Unlock()
			out[topic][part] = kgo.NewOffset().At(next).WithEpoch(-1)
		}
	}
	return out, nil
}

func (p *Projector) release(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, parts := range revoked {
		for _, part := range parts {
			delete(p.gens, part)
		}
	}
}

func (p *Projector) apply(ctx context.Context, partition, gen int32, recs []*kgo.Record) error {
	return Apply(ctx, p.store, p.topic, partition, gen, recs, p.log)
}

// Apply projects records of one partition in one transaction. An event that
// cannot be decoded is logged and skipped (its offset still advances): one
// bad record must not stop every read model.
func Apply(ctx context.Context, st *store.Store, topic string, partition, gen int32, recs []*kgo.Record, log *slog.Logger) error {
	b := store.Batch{Topic: topic, Partition: partition, Generation: gen}
	for _, r := range recs {
		b.NextOffset = r.Offset + 1
		e, err := events.Decode(r.Value)
		if err != nil {
			log.Error("projector: skipping undecodable event", "partition", partition, "offset", r.Offset, "err", err)
			continue
		}
		b.Events = append(b.Events, e)
		b.Raw = append(b.Raw, r.Value)
	}
	return st.Apply(ctx, b)
}

// Rebuild replays every partition of the event topic from offset zero into
// st, which should be a fresh schema. It returns the number of events read.
func Rebuild(ctx context.Context, kc kafka.Config, st *store.Store, log *slog.Logger) (int64, error) {
	topic := kc.Topics().Events
	var n int64
	for part := int32(0); part < kc.Partitions; part++ {
		gen, next, err := st.Claim(ctx, topic, part)
		if err != nil {
			return n, err
		}
		var batch []*kgo.Record
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := Apply(ctx, st, topic, part, gen, batch, log)
			batch = batch[:0]
			return err
		}
		err = kc.ReadPartition(ctx, topic, part, next, func(r *kgo.Record) error {
			n++
			batch = append(batch, r)
			if len(batch) >= 500 {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return n, fmt.Errorf("projector: rebuild partition %d: %w", part, err)
		}
	}
	return n, nil
}
