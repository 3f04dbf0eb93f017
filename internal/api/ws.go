package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/store"
)

// Message is one WebSocket message, as docs/openapi.yaml describes it, with
// the event's seq (for resuming with ?since=) and its type.
type Message struct {
	EventType   string         `json:"event_type"`
	ExecutionID string         `json:"execution_id"`
	UserID      string         `json:"user_id"`
	Seq         uint64         `json:"seq"`
	Event       string         `json:"event"`
	Data        map[string]any `json:"data"`
	Timestamp   time.Time      `json:"timestamp"`
}

// Terminal reports whether the message ends the execution's feed.
func (m Message) Terminal() bool { return events.Terminal(m.Event) }

// feed turns events into messages, carrying the running figures the
// progress message needs.
type feed struct {
	x        store.Execution
	counts   events.Counts
	estimate int64   // the processor's estimate of the total while acquisition runs
	shown    float64 // the highest overall_progress sent: progress never goes back
	rate     float64
	// started and datasetStart are when the record stages and the dataset
	// stages began (progress.go); fusion says whether fusion or balancing
	// runs, known for sure once the dataset stages start.
	started, datasetStart time.Time
	fusion                bool
	costs                 costs
	memory                float64
	stage                 string
	safety                *events.SafetySummary
	quality               *events.QualitySummary
	bias                  *events.BiasSummary
}

func newFeed(x store.Execution, c costs) *feed {
	f := &feed{x: x, fusion: fusionRequested(x.Request), costs: c}
	if x.StartedAt != nil {
		f.started = *x.StartedAt
	}
	return f
}

func (f *feed) message(e events.Envelope) (Message, error) {
	p, err := events.Parse(e)
	if err != nil {
		return Message{}, err
	}
	m := Message{EventType: "dataset_progress", ExecutionID: e.Subject, UserID: f.x.UserID, Seq: e.Seq, Event: e.Type, Timestamp: e.Time}
	f.observe(p, e)
	if typ, data := statusMessage(p, e.Type); typ != "" {
		m.EventType, m.Data = typ, data
		return m, nil
	}
	m.Data = f.progress(e)
	if pr, ok := p.(*events.ProgressReported); ok {
		m.Data["overall_progress"], m.Data["message"] = pr.Percent, pr.Message
	}
	return m, nil
}

// statusMessage is the message of an event that is not progress: a
// status change, an alert, a review, a signed checkpoint ("" otherwise).
func statusMessage(p events.Payload, typ string) (string, map[string]any) {
	switch d := p.(type) {
	case *events.ExecutionRequested:
		return "dataset_status", map[string]any{"status": "requested"}
	case *events.ExecutionQueued:
		return "dataset_status", map[string]any{"status": "queued", "active": d.Active, "limit": d.Limit}
	case *events.ExecutionStarted:
		return "dataset_status", map[string]any{"status": "running"}
	case *events.ExecutionCompleted:
		return "dataset_status", map[string]any{"status": "completed", "overall_progress": 100.0,
			"stages_completed": d.StagesRun, "output_dir": d.OutputDir, "files": d.Files,
			"metrics": map[string]any{"records_processed": d.Counts.Received, "total_records": d.Counts.Total,
				"valid_records": d.Counts.Valid, "rejected_records": d.Counts.Rejected}}
	case *events.ExecutionFailed:
		return "dataset_status", map[string]any{"status": "failed", "stage": d.Stage, "error": d.Reason, "error_category": d.Category}
	case *events.ExecutionCancelled:
		return "dataset_status", map[string]any{"status": "cancelled", "reason": d.Reason}
	case *events.StageFailed:
		return "dataset_status", map[string]any{"status": "stage_failed", "stage": d.Stage, "error": d.Reason, "error_category": d.Category}
	case *events.OutputRewritten:
		return "dataset_status", map[string]any{"status": "output_rewritten", "removed": d.Removed, "output_dir": d.OutputDir}
	case *events.ExecutionDataDeleted:
		return "dataset_status", map[string]any{"status": "data_deleted", "files_deleted": d.FilesDeleted}
	case *events.Seal:
		// Signed checkpoints keep the feed gap-free; dashboards may ignore them.
		return "dataset_audit", map[string]any{"checkpoint_seq": d.Seq, "hash": d.Hash, "key_id": d.KeyID, "final": typ == events.TypeExecutionSealed}
	case *events.Alert:
		return "dataset_alert", map[string]any{"severity": d.Severity, "code": d.Code, "message": d.Message, "stage": d.Stage}
	case *events.ReviewOpened:
		// A record held for a reviewer: its own message type, not a
		// progress message with every figure zeroed.
		return "dataset_review", map[string]any{"review": d.Review, "status": "open", "record_id": d.RecordID,
			"source": d.Source, "position": d.Position, "flags": d.Flags, "crisis_level": d.CrisisLevel, "score": d.Score}
	case *events.ReviewAcknowledged:
		return "dataset_review", map[string]any{"review": d.Review, "status": "acknowledged", "by": d.By}
	}
	return "", nil
}

