package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/snapshot"
)

// A restarted processor rebuilds each partition's executions from the
// partition's latest snapshot and the events after it, not from offset 0,
// so its restart does not grow with the history of the event log.
//
// A snapshot is written in the transaction whose events it covers, after
// they have been flushed: it is the state after every event of the
// partition up to the transaction's last one, and Next is the offset after
// that event. The snapshot commits or aborts with the events, and the
// processor is the only writer of its partitions' events, so no event below
// Next is missing from it and none at or after Next is in it. A replay
// still skips an event its execution's chain already holds, so a snapshot
// that overlapped the log could not apply an event twice.

// DefaultSnapshotEvery is how many events of a partition may follow its
// latest snapshot before the next is written.
const DefaultSnapshotEvery = 50

// settled is a finished execution as the processor keeps it: its id (to
// ignore late records), owner, chain head, reviews (a review may be
// acknowledged long after the end), output and deletion.
func (x *execState) settled() *execState {
	if x.status != statusDone {
		return x
	}
	return &execState{id: x.id, partition: x.partition, status: statusDone, user: x.user, chain: x.chain, reviews: x.reviews,
		outputDir: x.outputDir, dataDeleted: x.dataDeleted, req: events.Request{Output: x.req.Output},
		stages: map[string]time.Time{}, sources: map[int]bool{}}
}

func (x *execState) asSnapshot() snapshot.Execution {
	x = x.settled()
	s := snapshot.Execution{ID: x.id, Partition: x.partition, User: x.user, Request: x.req, ChainSeq: x.chain.Seq, ChainHash: x.chain.Hash,
		Status: x.status, RequestedAt: x.requestedAt, StartedAt: x.startedAt, StagedFrom: x.stagedFrom, StagedFroms: x.stagedFroms, Counts: x.counts,
		PerSource: x.perSource, NoConsent: x.noConsent, Reviews: x.reviews, Quality: x.Quality, Safety: x.Safety, Bias: x.Bias,
		OutputDir: x.outputDir, DataDeleted: x.dataDeleted}
	if len(x.stages) > 0 {
		s.Stages = x.stages
	}
	for src, on := range x.sources {
		if on {
			s.Sources = append(s.Sources, src)
		}
	}
	sort.Ints(s.Sources)
	return s
}

func executionState(s snapshot.Execution, partition int32) *execState {
	x := newExec(s.ID, partition)
	x.user, x.req, x.chain, x.status = s.User, s.Request, events.Chain{Seq: s.ChainSeq, Hash: s.ChainHash}, s.Status
	x.requestedAt, x.startedAt, x.stagedFrom, x.counts = s.RequestedAt, s.StartedAt, s.StagedFrom, s.Counts
	x.perSource, x.noConsent, x.reviews, x.stagedFroms = s.PerSource, s.NoConsent, s.Reviews, s.StagedFroms
	x.Quality, x.Safety, x.Bias = s.Quality, s.Safety, s.Bias
	x.outputDir, x.dataDeleted = s.OutputDir, s.DataDeleted
	for k, v := range s.Stages {
		x.stages[k] = v
	}
	for _, src := range s.Sources {
		x.sources[src] = true
	}
	return x
}

// snapshotOf is the snapshot of one partition's executions, in id order.
func snapshotOf(execs map[string]*execState, partition int32, next int64) snapshot.Snapshot {
	s := snapshot.Snapshot{Version: snapshot.Version, Partition: partition, Next: next, Executions: []snapshot.Execution{}}
	for _, x := range execs {
		if x.partition == partition && x.chain.Seq > 0 {
			s.Executions = append(s.Executions, x.asSnapshot())
		}
	}
	sort.Slice(s.Executions, func(i, j int) bool { return s.Executions[i].ID < s.Executions[j].ID })
	return s
}

// recovered is one partition's state as a restart rebuilds it.
type recovered struct {
	execs map[string]*execState
	// from is the event offset the replay began at (0: no snapshot), and
	// replayed the events it applied.
	from     int64
	replayed int
}

