package processor

import (
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/snapshot"
	"github.com/dspipe/dspipe/internal/wire"
)

// Execution statuses inside the processor.
const (
	statusRequested  = snapshot.StatusRequested
	statusQueued     = snapshot.StatusQueued
	statusRunning    = snapshot.StatusRunning
	statusFinalizing = snapshot.StatusFinalizing
	statusDone       = snapshot.StatusDone
)

// execState is one execution as the processor knows it, rebuilt exactly by
// replaying the event log: the processor keeps no state that is not in
// Kafka. It changes in two ways. apply takes each event the processor
// emits or replays. Between events, the record path (record, and each
// record stage's Count) adds each record's outcome to the counts and
// summaries;
// those are emitted as one cumulative StageProgress in the same
// transaction as the records (emitProgress), so what the record path
// changed is an event before the transaction commits, and a replay
// restores it. The rest are caches of what the request and the key store
// say (run, datasets, dk) and the estimate's inputs, which
// replay rebuilds from the raw records' metadata.
type execState struct {
	id          string
	partition   int32
	user        string
	req         events.Request
	chain       events.Chain
	status      string
	requestedAt time.Time
	startedAt   time.Time
	stagedFrom  int64
	// stagedFroms is where the execution's staged records may begin in
	// each partition of the staged topic (nil for an execution started by
	// an earlier version: all of its records are at stagedFrom of its own).
	stagedFroms []int64
	counts      events.Counts
	perSource   []int64
	noConsent   []int64              // per source: records rejected for want of consent
	stages      map[string]time.Time // started stages and when
	sources     map[int]bool         // sources whose start was announced
	dirty       bool                 // records processed in this transaction
	reviews     map[int]string       // review number → open or acknowledged
	run         *stageRun            // resolved lazily from the request
	datasets    *datasetRun          // resolved lazily from the request
	// The record stages' running summaries (Quality, Safety, Bias).
	pipeline.Summaries
	dk          *crypt.DataKey // the data key, fetched when first needed
	outputDir   string         // where the output went (a directory or s3://)
	dataDeleted bool
	// Per source, for the progress estimate while acquisition runs:
	// records read, bytes read and total bytes (0: unknown).
	srcRecords, srcRead, srcSize []int64
	// counted has a bit per record (by source and sequence number) whose
	// outcome this instance counted since it loaded the execution;
	// redelivered is how many were delivered again.
	counted     seqSet
	redelivered int64
}

// countOnce marks a record's outcome counted and reports whether it was
// not already: an outcome delivered twice is counted once.
func (x *execState) countOnce(m wire.Meta) bool {
	return x.counted.add(len(x.req.Sources), m.Source, m.Seq)
}

// seqSet is a set of records by source and sequence number: a bit each.
type seqSet struct{ bits [][]uint64 }

// add adds a record of one of sources sources (one naming no known source
// counts as the last plus one) and reports whether it was not in the set.
// Records of an earlier version (no sequence number) are not tracked.
func (t *seqSet) add(sources, source int, seq int64) bool {
	if seq < 1 {
		return true
	}
	if source < 0 || source >= sources {
		source = sources
	}
	if t.bits == nil {
		t.bits = make([][]uint64, sources+1)
	}
	w, bit := (seq-1)/64, uint64(1)<<((seq-1)%64)
	for int64(len(t.bits[source])) <= w {
		t.bits[source] = append(t.bits[source], 0)
	}
	if t.bits[source][w]&bit != 0 {
		return false
	}
	t.bits[source][w] |= bit
	return true
}

// noteRead takes a raw record's byte position for the estimate.
func (x *execState) noteRead(m wire.Meta) {
	if m.Source < 0 || m.Source >= len(x.req.Sources) {
		return
	}
	if x.srcRecords == nil {
		n := len(x.req.Sources)
		x.srcRecords, x.srcRead, x.srcSize = make([]int64, n), make([]int64, n), make([]int64, n)
	}
	x.srcRecords[m.Source]++
	x.srcRead[m.Source] = max(x.srcRead[m.Source], m.Read)
	x.srcSize[m.Source] = m.Size
}

