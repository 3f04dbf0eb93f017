// Package processor runs the stages after acquisition: the per-record
// stages (validation, standardization, quality assessment, safety
// validation, bias detection; parallel.go) with their gates, then the
// dataset stages (fusion and balancing, plan.go) and the output stage
// (output.go, outwriter.go, manifest.go). It consumes commands and raw
// records in a consumer group and produces staged records and sequenced,
// hash-chained events inside Kafka transactions, so every record is
// processed exactly once even when the process is killed.
package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/metrics"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/keys"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/stages"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/wire"
)

// Config configures a processor instance.
type Config struct {
	Kafka kafka.Config
	// Metrics takes the processor's Prometheus figures (metrics.go); nil:
	// none.
	Metrics prometheus.Registerer
	// InstanceID must be stable across restarts of one instance (it names
	// the transactional id, so a restart fences the killed instance).
	InstanceID string
	// MaxConcurrent is the number of executions this instance runs at once;
	// more wait in queued (MAX_CONCURRENT_DATASET_PROCESSING).
	MaxConcurrent int
	// ExecutionTimeout fails executions running longer.
	ExecutionTimeout time.Duration
	// OutputRoot is where output directories are written.
	OutputRoot string
	// Limits bound validation.
	Limits stage.Limits
	// SafetyEnabled runs the safety stage (ENABLE_SAFETY_VALIDATION).
	SafetyEnabled bool
	// CrisisThreshold is the default quarantine threshold (CRISIS_DETECTION_THRESHOLD).
	CrisisThreshold float64
	// PIISalt keys the salted-hash masking (DSPIPE_PII_SALT).
	PIISalt []byte
	// RecordIDKey keys the record ids (DSPIPE_RECORD_ID_KEY).
	RecordIDKey []byte
	// QualityEnabled, BiasEnabled and FusionEnabled let requests run those
	// stages (ENABLE_QUALITY_ASSESSMENT, ENABLE_BIAS_DETECTION,
	// ENABLE_FUSION); off, no request can. BiasThreshold is
	// BIAS_VALIDATION_THRESHOLD.
	QualityEnabled, BiasEnabled, FusionEnabled bool
	// OutputS3Endpoint and OutputS3Region configure s3:// output
	// destinations (DSPIPE_OUTPUT_S3_ENDPOINT, AWS_REGION); credentials
	// come from the default AWS chain.
	OutputS3Endpoint, OutputS3Region string
	BiasThreshold                    float64
	// Signer seals each execution's chain head at every stage boundary
	// and at the end (DSPIPE_AUDIT_SIGNING_KEY); nil signs nothing.
	Signer *audit.Signer
	// Erased lists the erased record ids and source-id hashes with their
	// erasure ids; records an execution meets that it names are dropped
	// with reason "erased". Nil: no erasures.
	Erased func(context.Context) (map[string]string, error)
	// Erase records an erasure (a withdrawn consent), and FinishedOutputs
	// lists the executions whose outputs it may have to rewrite. Nil: a
	// withdrawn consent only rejects the record.
	Erase           func(context.Context, store.Erasure) error
	FinishedOutputs func(context.Context) ([]string, error)
	// Keys hands out executions' data keys: raw payloads are decrypted,
	// staged payloads and outcomes encrypted. Required.
	Keys *keys.Manager
	// OutputAttempts and OutputRetryBase bound the output stage's tries
	// when a failure may pass (the broker or S3 not answering): the delay
	// doubles from the base, up to 30 s (DATASET_RETRY_ATTEMPTS + 1 and
	// DSPIPE_RETRY_BASE_MS, as for sources).
	OutputAttempts  int
	OutputRetryBase time.Duration
	// Now is the clock; tests may fix it.
	Now func() time.Time
	// SnapshotEvery is how many events of a partition may follow its latest
	// state snapshot before the next (DSPIPE_SNAPSHOT_EVERY; 0:
	// DefaultSnapshotEvery). A restart replays at most about this many.
	SnapshotEvery int
	// RecordStages and DatasetStages are the stage lists the processor
	// drives; nil is the product's lists (internal/stages).
	RecordStages  []pipeline.RecordStage
	DatasetStages []pipeline.DatasetStage
}

// defaults sets what the environment does not configure: the clock, and
// at least one attempt at the output. Every configured value comes from
// internal/config, which holds the defaults (app.ProcessorConfig maps it).
func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	c.OutputAttempts = max(c.OutputAttempts, 1)
}

