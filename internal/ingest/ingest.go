// Package ingest runs stage 1, acquisition: it follows the event log for
// started executions, reads their sources, and streams the raw records into
// Kafka in transactions that also record a checkpoint, so a restarted ingest
// resumes where the last committed chunk ended and never duplicates a record.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/wire"
)

// Config configures an ingest instance.
type Config struct {
	Kafka kafka.Config
	// InstanceID must be stable across restarts of one instance: it is the
	// transactional id, so a restart fences and aborts the old transaction.
	InstanceID string
	// LocalRoots confines local sources.
	LocalRoots []string
	// MaxConcurrent bounds executions acquired at once.
	MaxConcurrent int
	// MaxRecordBytes bounds one input record.
	MaxRecordBytes int
	// ChunkRecords is the number of records per transaction.
	ChunkRecords int
}

func (c *Config) defaults() {
	if c.InstanceID == "" {
		c.InstanceID = "ingest-0"
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 5
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.ChunkRecords <= 0 {
		c.ChunkRecords = 2000
	}
}

// Ingest is the acquisition service.
type Ingest struct {
	cfg    Config
	log    *slog.Logger
	topics kafka.Topics

	mu   sync.Mutex // one transaction at a time on the producer
	prod *kgo.Client

	sem     chan struct{}
	running sync.Map // execution id -> acquisition
	wg      sync.WaitGroup
}

// New builds an ingest service.
func New(cfg Config, log *slog.Logger) *Ingest {
	cfg.defaults()
	return &Ingest{cfg: cfg, log: log, topics: cfg.Kafka.Topics(), sem: make(chan struct{}, cfg.MaxConcurrent)}
}

// checkpoint is the latest committed acquisition progress of an execution,
// keyed by execution id on the compacted checkpoint topic.
type checkpoint struct {
	Sources []sourceCheckpoint `json:"sources"`
	Done    bool               `json:"done"`
}

type sourceCheckpoint struct {
	Emitted int64 `json:"emitted"`
	Bytes   int64 `json:"bytes"`
	Started bool  `json:"started"`
	Done    bool  `json:"done"`
}

// Run follows the event log until ctx ends. It consumes as a group without
// committing offsets: on every assignment it replays its partitions from the
// start, which rebuilds which executions still need acquisition.
func (in *Ingest) Run(ctx context.Context) error {
	if err := in.newProducer(); err != nil {
		return err
	}
	defer func() { in.mu.Lock(); in.prod.Close(); in.mu.Unlock() }()
	cons, err := in.cfg.Kafka.Client(
		kgo.ConsumerGroup("dspipe-ingest"),
		kgo.ConsumeTopics(in.topics.Events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Every assignment, including getting a lost partition back, replays
		// the partition from its start: the replay is what relaunches the
		// acquisitions that were stopped when the partition went away.
		kgo.AdjustFetchOffsetsFn(func(_ context.Context, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			for t, parts := range m {
				for p := range parts {
					m[t][p] = kgo.NewOffset().AtStart()
				}
			}
			return m, nil
		}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Only acquisitions of partitions given away stop: retained
		// partitions are not replayed, so theirs must go on.
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { in.cancelPartitions(lost) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { in.cancelPartitions(lost) }),
	)
	if err != nil {
		return err
	}
	defer cons.Close()
	defer in.wg.Wait()
	defer in.cancelAll()

	requests := map[string]events.Request{}
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			in.log.Warn("ingest: fetch", "topic", t, "partition", p, "err", err)
		})
		type start struct {
			req       events.Request
			partition int32
		}
		starts := map[string]start{}
		var order []string
		fs.EachRecord(func(r *kgo.Record) {
			e, err := events.Decode(r.Value)
			if err != nil {
				in.log.Error("ingest: undecodable event", "offset", r.Offset, "err", err)
				return
			}
			switch {
			case e.Type == events.TypeExecutionRequested:
				p, err := events.Parse(e)
				if err == nil {
					requests[e.Subject] = p.(*events.ExecutionRequested).Request
				}
			case e.Type == events.TypeExecutionStarted:
				if req, ok := requests[e.Subject]; ok {
					starts[e.Subject] = start{req: req, partition: r.Partition}
					order = append(order, e.Subject)
				}
			case events.Terminal(e.Type):
				delete(requests, e.Subject)
				delete(starts, e.Subject)
				if a, ok := in.running.Load(e.Subject); ok {
					a.(acquisition).cancel()
				}
			}
		})
		for _, id := range order {
			s, ok := starts[id]
			if !ok {
				continue
			}
			delete(starts, id)
			in.launch(ctx, id, s.partition, s.req)
		}
	}
}

// acquisition is one running execution's acquisition.
type acquisition struct {
	ctx       context.Context
	cancel    context.CancelFunc
	partition int32
	done      chan struct{}
}

func (in *Ingest) cancelAll() {
	in.running.Range(func(_, v any) bool { v.(acquisition).cancel(); return true })
}

