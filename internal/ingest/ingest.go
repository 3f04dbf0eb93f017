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
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/keys"
	"github.com/dspipe/dspipe/internal/snapshot"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/wire"
)

// Config configures an ingest instance.
type Config struct {
	Kafka kafka.Config
	// InstanceID must be stable across restarts of one instance: it is the
	// transactional id, so a restart fences and aborts the old transaction.
	InstanceID string
	// Sources is what sources need from the server: local roots, Hub and
	// Drive endpoints and credentials, the private-endpoint rule.
	Sources source.Env
	// RetryAttempts is how often a failing source is retried
	// (DATASET_RETRY_ATTEMPTS) before it fails or falls back.
	RetryAttempts int
	// RetryBase is the first retry's backoff (doubling, with jitter).
	RetryBase time.Duration
	// SourceConcurrency bounds the sources of one execution read at once.
	SourceConcurrency int
	// MaxConcurrent bounds executions acquired at once.
	MaxConcurrent int
	// MaxRecordBytes bounds one input record.
	MaxRecordBytes int
	// ChunkRecords is the number of records per transaction.
	ChunkRecords int
	// Keys hands out executions' data keys: every record payload is
	// encrypted before it leaves the process. Required.
	Keys *keys.Manager
}

// defaults sets what the environment does not configure (the chunk size,
// the reconnections within one read) and keeps the counts usable. Every
// configured value comes from internal/config, which holds the defaults
// (app.IngestConfig maps it).
func (c *Config) defaults() {
	if c.ChunkRecords <= 0 {
		c.ChunkRecords = 2000
	}
	if c.Sources.RetryAttempts <= 0 {
		c.Sources.RetryAttempts = source.DefaultReconnects
	}
	c.RetryAttempts = max(c.RetryAttempts, 0)
	c.MaxConcurrent = max(c.MaxConcurrent, 1)
	c.SourceConcurrency = max(c.SourceConcurrency, 1)
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

	// What the latest snapshots of newly assigned partitions say, for the
	// poll loop to take before the partitions' events (resume).
	resumeMu sync.Mutex
	resume   []snapshot.Execution
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
	Failed  bool  `json:"failed,omitempty"`
	// Objects is the number of the source's objects read to their end;
	// InObject the records emitted from the next one.
	Objects  int   `json:"objects,omitempty"`
	InObject int64 `json:"in_object,omitempty"`
}

// Run follows the event log until ctx ends. It consumes as a group without
// committing offsets: on every assignment it rebuilds which executions
// still need acquisition from the partition's latest processor snapshot and
// the events after it (from the start when there is no snapshot).
func (in *Ingest) Run(ctx context.Context) error {
	if in.cfg.Keys == nil {
		return errors.New("ingest: no data key manager: record payloads are always encrypted")
	}
	if err := in.newProducer(); err != nil {
		return err
	}
	defer func() { in.mu.Lock(); in.prod.Close(); in.mu.Unlock() }()
	cons, err := in.eventsClient()
	if err != nil {
		return err
	}
	defer cons.Close()
	in.cfg.Kafka.Member.Set("ingest", cons)
	defer in.cfg.Kafka.Member.Set("ingest", nil)
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
		for _, s := range in.resumed(requests) {
			in.launch(ctx, s.id, s.partition, s.req)
		}
		for _, s := range in.startsIn(fs, requests) {
			in.launch(ctx, s.id, s.partition, s.req)
		}
	}
}