const eventSource = "dspipe/processor"

// errNotCommitted is a transaction the session aborted by itself, for
// example because the group rebalanced.
var errNotCommitted = errors.New("processor: transaction not committed (rebalance or broker error)")

// Processor is the stage runner.
type Processor struct {
	cfg    Config
	log    *slog.Logger
	topics kafka.Topics

	sess    *kgo.GroupTransactSession
	metrics *procMetrics
	aux     *kgo.Client // admin queries
	inTxn   bool

	execs  map[string]*execState
	loaded map[int32]bool
	// foreign are executions homed on other processors' partitions whose
	// records this one works on (spread.go); partitions is the record
	// topics' partition count, read when first needed.
	foreign    map[string]*execState
	partitions int
	// assigned is this instance's partitions of the raw topic, as the
	// group last assigned them.
	assignMu sync.Mutex
	assigned map[int32]bool
	prepared map[string]outputResult
	reset    atomic.Bool
	// Per partition (snapshot.go): events since the latest snapshot, the
	// executions it held, and the offset of this transaction's last event.
	sinceSnapshot map[int32]int
	snapshotSize  map[int32]int
	txnEvents     map[int32]int64

	s3 *s3.Client // s3:// outputs, made when first needed

	prodMu  sync.Mutex
	prodErr error
}

// New builds a processor.
func New(cfg Config, log *slog.Logger) *Processor {
	cfg.defaults()
	return &Processor{cfg: cfg, log: log, topics: cfg.Kafka.Topics(), metrics: newMetrics(cfg.Metrics)}
}

func (p *Processor) newSession() error {
	onRevoke := func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
		p.reset.Store(true)
		p.assign(lost[p.topics.Raw], false)
	}
	onAssigned := func(_ context.Context, _ *kgo.Client, got map[string][]int32) { p.assign(got[p.topics.Raw], true) }
	opts := append(p.cfg.Kafka.ProducerOpts(),
		kgo.SeedBrokers(p.cfg.Kafka.Brokers...),
		kgo.TransactionalID(p.cfg.Kafka.Name("dspipe-"+p.cfg.InstanceID)),
		kgo.TransactionTimeout(20*time.Second),
		p.cfg.Kafka.Metered("processor"),
		kgo.ConsumerGroup(p.cfg.Kafka.Name("dspipe-processor")),
		// Static membership: a restarted instance takes its partitions back
		// at once instead of waiting for the session timeout.
		kgo.InstanceID(p.cfg.Kafka.Name("dspipe-"+p.cfg.InstanceID)),
		kgo.ConsumeTopics(p.topics.Commands, p.topics.Raw, p.topics.Outcomes),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		// Range assignment gives one member partition i of every topic, so
		// an execution's commands, markers and outcomes land on the same
		// instance (its home); its records are spread over every instance.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchMaxBytes(8<<20),
		// At most 1 MB a partition in a fetch (one larger batch still
		// comes whole): a fetch then carries every partition this instance
		// consumes, so the outcomes of the executions homed here are
		// counted as they come, not after the raw partitions run dry.
		kgo.FetchMaxPartitionBytes(1<<20),
		kgo.MaxBufferedBytes(16<<20),
		kgo.MaxConcurrentFetches(2),
		kgo.OnPartitionsAssigned(onAssigned),
		kgo.OnPartitionsRevoked(onRevoke),
		kgo.OnPartitionsLost(onRevoke),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(30*time.Second),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("processor: session: %w", err)
	}
	p.sess = sess
	p.cfg.Kafka.Member.Set("processor", sess.Client())
	return nil
}

// Run consumes until ctx ends.
func (p *Processor) Run(ctx context.Context) error {
	if p.cfg.Keys == nil {
		return errors.New("processor: no data key manager: record payloads are always encrypted")
	}
	aux, err := p.cfg.Kafka.Client()
	if err != nil {
		return err
	}
	defer aux.Close()
	p.aux = aux
	if len(p.cfg.RecordIDKey) == 0 {
		p.log.Warn("DSPIPE_RECORD_ID_KEY is unset: record ids are plain hashes of conversation text; set a secret key in production")
	}
	if err := p.newSession(); err != nil {
		return err
	}
	defer func() { p.sess.Close() }()
	p.dropState()

	for {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := p.sess.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				p.log.Warn("processor: fetch", "topic", t, "partition", part, "err", err)
			}
		})
		if p.reset.Swap(false) {
			p.dropState()
		}
		if err := p.step(ctx, fs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Error("processor: transaction aborted, state reloads from the log", "err", err)
			p.dropState()
			// A transaction that was simply not committed (a rebalance) needs
			// nothing more; any other failure may leave the transactional
			// client in a state it cannot leave, so the session is recreated.
			if !errors.Is(err, errNotCommitted) {
				p.sess.Close()
				if err := p.newSession(); err != nil {
					return err
				}
			}
			if clock.Sleep(ctx, 200*time.Millisecond) != nil {
				return nil
			}
		}
	}
}