func (in *Ingest) cancelPartitions(lost map[string][]int32) {
	gone := map[int32]bool{}
	for _, parts := range lost {
		for _, p := range parts {
			gone[p] = true
		}
	}
	var stopping []acquisition
	in.running.Range(func(_, v any) bool {
		if a := v.(acquisition); gone[a.partition] {
			a.cancel()
			stopping = append(stopping, a)
		}
		return true
	})
	// The new owner resumes from the checkpoint: it must not start before
	// this instance's last chunk has committed or aborted.
	deadline := time.After(30 * time.Second)
	for _, a := range stopping {
		select {
		case <-a.done:
		case <-deadline:
			in.log.Error("ingest: acquisition did not stop within 30s of losing its partition", "partition", a.partition)
			return
		}
	}
}

func (in *Ingest) launch(ctx context.Context, id string, partition int32, req events.Request) {
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	a := acquisition{ctx: actx, cancel: cancel, partition: partition, done: done}
	if v, loaded := in.running.LoadOrStore(id, a); loaded {
		cancel()
		if old := v.(acquisition); old.ctx.Err() != nil && ctx.Err() == nil {
			// The previous acquisition is stopping (its partition went away
			// and came back): start again once it has finished, from the
			// checkpoint it left.
			go func() {
				<-old.done
				in.launch(ctx, id, partition, req)
			}()
		}
		return
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		defer close(done)
		defer in.running.Delete(id)
		defer cancel()
		select {
		case in.sem <- struct{}{}:
		case <-actx.Done():
			return
		}
		defer func() { <-in.sem }()
		if err := in.acquire(actx, id, partition, req); err != nil && actx.Err() == nil {
			in.log.Error("ingest: acquisition stopped", "execution_id", id, "err", err)
			in.abandon(actx, id, err)
		}
	}()
}

// abandon tells the processor that acquisition cannot go on, so the
// execution fails with the reason now instead of waiting for its timeout.
// The marker is small: it usually gets through when a large chunk did not.
func (in *Ingest) abandon(ctx context.Context, id string, cause error) {
	b, _ := json.Marshal(wire.AcqEnd{Failed: true, Reason: "acquisition stopped: " + cause.Error()})
	done, _ := json.Marshal(checkpoint{Done: true})
	recs := []*kgo.Record{
		{Topic: in.topics.Raw, Key: []byte(id), Value: b, Headers: wire.Meta{Kind: wire.KindAcqEnd}.Headers()},
		{Topic: in.topics.Checkpoints, Key: []byte(id), Value: done},
	}
	if err := in.commitChunk(ctx, recs); err != nil {
		in.log.Error("ingest: cannot report the failed acquisition", "execution_id", id, "err", err)
	}
}

func (in *Ingest) newProducer() error {
	cl, err := in.cfg.Kafka.Client(
		kgo.TransactionalID("dspipe-"+in.cfg.InstanceID),
		kgo.TransactionTimeout(20*time.Second),
	)
	if err != nil {
		return err
	}
	in.prod = cl
	return nil
}

func (in *Ingest) loadCheckpoint(ctx context.Context, id string, partition int32) (checkpoint, error) {
	var cp checkpoint
	err := in.cfg.Kafka.ReadPartition(ctx, in.topics.Checkpoints, partition, 0, func(r *kgo.Record) error {
		if string(r.Key) == id {
			cp = checkpoint{}
			if err := json.Unmarshal(r.Value, &cp); err != nil {
				return fmt.Errorf("ingest: checkpoint at offset %d: %w", r.Offset, err)
			}
		}
		return nil
	})
	return cp, err
}

// acquire streams every source of one execution, resuming from its checkpoint.
func (in *Ingest) acquire(ctx context.Context, id string, partition int32, req events.Request) error {
	cp, err := in.loadCheckpoint(ctx, id, partition)
	if err != nil {
		return err
	}
	if cp.Done {
		return nil
	}
	for len(cp.Sources) < len(req.Sources) {
		cp.Sources = append(cp.Sources, sourceCheckpoint{})
	}
	c := &chunker{in: in, id: id, cp: &cp}
	var total int64
	for i, spec := range req.Sources {
		sc := &cp.Sources[i]
		name := spec.DisplayName(i)
		if sc.Done {
			total += sc.Emitted
			continue
		}
		if !sc.Started {
			sc.Started = true
			c.marker(wire.KindSourceStart, wire.SourceMarker{Source: i, Name: name, Kind: spec.Type})
		}
		err := in.readSource(ctx, c, i, spec)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			reason, category := describe(err)
			c.marker(wire.KindSourceFail, wire.SourceMarker{Source: i, Name: name, Kind: spec.Type, Reason: reason, Category: category})
			cp.Done = true
			c.marker(wire.KindAcqEnd, wire.AcqEnd{Records: total + sc.Emitted, Failed: true, Reason: fmt.Sprintf("source %q: %s", name, reason)})
			return c.flush(ctx)
		}
		sc.Done = true
		total += sc.Emitted
		c.marker(wire.KindSourceEnd, wire.SourceMarker{Source: i, Name: name, Kind: spec.Type, Records: sc.Emitted, Bytes: sc.Bytes})
	}
	cp.Done = true
	c.marker(wire.KindAcqEnd, wire.AcqEnd{Records: total})
	return c.flush(ctx)
}