// estimatedTotal estimates the records of every source from the sources
// begun so far: each source's records scaled by its total bytes over the
// bytes read, a source of unknown size counted as read. Sources not begun
// count nothing, so the estimate can grow when one begins; the feed keeps
// progress from going back. 0 when nothing is known.
func (x *execState) estimatedTotal() int64 {
	var est float64
	known := false
	for i, n := range x.srcRecords {
		if n == 0 {
			continue
		}
		if x.srcSize[i] > 0 && x.srcRead[i] > 0 {
			est += float64(n) * float64(x.srcSize[i]) / float64(x.srcRead[i])
			known = true
		} else {
			est += float64(n)
		}
	}
	if !known {
		return 0
	}
	return max(int64(est+0.5), x.counts.Received)
}

// Review states.
const (
	reviewOpen         = "open"
	reviewAcknowledged = "acknowledged"
)

func newExec(id string, partition int32) *execState {
	return &execState{id: id, partition: partition, stages: map[string]time.Time{}, sources: map[int]bool{}}
}

// acquired reports that acquisition ended with records to count: the
// record stages close once every one has been counted (Received = Total).
func (x *execState) acquired() bool { return x.counts.Total > 0 }

// active reports whether the execution holds a processing slot.
func (x *execState) active() bool { return x.status == statusRunning || x.status == statusFinalizing }

// apply folds one event into the state.
func (x *execState) apply(e *events.Envelope, p events.Payload) {
	switch d := p.(type) {
	case *events.ExecutionRequested:
		x.user, x.req, x.status, x.requestedAt = d.UserID, d.Request, statusRequested, e.Time
		if !d.SubmittedAt.IsZero() {
			x.requestedAt = d.SubmittedAt
		}
		x.perSource = make([]int64, len(d.Request.Sources))
		x.noConsent = make([]int64, len(d.Request.Sources))
	case *events.ExecutionQueued:
		x.status = statusQueued
	case *events.ExecutionStarted:
		x.status, x.startedAt, x.stagedFrom, x.stagedFroms = statusRunning, e.Time, d.StagedOffset, d.StagedOffsets
	case *events.SourceStarted:
		x.sources[d.Source] = true
	case *events.StageStarted:
		x.stages[d.Stage] = e.Time
		if d.Stage == events.StageOutput {
			x.status = statusFinalizing
		}
	case *events.StageProgress:
		x.counts = d.Counts
		if d.Safety != nil {
			x.Safety = d.Safety.Clone()
		}
		if d.Quality != nil {
			x.Quality = d.Quality.Clone()
		}
		if d.Bias != nil {
			x.Bias = d.Bias.Clone()
		}
		if len(d.PerSource) == len(x.perSource) {
			copy(x.perSource, d.PerSource)
		}
		if len(d.NoConsent) == len(x.noConsent) {
			copy(x.noConsent, d.NoConsent)
		}
	case *events.StageCompleted:
		if d.Stage == events.StageAcquisition {
			x.counts.Total = d.Counts.Total
		}
	case *events.ReviewOpened:
		if x.reviews == nil {
			x.reviews = map[int]string{}
		}
		x.reviews[d.Review] = reviewOpen
	case *events.ReviewAcknowledged:
		if x.reviews != nil {
			x.reviews[d.Review] = reviewAcknowledged
		}
	case *events.ExecutionCompleted:
		x.status, x.outputDir = statusDone, d.OutputDir
	case *events.ExecutionFailed, *events.ExecutionCancelled:
		x.status = statusDone
	case *events.ExecutionDataDeleted:
		x.dataDeleted = true
	case *events.OutputRewritten:
		x.outputDir = d.OutputDir
	}
}