// assign records partitions of the raw topic assigned to or taken from
// this instance.
func (p *Processor) assign(parts []int32, on bool) {
	p.assignMu.Lock()
	defer p.assignMu.Unlock()
	if p.assigned == nil {
		p.assigned = map[int32]bool{}
	}
	for _, q := range parts {
		if on {
			p.assigned[q] = true
		} else {
			delete(p.assigned, q)
		}
	}
}

// homedHere reports whether an execution's home partition is this
// instance's.
func (p *Processor) homedHere(home int32) bool {
	p.assignMu.Lock()
	defer p.assignMu.Unlock()
	return p.assigned[home]
}

func (p *Processor) dropState() {
	p.execs = map[string]*execState{}
	p.foreign = map[string]*execState{}
	p.loaded = map[int32]bool{}
	p.prepared = map[string]outputResult{}
	p.sinceSnapshot = map[int32]int{}
	p.snapshotSize = map[int32]int{}
}

// step handles one poll's records and housekeeping in one transaction.
func (p *Processor) step(ctx context.Context, fs kgo.Fetches) error {
	p.inTxn = false
	p.prodMu.Lock()
	p.prodErr, p.txnEvents = nil, map[int32]int64{}
	p.prodMu.Unlock()
	if err := p.prepare(ctx, fs); err != nil {
		// The polled records must be consumed again: only aborting a
		// transaction rewinds the session to the committed offsets.
		if !fs.Empty() && p.begin() == nil {
			endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = p.sess.End(endCtx, kgo.TryAbort)
		}
		return err
	}
	return p.transact(ctx, fs.Records())
}

// prepare does the work that must happen outside the transaction: loading
// the state of newly seen partitions and writing output files (a long write
// must not outlive the transaction timeout).
func (p *Processor) prepare(ctx context.Context, fs kgo.Fetches) error {
	var err error
	fs.EachRecord(func(r *kgo.Record) {
		if err == nil {
			err = p.ensureLoaded(ctx, r.Partition)
		}
	})
	if err != nil {
		return err
	}
	if err := p.resolveForeign(ctx, fs); err != nil {
		return err
	}
	return p.prepareOutputs(ctx, fs)
}