// recoverPartition rebuilds one partition's executions: from its latest
// snapshot and the events after it when fromSnapshot, else from the whole
// event log. An undecodable snapshot is logged and ignored.
func recoverPartition(ctx context.Context, kc kafka.Config, partition int32, fromSnapshot bool, warn func(string, ...any)) (recovered, error) {
	t := kc.Topics()
	rec := recovered{execs: map[string]*execState{}}
	if fromSnapshot {
		s, err := snapshot.Latest(ctx, kc, partition, warn)
		if err != nil {
			return rec, fmt.Errorf("processor: %w", err)
		}
		if s != nil {
			for _, e := range s.Executions {
				rec.execs[e.ID] = executionState(e, partition)
			}
			rec.from = s.Next
		}
	}
	err := kc.ReadPartition(ctx, t.Events, partition, rec.from, func(r *kgo.Record) error {
		e, err := events.Decode(r.Value)
		if err != nil {
			warn("processor: undecodable event in log", "partition", partition, "offset", r.Offset, "err", err)
			return nil
		}
		x := rec.execs[e.Subject]
		if x != nil && e.Seq <= x.chain.Seq {
			return nil // already in the snapshot
		}
		payload, err := events.Parse(e)
		if err != nil {
			warn("processor: unparseable event in log", "partition", partition, "offset", r.Offset, "err", err)
			return nil
		}
		if x == nil {
			x = newExec(e.Subject, partition)
			rec.execs[e.Subject] = x
		}
		if err := x.chain.Next(&e); err != nil {
			return fmt.Errorf("processor: replay: %w", err)
		}
		x.apply(&e, payload)
		rec.replayed++
		return nil
	})
	if err != nil {
		return rec, fmt.Errorf("processor: load partition %d: %w", partition, err)
	}
	for id, x := range rec.execs {
		rec.execs[id] = x.settled()
	}
	return rec, nil
}

// Recover rebuilds one partition's executions as a restarted processor
// does (from the latest snapshot, or from the whole log when fromSnapshot
// is false) and returns them in snapshot form with the number of events
// replayed. Operators and tests use it to check that a snapshot and the
// log agree.
func Recover(ctx context.Context, kc kafka.Config, partition int32, fromSnapshot bool) (snapshot.Snapshot, int, error) {
	rec, err := recoverPartition(ctx, kc, partition, fromSnapshot, func(string, ...any) {})
	if err != nil {
		return snapshot.Snapshot{}, 0, err
	}
	s := snapshotOf(rec.execs, partition, 0)
	return s, rec.replayed, nil
}

// writeSnapshots adds to the transaction a snapshot of every partition
// whose events since its last snapshot reached the limit, and says whether
// it wrote any. It runs after the transaction's records are flushed, when
// every event's offset is known, and before the commit. The counts start
// again at once: a transaction that does not commit drops the processor's
// state, and reloading sets them from what it replays.
func (p *Processor) writeSnapshots() (bool, error) {
	p.prodMu.Lock()
	last := p.txnEvents
	p.prodMu.Unlock()
	every := p.cfg.SnapshotEvery
	if every <= 0 {
		every = DefaultSnapshotEvery
	}
	wrote := false
	for partition, off := range last {
		// A snapshot holds every execution of its partition (the finished
		// ones short), so one is written only after at least twice as many
		// events as it held executions: its cost per event stays constant
		// however many executions the partition has seen, and a restart
		// replays at most that many events more.
		if p.sinceSnapshot[partition] < max(every, 2*p.snapshotSize[partition]) {
			continue
		}
		snap := snapshotOf(p.execs, partition, off+1)
		b, err := json.Marshal(snap)
		if err != nil {
			return wrote, fmt.Errorf("processor: snapshot: %w", err)
		}
		p.produce(&kgo.Record{Topic: p.topics.Snapshots, Partition: partition, Key: snapshot.Key(partition), Value: b})
		p.metrics.snapshot()
		p.sinceSnapshot[partition], p.snapshotSize[partition] = 0, len(snap.Executions)
		wrote = true
	}
	return wrote, nil
}