// describe turns an acquisition error into a reason safe to publish and its
// category.
func describe(err error) (string, string) {
	switch {
	case errors.Is(err, source.ErrNotAllowed):
		return err.Error(), events.CategoryValidation
	case errors.Is(err, os.ErrPermission):
		return "permission denied", events.CategoryStorage
	case errors.Is(err, source.ErrBomb):
		return err.Error(), events.CategoryProcessing
	}
	return err.Error(), events.CategoryProcessing
}

func (in *Ingest) readSource(ctx context.Context, c *chunker, ix int, spec events.SourceSpec) error {
	if spec.Type != "local" {
		return fmt.Errorf("source type %q is not supported yet (local is)", spec.Type)
	}
	files, err := source.LocalFiles(spec.Config["path"], in.cfg.LocalRoots)
	if err != nil {
		return err
	}
	sc := &c.cp.Sources[ix]
	skip := sc.Emitted // records already committed by an earlier attempt
	var seen int64
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		err = func() error {
			defer f.Close()
			cr := &source.CountingReader{R: f}
			r, release, err := source.Decompress(cr)
			if err != nil {
				return err
			}
			defer release()
			format := spec.Config["format"]
			if format == "" {
				format = source.FormatFromName(path)
			}
			fr, err := source.NewFramer(r, format, in.cfg.MaxRecordBytes)
			if err != nil {
				return err
			}
			for {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				it, err := fr.Next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				seen++
				if seen <= skip {
					continue
				}
				meta := wire.Meta{Kind: wire.KindRecord, Source: ix, Position: it.Position, Err: it.Err}
				if it.Err != "" {
					meta.Kind = wire.KindBad
				}
				sc.Emitted++
				sc.Bytes += cr.Take()
				c.add(&kgo.Record{Topic: in.topics.Raw, Key: []byte(c.id), Value: it.Data, Headers: meta.Headers()})
				if c.full() {
					if err := c.flush(ctx); err != nil {
						return err
					}
				}
			}
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// chunker collects records and flushes them with the checkpoint in one
// transaction.
type chunker struct {
	in    *Ingest
	id    string
	cp    *checkpoint
	recs  []*kgo.Record
	bytes int
}

func (c *chunker) add(r *kgo.Record) {
	c.recs = append(c.recs, r)
	c.bytes += len(r.Value)
}

func (c *chunker) marker(kind string, v any) {
	b, _ := json.Marshal(v)
	c.add(&kgo.Record{Topic: c.in.topics.Raw, Key: []byte(c.id), Value: b, Headers: wire.Meta{Kind: kind}.Headers()})
}

func (c *chunker) full() bool {
	return len(c.recs) >= c.in.cfg.ChunkRecords || c.bytes >= 8<<20
}

func (c *chunker) flush(ctx context.Context) error {
	if len(c.recs) == 0 {
		return nil
	}
	cpb, err := json.Marshal(c.cp)
	if err != nil {
		return err
	}
	recs := append(c.recs, &kgo.Record{Topic: c.in.topics.Checkpoints, Key: []byte(c.id), Value: cpb})
	for attempt := 0; ; attempt++ {
		err = c.in.commitChunk(ctx, recs)
		// About a minute of retries: a broker restart under load takes a while.
		if err == nil || ctx.Err() != nil || attempt >= 12 {
			break
		}
		c.in.log.Warn("ingest: chunk transaction failed, retrying", "execution_id", c.id, "attempt", attempt+1, "err", err)
		time.Sleep(min(time.Duration(100<<attempt)*time.Millisecond, 8*time.Second))
	}
	if err != nil {
		return fmt.Errorf("ingest: commit chunk: %w", err)
	}
	c.recs, c.bytes = c.recs[:0], 0
	return nil
}

func (in *Ingest) commitChunk(ctx context.Context, recs []*kgo.Record) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.prod.BeginTransaction(); err != nil {
		return in.recover(err)
	}
	var mu sync.Mutex
	var firstErr error
	for _, r := range recs {
		in.prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	// A cancelled acquisition still waits for every promise and ends its
	// transaction, on a context of its own.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	flushErr := in.prod.Flush(endCtx)
	mu.Lock()
	if firstErr == nil {
		firstErr = flushErr
	}
	mu.Unlock()
	commit := kgo.TryCommit
	if firstErr != nil || ctx.Err() != nil {
		commit = kgo.TryAbort
	}
	if err := in.prod.EndTransaction(endCtx, commit); err != nil {
		return in.recover(err)
	}
	if firstErr != nil {
		return in.recover(firstErr)
	}
	return ctx.Err()
}

// recover recreates the producer after any failed transaction step. After
// a broker restart the client can be left believing it is still inside a
// transaction (INVALID_TXN_STATE, then "already in a transaction"); a new
// producer with the same transactional id bumps the epoch and aborts
// whatever was left open.
func (in *Ingest) recover(err error) error {
	in.prod.Close()
	if nerr := in.newProducer(); nerr != nil {
		return errors.Join(err, nerr)
	}
	return err
}