// transact applies the records in one transaction.
func (p *Processor) transact(ctx context.Context, recs []*kgo.Record) error {
	pre := p.precompute(recs)
	var finalize []*execState
	var err error
	for i, r := range recs {
		if err = p.begin(); err != nil {
			break
		}
		switch r.Topic {
		case p.topics.Commands:
			var x *execState
			x, err = p.handleCommand(ctx, r)
			if x != nil {
				finalize = append(finalize, x)
			}
		case p.topics.Raw:
			err = p.handleRaw(ctx, r, &pre[i])
		case p.topics.Outcomes:
			err = p.handleOutcome(ctx, r)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		for _, x := range finalize {
			if err = p.finalize(ctx, x); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = p.housekeeping(ctx)
	}
	if err == nil && p.inTxn {
		err = p.schedule(ctx)
	}
	if err == nil {
		p.emitProgress()
	}
	if !p.inTxn {
		return err
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// Every produce must have answered before we choose: a record that failed
	// to produce must abort the transaction, never commit without it.
	if err == nil {
		if ferr := p.sess.Client().Flush(endCtx); ferr != nil {
			err = fmt.Errorf("processor: flush: %w", ferr)
		}
	}
	// With every event's offset known, the snapshots that are due join the
	// same transaction.
	if err == nil && p.producerErr() == nil {
		var wrote bool
		wrote, err = p.writeSnapshots()
		if err == nil && wrote {
			if ferr := p.sess.Client().Flush(endCtx); ferr != nil {
				err = fmt.Errorf("processor: flush: %w", ferr)
			}
		}
	}
	how := kgo.TryCommit
	if err != nil || p.producerErr() != nil {
		how = kgo.TryAbort
	}
	committed, endErr := p.sess.End(endCtx, how)
	switch {
	case err != nil:
		return err
	case p.producerErr() != nil:
		return p.producerErr()
	case endErr != nil:
		return fmt.Errorf("processor: end transaction: %w", endErr)
	case !committed:
		return errNotCommitted
	}
	return nil
}

func (p *Processor) begin() error {
	if p.inTxn {
		return nil
	}
	if err := p.sess.Begin(); err != nil {
		return fmt.Errorf("processor: begin: %w", err)
	}
	p.inTxn = true
	return nil
}

func (p *Processor) produce(r *kgo.Record) {
	p.sess.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		p.prodMu.Lock()
		defer p.prodMu.Unlock()
		switch {
		case err != nil:
			if p.prodErr == nil {
				p.prodErr = err
			}
		case r.Topic == p.topics.Events:
			if last, ok := p.txnEvents[r.Partition]; !ok || r.Offset > last {
				p.txnEvents[r.Partition] = r.Offset
			}
		}
	})
}

func (p *Processor) producerErr() error {
	p.prodMu.Lock()
	defer p.prodMu.Unlock()
	return p.prodErr
}

// emit seals an event into the execution's chain, applies it to the state
// and produces it in the current transaction. At a stage boundary the
// chain head is then signed (a checkpoint); once the execution has ended,
// every event is followed by a final seal, so a finished trail always
// ends with a signature over all of it.
func (p *Processor) emit(x *execState, payload events.Payload) error {
	if err := p.emitOne(x, payload); err != nil {
		return err
	}
	if p.cfg.Signer == nil {
		return nil
	}
	typ := ""
	switch payload.(type) {
	case events.StageCompleted, events.StageFailed:
		typ = events.TypeChainCheckpoint
	}
	if x.status == statusDone {
		typ = events.TypeExecutionSealed
	}
	if typ == "" {
		return nil
	}
	return p.emitOne(x, p.cfg.Signer.Seal(typ, x.id, x.chain.Seq, x.chain.Hash))
}

func (p *Processor) emitOne(x *execState, payload events.Payload) error {
	p.metrics.event(payload)
	e, err := events.New(eventSource, x.id, p.cfg.Now(), payload)
	if err != nil {
		return err
	}
	x.chain.Seal(&e)
	// Apply the decoded form, exactly as a replay of the log will.
	parsed, err := events.Parse(e)
	if err != nil {
		return err
	}
	x.apply(&e, parsed)
	b, err := events.Encode(e)
	if err != nil {
		return err
	}
	p.log.Debug("processor: emit", "execution_id", x.id, "seq", e.Seq, "type", e.Type)
	p.sinceSnapshot[x.partition]++
	p.produce(&kgo.Record{Topic: p.topics.Events, Key: []byte(x.id), Value: b})
	return nil
}

// ensureLoaded rebuilds the state of every execution on a partition the
// first time the partition is seen since the last reset: from its latest
// snapshot and the events after it (snapshot.go).
func (p *Processor) ensureLoaded(ctx context.Context, partition int32) error {
	if p.loaded[partition] {
		return nil
	}
	began := time.Now()
	rec, err := recoverPartition(ctx, p.cfg.Kafka, partition, true, func(msg string, args ...any) { p.log.Error(msg, args...) })
	if err != nil {
		return err
	}
	for id, x := range rec.execs {
		p.execs[id] = x
	}
	p.sinceSnapshot[partition] = rec.replayed
	p.snapshotSize[partition] = len(rec.execs)
	p.metrics.recovered(rec.replayed)
	p.log.Info("processor: partition loaded", "partition", partition, "executions", len(rec.execs),
		"snapshot_offset", rec.from, "events_replayed", rec.replayed, "took", time.Since(began).Round(time.Millisecond))
	p.loaded[partition] = true
	return nil
}

func (p *Processor) handleCommand(ctx context.Context, r *kgo.Record) (*execState, error) {
	c, err := wire.DecodeCommand(r)
	if err != nil {
		p.log.Error("processor: skipping bad command", "err", err)
		return nil, nil
	}
	x := p.execs[c.ExecutionID]
	switch c.Kind {
	case wire.CmdProcess:
		if x != nil || c.Request == nil {
			return nil, nil // a duplicate delivery of the command
		}
		x = newExec(c.ExecutionID, r.Partition)
		p.execs[x.id] = x
		// Scheduled once the whole poll is handled: requests that arrived
		// together start in the order they were made, whatever partition
		// each came from.
		return nil, p.emit(x, events.ExecutionRequested{UserID: c.UserID, Request: *c.Request, SubmittedAt: c.SubmittedAt})
	case wire.CmdCancel:
		if x == nil || x.status == statusDone {
			return nil, nil
		}
		if err := p.emit(x, events.ExecutionCancelled{By: c.UserID, Reason: c.Reason}); err != nil {
			return nil, err
		}
		return nil, p.schedule(ctx)
	case wire.CmdProgress:
		if x == nil || x.status == statusDone {
			return nil, nil
		}
		return nil, p.emit(x, events.ProgressReported{Stage: c.Stage, Percent: c.Percent, Message: c.Message, By: c.UserID})
	case wire.CmdAckReview:
		if x == nil || x.reviews[c.Review] != reviewOpen {
			return nil, nil // unknown or already acknowledged (the API checked; this is a duplicate)
		}
		return nil, p.emit(x, events.ReviewAcknowledged{Review: c.Review, By: c.UserID, Note: c.Message})
	case wire.CmdDeleteData:
		if x == nil || x.status != statusDone || x.dataDeleted {
			return nil, nil // the API checked; a duplicate or a late command
		}
		return nil, p.deleteData(ctx, x, c.UserID)
	case wire.CmdApplyErasure:
		if x == nil || x.status != statusDone || x.dataDeleted || x.outputDir == "" {
			return nil, nil
		}
		return nil, p.applyErasure(ctx, x, c.Message)
	case wire.CmdFinalize:
		if x == nil || x.status != statusFinalizing {
			return nil, nil
		}
		return x, nil
	}
	p.log.Warn("processor: unknown command kind", "kind", c.Kind)
	return nil, nil
}

// schedule starts queued executions while slots are free, oldest first, and
// queues requested ones that do not fit.
func (p *Processor) schedule(ctx context.Context) error {
	active := 0
	var waiting []*execState
	for _, x := range p.execs {
		switch {
		case x.active():
			active++
		case x.status == statusRequested || x.status == statusQueued:
			waiting = append(waiting, x)
		}
	}
	sort.Slice(waiting, func(i, j int) bool {
		if !waiting[i].requestedAt.Equal(waiting[j].requestedAt) {
			return waiting[i].requestedAt.Before(waiting[j].requestedAt)
		}
		return waiting[i].id < waiting[j].id
	})
	for _, x := range waiting {
		if active < p.cfg.MaxConcurrent {
			offs, err := kafka.EndOffsets(ctx, p.aux, p.topics.Staged)
			if err != nil {
				return err
			}
			if int(x.partition) >= len(offs) {
				return fmt.Errorf("processor: the staged topic has no partition %d", x.partition)
			}
			if err := p.emit(x, events.ExecutionStarted{StagedOffset: offs[x.partition], StagedOffsets: offs}); err != nil {
				return err
			}
			active++
			continue
		}
		if x.status == statusRequested {
			if err := p.emit(x, events.ExecutionQueued{Active: active, Limit: p.cfg.MaxConcurrent}); err != nil {
				return err
			}
		}
	}
	return nil
}

// housekeeping fails executions past their timeout.
func (p *Processor) housekeeping(ctx context.Context) error {
	now := p.cfg.Now()
	var expired []*execState
	for _, x := range p.execs {
		if x.active() && now.Sub(x.startedAt) > p.cfg.ExecutionTimeout {
			expired = append(expired, x)
		}
	}
	if len(expired) == 0 {
		return nil
	}
	if err := p.begin(); err != nil {
		return err
	}
	for _, x := range expired {
		reason := fmt.Sprintf("execution exceeded DATASET_EXECUTION_TIMEOUT_MINUTES (%s)", p.cfg.ExecutionTimeout)
		if err := p.emit(x, events.ExecutionFailed{Stage: currentStage(x), Reason: reason, Category: events.CategoryTimeout}); err != nil {
			return err
		}
	}
	return p.schedule(ctx)
}

func currentStage(x *execState) string {
	latest, name := time.Time{}, ""
	for s, t := range x.stages {
		if name == "" || t.After(latest) {
			latest, name = t, s
		}
	}
	return name
}

// emitProgress records the cumulative counts of every execution touched in
// this transaction; it is also the checkpoint replay restores.
func (p *Processor) emitProgress() {
	now := p.cfg.Now()
	for _, x := range p.execs {
		if !x.dirty {
			continue
		}
		x.dirty = false
		if x.status == statusDone {
			continue
		}
		_ = p.emit(x, p.progressEvent(x, now))
	}
}

// handleRaw runs one raw record through the record stages (whichever
// execution it belongs to), or applies one marker of an execution homed
// here.
func (p *Processor) handleRaw(ctx context.Context, r *kgo.Record, pre *outcome) error {
	m := pre.meta
	if !pre.hasMeta { // a marker, or a record precompute did not run
		var err error
		if m, err = wire.ReadMeta(r); err != nil {
			p.log.Error("processor: raw record without metadata", "partition", r.Partition, "offset", r.Offset, "err", err)
			return nil
		}
	}
	if m.Kind == wire.KindRecord || m.Kind == wire.KindBad {
		return p.work(r, m, pre)
	}
	x := p.execs[string(r.Key)]
	if x == nil || (x.status != statusRunning) {
		return nil // cancelled, failed or unknown: the marker is dropped with its execution
	}
	switch m.Kind {
	case wire.KindSourceStart:
		var sm wire.SourceMarker
		_ = json.Unmarshal(r.Value, &sm)
		if err := p.startStage(x, events.StageAcquisition); err != nil {
			return err
		}
		if x.sources[sm.Source] {
			return nil
		}
		return p.emit(x, events.SourceStarted{Source: sm.Source, Name: sm.Name, Kind: sm.Kind})
	case wire.KindSourceEnd:
		var sm wire.SourceMarker
		_ = json.Unmarshal(r.Value, &sm)
		return p.emit(x, events.SourceCompleted{Source: sm.Source, Name: sm.Name, Records: sm.Records, Bytes: sm.Bytes})
	case wire.KindSourceFail:
		var sm wire.SourceMarker
		_ = json.Unmarshal(r.Value, &sm)
		if err := p.emit(x, events.SourceFailed{Source: sm.Source, Name: sm.Name, Reason: sm.Reason, Category: sm.Category}); err != nil || !sm.Fallback {
			return err
		}
		return p.emit(x, events.Alert{Severity: "warning", Code: "source_fallback", Stage: events.StageAcquisition,
			Message: fmt.Sprintf("source %q failed (%s); going on with the other sources as the request allows", sm.Name, sm.Reason)})
	case wire.KindSourceRetry:
		var sm wire.SourceMarker
		_ = json.Unmarshal(r.Value, &sm)
		return p.emit(x, events.Alert{Severity: "warning", Code: "source_retry", Stage: events.StageAcquisition,
			Message: fmt.Sprintf("source %q: attempt %d of %d failed (%s); retrying", sm.Name, sm.Attempt, sm.Attempts, sm.Reason)})
	case wire.KindAcqEnd:
		return p.acquisitionEnded(ctx, x, r.Value)
	}
	return nil
}

// memoryMB is the memory the Go runtime holds from the OS, in MB; reading it
// does not stop the world.
func memoryMB() float64 {
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return math.Round(float64(sample[0].Value.Uint64())/(1<<20)*10) / 10
}

// HighRejectionShare is the share of rejected records above which the user
// is warned: the input is probably in a shape or encoding we do not expect.
const HighRejectionShare = 0.10

// rejectionAlert warns when validation and standardization rejected more
// than HighRejectionShare of the records. It carries counts only.
func rejectionAlert(c events.Counts) (events.Alert, bool) {
	if c.Received == 0 || float64(c.Rejected)/float64(c.Received) <= HighRejectionShare {
		return events.Alert{}, false
	}
	return events.Alert{
		Severity: "warning",
		Code:     "high_rejection_rate",
		Stage:    events.StageValidation,
		Message: fmt.Sprintf("%d of %d records (%.1f%%) were rejected; rejected.jsonl gives each position and reason",
			c.Rejected, c.Received, 100*float64(c.Rejected)/float64(c.Received)),
	}, true
}

func (p *Processor) startStage(x *execState, s string) error {
	if _, ok := x.stages[s]; ok {
		return nil
	}
	return p.emit(x, events.StageStarted{Stage: s})
}

// recordStages are the per-record stages an execution runs: the three
// every record passes, then the list's active stages.
func (p *Processor) recordStages(x *execState) []string {
	st := []string{events.StageAcquisition, events.StageValidation, events.StageStandardization}
	for _, a := range p.stagesFor(x).stages {
		st = append(st, a.Name)
	}
	return st
}

// openStaged decrypts a staged payload read back by the output stage.
func (p *Processor) openStaged(x *execState, m wire.Meta, v []byte) ([]byte, error) {
	dk, err := p.keyOf(x)
	if err != nil || dk == nil {
		return v, err
	}
	out, err := dk.Open(nil, v, crypt.AD(nil, x.id, crypt.PlaceStaged, m.Kind, m.Source, m.Position))
	if err != nil {
		return nil, fmt.Errorf("staged record %d of source %d: %w", m.Position, m.Source, err)
	}
	return out, nil
}

// erased is the erasures in force, read when an execution's stages are
// first resolved (so at its start, or again after a restart).
func (p *Processor) erased() (map[string]string, error) {
	if p.cfg.Erased == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := p.cfg.Erased(ctx)
	if err != nil {
		return nil, fmt.Errorf("processor: read erasures: %w", err)
	}
	return m, nil
}

// keyOf is the execution's data key (nil without a key manager).
func (p *Processor) keyOf(x *execState) (*crypt.DataKey, error) {
	if p.cfg.Keys == nil {
		return nil, nil
	}
	if x.dk != nil {
		return x.dk, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dk, err := p.cfg.Keys.Get(ctx, x.id, true)
	if err != nil {
		return nil, fmt.Errorf("processor: data key of %s: %w", x.id, err)
	}
	x.dk = dk
	return dk, nil
}

// acquisitionEnded takes the number of records acquisition emitted. The
// record stages close when every one has been counted: now, or when the
// last outcome arrives (the records are spread over every processor, so
// some may still be on their way).
func (p *Processor) acquisitionEnded(ctx context.Context, x *execState, v []byte) error {
	var ae wire.AcqEnd
	if err := json.Unmarshal(v, &ae); err != nil {
		ae = wire.AcqEnd{Failed: true, Reason: "acquisition ended with an unreadable marker"}
	}
	if err := p.startStage(x, events.StageAcquisition); err != nil {
		return err
	}
	if ae.Failed {
		return p.fail(ctx, x, events.StageAcquisition, events.CategoryIntegration, ae.Reason)
	}
	x.counts.Total = ae.Records
	if x.counts.Received >= x.counts.Total {
		return p.closeRecordStages(ctx, x)
	}
	// The total is in the log, so a restart goes on waiting for the rest.
	x.dirty = false
	return p.emit(x, p.progressEvent(x, p.cfg.Now()))
}

// closeRecordStages closes the per-record stages, each through its gate,
// and hands the execution to the output stage through a finalize command,
// which becomes visible only once this transaction commits: every staged
// record was committed before its outcome was counted.
func (p *Processor) closeRecordStages(ctx context.Context, x *execState) error {
	now := p.cfg.Now()
	x.dirty = false
	if err := p.emit(x, p.progressEvent(x, now)); err != nil {
		return err
	}
	for _, s := range p.recordStages(x) {
		if err := p.startStage(x, s); err != nil {
			return err
		}
		sc := events.StageCompleted{Stage: s, Counts: x.counts, DurationMS: now.Sub(x.stages[s]).Milliseconds()}
		g := p.gate(x, &sc)
		for _, a := range g.Alerts {
			if err := p.emit(x, a); err != nil {
				return err
			}
		}
		if g.Failure != "" {
			return p.fail(ctx, x, s, events.CategorySafety, g.Failure)
		}
		if err := p.emit(x, sc); err != nil {
			return err
		}
	}
	return p.handOffToOutput(x)
}

// gate closes one record stage: the stage puts its summary on sc and
// applies its gate.
func (p *Processor) gate(x *execState, sc *events.StageCompleted) pipeline.Gate {
	for _, a := range p.stagesFor(x).stages {
		if a.Name == sc.Stage {
			return a.Run.Close(&x.Summaries, sc, x.counts)
		}
	}
	return pipeline.Gate{}
}

// handOffToOutput raises the rejection alert, starts the dataset stages
// and asks for the output through the commands topic.
func (p *Processor) handOffToOutput(x *execState) error {
	if a, ok := rejectionAlert(x.counts); ok {
		if err := p.emit(x, a); err != nil {
			return err
		}
	}
	var started []string
	for _, a := range p.datasetsFor(x) {
		started = append(started, a.Name)
	}
	for _, s := range append(started, events.StageOutput) {
		if err := p.emit(x, events.StageStarted{Stage: s}); err != nil {
			return err
		}
	}
	rec, err := wire.Command{Kind: wire.CmdFinalize, ExecutionID: x.id}.Record(p.topics.Commands)
	if err != nil {
		return err
	}
	p.produce(rec)
	return nil
}

// fail is the one way an execution fails in a stage: the stage fails, then
// the execution, and the next waiting execution may start.
func (p *Processor) fail(ctx context.Context, x *execState, stage, category, reason string) error {
	if err := p.emit(x, events.StageFailed{Stage: stage, Reason: reason, Category: category}); err != nil {
		return err
	}
	if err := p.emit(x, events.ExecutionFailed{Stage: stage, Reason: reason, Category: category}); err != nil {
		return err
	}
	return p.schedule(ctx)
}

// progressEvent is the execution's cumulative figures as a progress event.
func (p *Processor) progressEvent(x *execState, now time.Time) events.StageProgress {
	rate := 0.0
	if el := now.Sub(x.startedAt).Seconds(); el > 0 {
		rate = float64(x.counts.Received) / el
	}
	sum := p.summaries(x)
	return events.StageProgress{Stage: p.currentRecordStage(x), Counts: x.counts, PerSource: append([]int64(nil), x.perSource...),
		NoConsent: append([]int64(nil), x.noConsent...), RatePerSec: rate, MemoryMB: memoryMB(), Safety: sum.Safety,
		Quality: sum.Quality, Bias: sum.Bias, EstimatedTotal: x.estimatedTotal()}
}

// currentRecordStage is the last per-record stage the execution runs.
func (p *Processor) currentRecordStage(x *execState) string {
	st := p.recordStages(x)
	return st[len(st)-1]
}

// stagesFor is the execution's resolved per-record stages.
func (p *Processor) stagesFor(x *execState) *stageRun {
	if x.run == nil {
		run := &stageRun{keepSourceIDs: x.req.Output.KeepSourceIDs, stages: pipeline.Resolve(p.recordList(), x.req, p.env())}
		for _, a := range pipeline.ResolveDataset(p.datasetList(), x.req, p.env()) {
			if c, ok := a.Run.(pipeline.PreparedCodec); ok {
				run.prepare = append(run.prepare, preparing{name: a.Name, codec: c})
			} else {
				_ = a.Run.Close()
			}
		}
		// An execution must not run past an erasure it could not read:
		// record() fails the transaction on erasedErr and drops this run,
		// so the retry reads the erasures again (once, not per record).
		run.erased, run.erasedErr = p.erased()
		_ = json.Unmarshal(x.req.Processing["require_consent"], &run.requireConsent)
		x.run = run
	}
	return x.run
}

// recordList and datasetList are the stage lists this processor drives.
func (p *Processor) recordList() []pipeline.RecordStage {
	if p.cfg.RecordStages == nil {
		return stages.Record()
	}
	return p.cfg.RecordStages
}

func (p *Processor) datasetList() []pipeline.DatasetStage {
	if p.cfg.DatasetStages == nil {
		return stages.Dataset()
	}
	return p.cfg.DatasetStages
}

// env is what the server's configuration says about the stages.
func (p *Processor) env() pipeline.Env {
	return pipeline.Env{QualityEnabled: p.cfg.QualityEnabled, SafetyEnabled: p.cfg.SafetyEnabled, BiasEnabled: p.cfg.BiasEnabled, FusionEnabled: p.cfg.FusionEnabled,
		CrisisThreshold: p.cfg.CrisisThreshold, BiasThreshold: p.cfg.BiasThreshold, PIISalt: p.cfg.PIISalt}
}

// datasetsFor is the execution's dataset stages from the list, resolved
// once: their names and settings. The output stage resolves fresh runs to
// plan with (planDataset).
func (p *Processor) datasetsFor(x *execState) []pipeline.DatasetActive {
	if x.datasets == nil {
		x.datasets = &datasetRun{active: pipeline.ResolveDataset(p.datasetList(), x.req, p.env())}
	}
	return x.datasets.active
}

// datasetRun is an execution's resolved dataset stages.
type datasetRun struct{ active []pipeline.DatasetActive }

// summaries is the execution's summaries brought up to date (a score
// computed from the counts), for progress events and the manifest.
func (p *Processor) summaries(x *execState) pipeline.Summaries {
	for _, a := range p.stagesFor(x).stages {
		if r, ok := a.Run.(pipeline.Refresher); ok {
			r.Refresh(&x.Summaries)
		}
	}
	return pipeline.Summaries{Quality: x.Quality.Clone(), Safety: x.Safety.Clone(), Bias: x.Bias.Clone()}
}