// observe takes the running figures from an event.
func (f *feed) observe(p events.Payload, e events.Envelope) {
	switch d := p.(type) {
	case *events.ExecutionStarted:
		f.started = e.Time
	case *events.ExecutionCompleted:
		f.counts = d.Counts
	case *events.StageStarted:
		// Record stages all start with the first record; the stage a user
		// would name comes with the progress events.
		if f.stage == "" || !events.RecordStage(d.Stage) {
			f.stage = d.Stage
		}
		if datasetStage(d.Stage) && f.datasetStart.IsZero() {
			// Fusion and balancing, when they run, start first.
			f.datasetStart, f.fusion = e.Time, d.Stage != events.StageOutput
		}
	case *events.StageCompleted:
		if d.Stage == events.StageAcquisition {
			f.counts.Total = d.Counts.Total
		}
		f.summaries(d.Safety, d.Quality, d.Bias)
	case *events.StageProgress:
		f.counts, f.rate, f.memory = d.Counts, d.RatePerSec, d.MemoryMB
		if d.EstimatedTotal > 0 {
			f.estimate = d.EstimatedTotal
		}
		// While sources are read the stage a user names is acquisition;
		// after it, the record stage still catching up.
		if d.Stage != "" && f.counts.Total > 0 && (f.stage == "" || events.RecordStage(f.stage)) {
			f.stage = d.Stage
		}
		f.summaries(d.Safety, d.Quality, d.Bias)
	}
}

func (f *feed) summaries(s *events.SafetySummary, q *events.QualitySummary, b *events.BiasSummary) {
	if s != nil {
		f.safety = s
	}
	if q != nil {
		f.quality = q
	}
	if b != nil {
		f.bias = b
	}
}

func (f *feed) progress(e events.Envelope) map[string]any {
	p := progress{received: f.counts.Received, total: f.counts.Total, estimate: f.estimate, rate: f.rate, at: e.Time,
		started: f.started, datasetStart: f.datasetStart, fusion: f.fusion, costs: f.costs}
	// Progress never goes back when the estimate is corrected.
	overall := math.Max(p.percent(e.Time), f.shown)
	f.shown = overall
	stage := f.stage
	if stage == "" {
		stage = events.StageAcquisition
	}
	stage = p.stage(e.Time, stage)
	d := map[string]any{
		"overall_progress": overall,
		"current_stage":    stage,
		// Null until the stage has figures: no invented scores.
		"quality_score": nil,
		"bias_score":    nil,
		"metrics": map[string]any{
			"records_processed": f.counts.Received,
			"total_records":     f.counts.Total,
			"valid_records":     f.counts.Valid,
			"rejected_records":  f.counts.Rejected,
			"processing_rate":   f.rate,
			"memory_usage_mb":   f.memory,
		},
	}
	if f.safety != nil {
		d["safety"] = safetyFigures(f.safety, f.counts.Received)
	}
	if f.quality != nil && f.quality.Scored > 0 {
		d["quality_score"] = f.quality.Mean
		d["quality"] = map[string]any{"histogram": f.quality.Histogram, "rejected": f.quality.Rejected, "failed": f.quality.Failed,
			"min_score": f.quality.MinScore}
	}
	if f.bias != nil {
		d["bias_score"] = f.bias.Score
		d["bias"] = map[string]any{"axis": f.bias.Axis, "distances": f.bias.Distances, "groups": f.bias.Groups, "negative": f.bias.Negative}
	}
	if eta, ok := p.eta(e.Time); ok {
		d["estimated_completion"] = eta
	}
	return d
}

// websocket streams an execution's events: first every event after ?since=
// from the audit table, then live events from the hub, gap-free and without
// duplicates; it closes after the terminal event.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	x, ok := s.load(w, r)
	if !ok {
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, "this endpoint is a WebSocket feed: connect with a WebSocket client (Upgrade: websocket)")
		return
	}
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be a non-negative integer event seq")
			return
		}
		since = n
	}
	sub, recent, head, err := s.hub.subscribe(x.ID, principalFrom(r.Context()).UserID)
	if err != nil {
		writeError(w, http.StatusTooManyRequests, err.Error()+"; close a feed you no longer read (the operator sets the cap with DSPIPE_WS_FEEDS_PER_USER)")
		return
	}
	defer s.hub.unsubscribe(x.ID, sub)
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	// Until the projector has applied what was in the topic when the hub
	// started, Postgres may lack events the hub never saw.
	select {
	case <-s.hub.ready:
	case <-ctx.Done():
		return
	case <-s.closing:
		c.Close(websocket.StatusGoingAway, "server shutting down; reconnect with ?since=<last seq>")
		return
	}
	err = s.stream(ctx, c, sub, recent, head, newFeed(x, s.costs()), since)
	s.log.Debug("api: websocket closed", "execution_id", x.ID, "err", err)
	switch {
	case errors.Is(err, errDone):
		c.Close(websocket.StatusNormalClosure, "execution finished")
	case errors.Is(err, errSlow):
		c.Close(websocket.StatusPolicyViolation, "client too slow; reconnect with ?since=<last seq>")
	case errors.Is(err, errShutdown):
		c.Close(websocket.StatusGoingAway, "server shutting down; reconnect with ?since=<last seq>")
	case err != nil && ctx.Err() == nil:
		s.log.Warn("api: websocket", "execution_id", x.ID, "err", err)
		c.Close(websocket.StatusInternalError, "feed interrupted; reconnect with ?since=<last seq>")
	}
}