// eventsClient follows the event topic as a member of the ingest group.
func (in *Ingest) eventsClient() (*kgo.Client, error) {
	return in.cfg.Kafka.Client(
		in.cfg.Kafka.Metered("ingest-events"),
		kgo.ConsumerGroup(in.cfg.Kafka.Name("dspipe-ingest")),
		// Static membership: a restarted instance takes its partitions back
		// (and relaunches their acquisitions) at once; a dead one's go to
		// the others after a 10 s session instead of the default 45 s.
		kgo.InstanceID(in.cfg.Kafka.Name("dspipe-"+in.cfg.InstanceID)),
		kgo.SessionTimeout(10*time.Second),
		kgo.ConsumeTopics(in.topics.Events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Every assignment, including getting a lost partition back, replays
		// the partition from its latest snapshot (or its start): the replay
		// is what relaunches the acquisitions that were stopped when the
		// partition went away.
		kgo.AdjustFetchOffsetsFn(func(ctx context.Context, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			for t, parts := range m {
				for p := range parts {
					m[t][p] = in.resumeFrom(ctx, p)
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
}

// resumeFrom reads the latest snapshot of an assigned partition, keeps its
// unfinished executions for the poll loop, and returns where the partition's
// events are to be read from: after the snapshot, or from the start when
// there is none or it cannot be read.
func (in *Ingest) resumeFrom(ctx context.Context, partition int32) kgo.Offset {
	s, err := snapshot.Latest(ctx, in.cfg.Kafka, partition, func(msg string, args ...any) { in.log.Warn(msg, args...) })
	if err != nil {
		in.log.Warn("ingest: no snapshot, replaying the partition from its start", "partition", partition, "err", err)
	}
	if s == nil {
		return kgo.NewOffset().AtStart()
	}
	in.resumeMu.Lock()
	defer in.resumeMu.Unlock()
	for _, x := range s.Executions {
		if x.Status != snapshot.StatusDone {
			in.resume = append(in.resume, x)
		}
	}
	in.log.Info("ingest: partition resumes from a snapshot", "partition", partition, "offset", s.Next)
	return kgo.NewOffset().At(s.Next)
}

// resumed takes what the snapshots of newly assigned partitions said: it
// remembers the requests of executions not yet started and returns those
// started and not finished.
func (in *Ingest) resumed(requests map[string]events.Request) []start {
	in.resumeMu.Lock()
	xs := in.resume
	in.resume = nil
	in.resumeMu.Unlock()
	var out []start
	for _, x := range xs {
		requests[x.ID] = x.Request
		if x.Status == snapshot.StatusRunning || x.Status == snapshot.StatusFinalizing {
			out = append(out, start{id: x.ID, req: x.Request, partition: x.Partition})
		}
	}
	return out
}

// start is an execution whose acquisition is to begin.
type start struct {
	id        string
	req       events.Request
	partition int32
}

// startsIn reads one poll of events: it remembers requests, forgets (and
// stops) finished executions, and returns the executions that started and
// have not finished within the poll, in order.
func (in *Ingest) startsIn(fs kgo.Fetches, requests map[string]events.Request) []start {
	started := map[string]int{}
	var order []start
	fs.EachRecord(func(r *kgo.Record) {
		e, err := events.Decode(r.Value)
		if err != nil {
			in.log.Error("ingest: undecodable event", "offset", r.Offset, "err", err)
			return
		}
		switch {
		case e.Type == events.TypeExecutionRequested:
			if p, err := events.Parse(e); err == nil {
				requests[e.Subject] = p.(*events.ExecutionRequested).Request
			}
		case e.Type == events.TypeExecutionStarted:
			if req, ok := requests[e.Subject]; ok {
				if _, dup := started[e.Subject]; dup {
					return
				}
				started[e.Subject] = len(order)
				order = append(order, start{id: e.Subject, req: req, partition: r.Partition})
			}
		case events.Terminal(e.Type):
			delete(requests, e.Subject)
			if i, ok := started[e.Subject]; ok {
				order[i].id = "" // finished within the poll: nothing to start
				delete(started, e.Subject)
			}
			if a, ok := in.running.Load(e.Subject); ok {
				a.(acquisition).cancel()
			}
		}
	})
	out := order[:0]
	for _, s := range order {
		if s.id != "" {
			out = append(out, s)
		}
	}
	return out
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
		in.cfg.Kafka.Metered("ingest-records"),
		kgo.TransactionalID(in.cfg.Kafka.Name("dspipe-"+in.cfg.InstanceID)),
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

// acquire streams every source of one execution, resuming from its
// checkpoint. Sources are started in priority order (lowest number first)
// and read concurrently, at most SourceConcurrency at a time; each source
// commits its own chunks, and the checkpoint written with a chunk holds the
// committed state of every source.
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
	ex := &execution{in: in, id: id, committed: cp}
	order := make([]int, len(req.Sources))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return req.Sources[order[a]].Priority < req.Sources[order[b]].Priority })

	fatal := in.acquireSources(ctx, ex, order, req.Sources, cp)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The end marker and the final checkpoint go in one last transaction.
	c := ex.chunker(-1)
	fin := ex.snapshot()
	fin.Done = true
	end, err := acquisitionEnd(fin, fatal)
	if err != nil {
		return err
	}
	c.marker(wire.KindAcqEnd, end)
	return c.flushWith(ctx, fin)
}

// acquireSources reads the sources not yet done, SourceConcurrency at a
// time in priority order; the first failure that fails the execution stops
// the others and is returned.
func (in *Ingest) acquireSources(ctx context.Context, ex *execution, order []int, specs []events.SourceSpec, cp checkpoint) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, in.cfg.SourceConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fatal error
	for _, i := range order {
		if cp.Sources[i].Done {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-sctx.Done():
		}
		if sctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := in.acquireSource(sctx, ex, i, specs[i]); err != nil && sctx.Err() == nil {
				mu.Lock()
				if fatal == nil {
					fatal = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return fatal
}

// acquisitionEnd is the end marker for the final checkpoint: the records
// acquired, and whether (and why) acquisition failed. An error that is not
// a source's is returned for the attempt to be retried.
func acquisitionEnd(fin checkpoint, fatal error) (wire.AcqEnd, error) {
	var total int64
	failed := 0
	for _, sc := range fin.Sources {
		total += sc.Emitted
		if sc.Failed {
			failed++
		}
	}
	var fe *sourceFailure
	switch {
	case errors.As(fatal, &fe):
		return wire.AcqEnd{Records: total, Failed: true, Reason: fmt.Sprintf("source %q: %s", fe.name, fe.reason)}, nil
	case fatal != nil:
		return wire.AcqEnd{}, fatal
	case failed == len(fin.Sources):
		return wire.AcqEnd{Records: total, Failed: true, Reason: "every source failed"}, nil
	}
	return wire.AcqEnd{Records: total}, nil
}

// commitError is a chunk that could not be committed: the broker's fault,
// not the source's, so it is never retried as a source failure.
type commitError struct{ err error }

func (e *commitError) Error() string { return "ingest: commit chunk: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// sourceFailure is a source that failed for good under the "fail" policy.
type sourceFailure struct{ name, reason string }

func (f *sourceFailure) Error() string { return fmt.Sprintf("source %q: %s", f.name, f.reason) }

// acquireSource reads one source with retries. A failure that survives the
// retries fails the execution, or with on_failure "fallback" is reported
// and skipped.
func (in *Ingest) acquireSource(ctx context.Context, ex *execution, ix int, spec events.SourceSpec) error {
	c := ex.chunker(ix)
	name := spec.DisplayName(ix)
	sc := &c.pending
	if !sc.Started {
		sc.Started = true
		c.marker(wire.KindSourceStart, wire.SourceMarker{Source: ix, Name: name, Kind: spec.Type})
	}
	attempts := in.cfg.RetryAttempts + 1
	var err error
	for attempt := 1; ; attempt++ {
		err = in.readSource(ctx, c, ix, spec)
		var ce *commitError
		if errors.As(err, &ce) {
			return err
		}
		if err == nil || ctx.Err() != nil || source.Permanent(err) || attempt >= attempts {
			break
		}
		reason, category := describe(err)
		c.marker(wire.KindSourceRetry, wire.SourceMarker{Source: ix, Name: name, Kind: spec.Type, Reason: reason, Category: category, Attempt: attempt, Attempts: attempts})
		if ferr := c.flush(ctx); ferr != nil {
			return ferr
		}
		in.log.Warn("ingest: source attempt failed, retrying", "execution_id", ex.id, "source", ix, "attempt", attempt, "err", reason)
		select {
		case <-time.After(source.Backoff(attempt, in.cfg.RetryBase, 30*in.cfg.RetryBase)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		reason, category := describe(err)
		fallback := spec.OnFailure == events.OnFailureFallback
		sc.Done, sc.Failed = true, true
		c.marker(wire.KindSourceFail, wire.SourceMarker{Source: ix, Name: name, Kind: spec.Type, Reason: reason, Category: category, Fallback: fallback})
		if ferr := c.flush(ctx); ferr != nil {
			return ferr
		}
		if fallback {
			return nil
		}
		return &sourceFailure{name: name, reason: reason}
	}
	sc.Done = true
	c.marker(wire.KindSourceEnd, wire.SourceMarker{Source: ix, Name: name, Kind: spec.Type, Records: sc.Emitted, Bytes: sc.Bytes})
	return c.flush(ctx)
}

// describe turns an acquisition error into a reason safe to publish and its
// category.
func describe(err error) (string, string) {
	switch {
	case errors.Is(err, source.ErrNotAllowed), errors.Is(err, source.ErrConfig):
		return err.Error(), events.CategoryValidation
	case errors.Is(err, source.ErrDenied), errors.Is(err, source.ErrNotFound):
		return err.Error(), events.CategoryStorage
	case errors.Is(err, os.ErrPermission):
		return "permission denied", events.CategoryStorage
	case errors.Is(err, source.ErrBomb):
		return err.Error(), events.CategoryProcessing
	}
	return err.Error(), events.CategoryStorage
}

// readSource reads a source's objects in their listed order, skipping what
// the checkpoint says was committed.
func (in *Ingest) readSource(ctx context.Context, c *chunker, ix int, spec events.SourceSpec) error {
	src, err := source.New(ctx, spec, in.cfg.Sources)
	if err != nil {
		return err
	}
	objs, err := src.List(ctx)
	if err != nil {
		return err
	}
	dk, err := in.dataKey(ctx, c.ex.id)
	if err != nil {
		return err
	}
	// The source's size, when every object's is known: records carry it
	// with the bytes read so far, for the progress estimate.
	var size int64
	for _, o := range objs {
		if o.Size < 0 {
			size = 0
			break
		}
		size += o.Size
	}
	var ad []byte
	sc := &c.pending
	opt := source.ReadOptions{Format: spec.Config["format"], MaxRecord: in.cfg.MaxRecordBytes, Mapping: spec.Mapping, Attempts: in.cfg.Sources.RetryAttempts}
	for o := sc.Objects; o < len(objs); o++ {
		obj := objs[o]
		skip := sc.InObject // records of this object committed by an earlier attempt
		var seen int64
		err := source.Each(ctx, src, obj, opt, func(it source.Item, cnt source.Counter) error {
			seen++
			if seen <= skip {
				return nil
			}
			meta := wire.Meta{Kind: wire.KindRecord, Source: ix, Position: it.Position, Err: it.Err, Object: obj.URI}
			if it.Err != "" {
				meta.Kind = wire.KindBad
			}
			sc.Emitted++
			sc.InObject++
			sc.Bytes += cnt.Take()
			meta.Read, meta.Size, meta.Seq = sc.Bytes, size, sc.Emitted
			val := it.Data
			if dk != nil && len(val) > 0 {
				ad = crypt.AD(ad[:0], c.ex.id, crypt.PlaceRaw, meta.Kind, ix, it.Position)
				val = dk.Seal(make([]byte, 0, len(val)+crypt.Overhead), val, ad)
			}
			// Records spread over the partitions by their number, so every
			// processor of the group works on this execution.
			c.add(&kgo.Record{Topic: in.topics.Raw, Key: []byte(c.ex.id), Value: val, Headers: meta.Headers()})
			if c.full() {
				return c.flush(ctx)
			}
			return nil
		})
		if err != nil {
			return err
		}
		sc.Objects, sc.InObject = o+1, 0
	}
	return nil
}

// dataKey is the execution's data key (nil without a key manager). The
// key store not answering is the service's trouble, not the source's: it
// is asked again for about a minute, as a chunk commit is, before the
// attempt fails.
func (in *Ingest) dataKey(ctx context.Context, id string) (*crypt.DataKey, error) {
	if in.cfg.Keys == nil {
		return nil, nil
	}
	var dk *crypt.DataKey
	err := in.retrying(ctx, "data key not available", id, func() (err error) {
		dk, err = in.cfg.Keys.Get(ctx, id, true)
		return err
	}, func(err error) bool { return errors.Is(err, keys.ErrShredded) })
	return dk, err
}

// retrying calls fn until it succeeds, for about a minute (backoff from
// 100 ms doubling to 8 s, 13 calls), unless ctx ends or final says its
// error will not pass; it returns fn's last error.
func (in *Ingest) retrying(ctx context.Context, what, id string, fn func() error, final func(error) bool) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil || attempt >= 12 || final != nil && final(err) {
			return err
		}
		in.log.Warn("ingest: "+what+", retrying", "execution_id", id, "attempt", attempt+1, "err", err)
		if clock.Sleep(ctx, min(time.Duration(100<<attempt)*time.Millisecond, 8*time.Second)) != nil {
			return err
		}
	}
}

// execution holds one execution's committed checkpoint, shared by the
// chunkers of its sources.
type execution struct {
	in        *Ingest
	id        string
	mu        sync.Mutex // one chunk of this execution commits at a time
	committed checkpoint
}

func (ex *execution) snapshot() checkpoint {
	cp := ex.committed
	cp.Sources = append([]sourceCheckpoint(nil), ex.committed.Sources...)
	return cp
}

// chunker returns the chunker of source ix (-1: the execution's own).
func (ex *execution) chunker(ix int) *chunker {
	c := &chunker{in: ex.in, ex: ex, ix: ix}
	if ix >= 0 {
		c.pending = ex.committed.Sources[ix]
	}
	return c
}

// chunker collects one source's records and flushes them with the
// checkpoint in one transaction.
type chunker struct {
	in *Ingest
	ex *execution
	ix int
	// pending is this source's progress including the records not yet
	// committed.
	pending sourceCheckpoint
	recs    []*kgo.Record
	bytes   int
}

func (c *chunker) add(r *kgo.Record) {
	c.recs = append(c.recs, r)
	c.bytes += len(r.Value)
}

func (c *chunker) marker(kind string, v any) {
	b, _ := json.Marshal(v)
	c.add(&kgo.Record{Topic: c.in.topics.Raw, Key: []byte(c.ex.id), Value: b, Headers: wire.Meta{Kind: kind}.Headers()})
}

func (c *chunker) full() bool {
	return len(c.recs) >= c.in.cfg.ChunkRecords || c.bytes >= 8<<20
}

// flush commits the chunk with a checkpoint holding every source's
// committed state and this source's pending one.
func (c *chunker) flush(ctx context.Context) error {
	if len(c.recs) == 0 {
		return nil
	}
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	cp := c.ex.snapshot()
	cp.Sources[c.ix] = c.pending
	if err := c.commit(ctx, cp); err != nil {
		return err
	}
	c.ex.committed.Sources[c.ix] = c.pending
	return nil
}

// flushWith commits the chunk with the given checkpoint.
func (c *chunker) flushWith(ctx context.Context, cp checkpoint) error {
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	if err := c.commit(ctx, cp); err != nil {
		return err
	}
	c.ex.committed = cp
	return nil
}

func (c *chunker) commit(ctx context.Context, cp checkpoint) error {
	cpb, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	recs := append(c.recs, &kgo.Record{Topic: c.in.topics.Checkpoints, Key: []byte(c.ex.id), Value: cpb})
	// A broker restart under load takes a while.
	err = c.in.retrying(ctx, "chunk transaction failed", c.ex.id, func() error { return c.in.commitChunk(ctx, recs) }, nil)
	if err != nil {
		return &commitError{err: err}
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
