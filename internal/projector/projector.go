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
	"golang.org/x/sync/errgroup"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
)

// Projector is the projection service: it projects the event topic into
// the execution read models and the access topic into the access audit
// tables, each with its own consumer group.
type Projector struct {
	kafka kafka.Config
	store *store.Store
	log   *slog.Logger
}

// New builds a projector writing into st.
func New(kc kafka.Config, st *store.Store, log *slog.Logger) *Projector {
	return &Projector{kafka: kc, store: st, log: log}
}

// Run consumes the event and access topics until ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	t := p.kafka.Topics()
	for _, c := range []*consumer{
		{kafka: p.kafka, store: p.store, log: p.log, topic: t.Events, group: p.kafka.Name("dspipe-projector-" + p.store.Schema()), apply: Apply, gens: map[int32]int32{}},
		{kafka: p.kafka, store: p.store, log: p.log, topic: t.Access, group: p.kafka.Name("dspipe-projector-access-" + p.store.Schema()), apply: ApplyAccess, gens: map[int32]int32{}},
	} {
		g.Go(func() error { return c.run(ctx) })
	}
	return g.Wait()
}

// applyFunc projects one partition's records in one transaction.
type applyFunc func(ctx context.Context, st *store.Store, topic string, partition, gen int32, recs []*kgo.Record, log *slog.Logger) error

// consumer projects one topic.
type consumer struct {
	kafka kafka.Config
	store *store.Store
	log   *slog.Logger
	topic string
	group string
	apply applyFunc

	mu   sync.Mutex
	gens map[int32]int32
}

func (p *consumer) run(ctx context.Context) error {
	cl, err := p.kafka.Client(
		// Kafka's default group session (45 s): a killed projector's
		// partitions wait that long for a successor. Static membership
		// cannot force the rebalance that recovery from a failed apply
		// relies on. A 10 s session is not yet proven: with it
		// TestProjectorRecoversFromDroppedDatabaseConnections failed once
		// under load (it also failed once with the default, which was the
		// test's doing).
		p.kafka.Metered("projector-"+p.topic),
		kgo.ConsumerGroup(p.group),
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
	p.kafka.Member.Set("projector-"+p.topic, cl)
	defer p.kafka.Member.Set("projector-"+p.topic, nil)
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
			applyErr = p.applyRetrying(ctx, fp.Partition, gen, fp.Records)
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
			if clock.Sleep(ctx, 500*time.Millisecond) != nil {
				return nil
			}
		}
	}
}

// applyTries is how many times a batch is applied in place before the
// projector falls back to claiming its partitions again.
const applyTries = 6

// applyRetrying applies one partition's batch, trying it again in place
// when Postgres failed it (a dropped connection, a restart): applying a
// batch is idempotent (events at or below an execution's projected seq,
// and access events already chained, are skipped), and the batch's
// generation fences it if the partition moved meanwhile. Going through a
// rebalance for every dropped connection costs seconds each time, which
// under repeated faults starves the read models: seen in
// TestProjectorRecoversFromDroppedDatabaseConnections, where the API,
// waiting for the execution to be projected, refused its feed for two
// minutes.
//
// Each try after a failure applies the rest of the batch in transactions
// a quarter the size of the last: each stores its partition's offset, so
// what one applied stays applied, and under faults that end every
// connection within a few milliseconds a long transaction may never
// finish while short ones do (the same test, once the backlog made the
// whole batch's transaction longer than the fault's period).
func (p *consumer) applyRetrying(ctx context.Context, partition, gen int32, recs []*kgo.Record) error {
	wait := 20 * time.Millisecond
	size := len(recs)
	for try := 1; ; try++ {
		var err error
		for len(recs) > 0 && err == nil {
			n := min(size, len(recs))
			if err = p.apply(ctx, p.store, p.topic, partition, gen, recs[:n], p.log); err == nil {
				recs = recs[n:]
			}
		}
		if err == nil || errors.Is(err, store.ErrFenced) || ctx.Err() != nil || try == applyTries {
			return err
		}
		size = max(1, size/4)
		p.log.Warn("projector: apply failed; trying the rest of the batch again", "topic", p.topic, "partition", partition, "try", try,
			"left", len(recs), "per_transaction", size, "err", err)
		if clock.Sleep(ctx, wait) != nil {
			return ctx.Err()
		}
		wait *= 2
	}
}

func (p *consumer) claim(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
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

func (p *consumer) release(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, parts := range revoked {
		for _, part := range parts {
			delete(p.gens, part)
		}
	}
}

// Apply projects records of one partition in one transaction. An event that
// cannot be decoded is logged and skipped (its offset still advances): one
// bad record must not stop every read model.
func Apply(ctx context.Context, st *store.Store, topic string, partition, gen int32, recs []*kgo.Record, log *slog.Logger) error {
	return st.Apply(ctx, batch(topic, partition, gen, recs, log))
}

// ApplyAccess projects records of the access topic like Apply.
func ApplyAccess(ctx context.Context, st *store.Store, topic string, partition, gen int32, recs []*kgo.Record, log *slog.Logger) error {
	return st.ApplyAccess(ctx, batch(topic, partition, gen, recs, log))
}

func batch(topic string, partition, gen int32, recs []*kgo.Record, log *slog.Logger) store.Batch {
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
	return b
}

// Rebuild replays every partition of the event topic from offset zero into
// st, which should be a fresh schema. It returns the number of events read.
func Rebuild(ctx context.Context, kc kafka.Config, st *store.Store, log *slog.Logger) (int64, error) {
	n, err := rebuild(ctx, kc, st, kc.Topics().Events, Apply, log)
	if err != nil {
		return n, err
	}
	m, err := rebuild(ctx, kc, st, kc.Topics().Access, ApplyAccess, log)
	return n + m, err
}

func rebuild(ctx context.Context, kc kafka.Config, st *store.Store, topic string, apply applyFunc, log *slog.Logger) (int64, error) {
	var n int64
	for part := int32(0); part < kc.Partitions; part++ {
		gen, next, err := st.Claim(ctx, topic, part)
		if err != nil {
			return n, err
		}
		var pending []*kgo.Record
		flush := func() error {
			if len(pending) == 0 {
				return nil
			}
			err := apply(ctx, st, topic, part, gen, pending, log)
			pending = pending[:0]
			return err
		}
		err = kc.ReadPartition(ctx, topic, part, next, func(r *kgo.Record) error {
			n++
			pending = append(pending, r)
			if len(pending) >= 500 {
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