// feedWriteTimeout is how long a WebSocket client may go without reading
// before its feed is closed; it resumes with ?since=<last seq>.
const feedWriteTimeout = 10 * time.Second

var (
	errDone     = errors.New("execution finished")
	errSlow     = errors.New("subscriber too slow")
	errShutdown = errors.New("shutting down")
)

// stream sends every event after last in seq order: those older than the
// hub's memory from Postgres, then the hub's recent events, then live ones.
// It asks Postgres only for what the hub no longer holds, and waits for the
// projector only when the hub has seen a seq that Postgres lacks.
func (s *Server) stream(ctx context.Context, c *websocket.Conn, sub *subscriber, recent []hubEvent, head uint64, f *feed, last uint64) error {
	fs := &feedStream{s: s, c: c, f: f, last: last}
	if err := fs.catchUp(ctx, recent, head); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return errShutdown
		case <-sub.dropped:
			return errSlow
		case <-sub.lagged:
			// Live events passed while this client was behind: send
			// them from Postgres, in order, up to the hub's head.
			if err := fs.fill(ctx, s.hub.Head(f.x.ID)); err != nil {
				return err
			}
		case ev := <-sub.ch:
			if ev.env.Seq <= fs.last {
				continue
			}
			if err := fs.fill(ctx, ev.env.Seq-1); err != nil {
				return err
			}
			if err := fs.send(ctx, ev.env); err != nil {
				return err
			}
		}
	}
}

// feedStream is one connection's position in its execution's events: last
// is the seq of the last event sent.
type feedStream struct {
	s    *Server
	c    *websocket.Conn
	f    *feed
	last uint64
}

// catchUp sends what happened before the subscription: from Postgres what
// the hub no longer holds, then the hub's recent events, then up to head.
func (fs *feedStream) catchUp(ctx context.Context, recent []hubEvent, head uint64) error {
	switch {
	case len(recent) == 0:
		// The hub has seen nothing of this execution since it started:
		// Postgres holds all of it.
		if err := fs.fromStore(ctx, 0); err != nil {
			return err
		}
	case recent[0].env.Seq > fs.last+1:
		if err := fs.fill(ctx, recent[0].env.Seq-1); err != nil {
			return err
		}
	}
	for _, ev := range recent {
		if ev.env.Seq <= fs.last {
			continue
		}
		if err := fs.send(ctx, ev.env); err != nil {
			return err
		}
	}
	return fs.fill(ctx, head)
}

// send writes one event's message; errDone after the terminal event.
func (fs *feedStream) send(ctx context.Context, e events.Envelope) error {
	m, err := fs.f.message(e)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, feedWriteTimeout)
	defer cancel()
	if err := wsjson.Write(wctx, fs.c, m); err != nil {
		return err
	}
	fs.last = e.Seq
	if events.Terminal(e.Type) {
		return errDone
	}
	return nil
}

// fromStore sends the audited events after last, up to and including upTo
// (0: all there are).
func (fs *feedStream) fromStore(ctx context.Context, upTo uint64) error {
	for {
		raws, err := fs.s.store.EventsSince(ctx, fs.f.x.ID, fs.last, 500)
		if err != nil {
			return err
		}
		for _, b := range raws {
			e, err := events.Decode(b)
			if err != nil {
				return err
			}
			if upTo > 0 && e.Seq > upTo {
				return nil
			}
			if err := fs.send(ctx, e); err != nil {
				return err
			}
		}
		if len(raws) < 500 {
			return nil
		}
	}
}

// fill sends every event up to upTo, waiting (up to 15 s) for the
// projector to apply those the hub no longer holds.
func (fs *feedStream) fill(ctx context.Context, upTo uint64) error {
	deadline := time.Now().Add(15 * time.Second)
	for fs.last < upTo {
		if err := fs.fromStore(ctx, upTo); err != nil || fs.last >= upTo {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("events %d..%d not yet projected", fs.last+1, upTo)
		}
		if err := clock.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
