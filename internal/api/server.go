// Package api serves the REST API under /api/v1/datasets and the WebSocket
// feed. It never writes read models: it appends commands to Kafka and reads
// Postgres; the WebSocket feed tails the event topic.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/ops"
	"github.com/dspipe/dspipe/internal/pii"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/wire"
)

// Config is what the API needs.
type Config struct {
	Store    *store.Store
	Producer *kgo.Client // a producing client
	Topics   kafka.Topics
	Tokens   []token
	Hub      *Hub // feeds the WebSocket endpoint
	Log      *slog.Logger
	// OutputRoot is the processors' output root, when this host can see
	// it: a destination that already exists there is refused at
	// submission (the processor refuses it again when it writes).
	OutputRoot string
	// TrustedS3Endpoints are DSPIPE_S3_ENDPOINTS: an S3 source naming
	// another endpoint without credentials of its own is refused.
	TrustedS3Endpoints []string
	// Access takes every audited call (the access audit); nil records
	// none (tests of other things).
	Access AccessRecorder
	// Signer is the audit key; its public half is served to auditors.
	Signer *audit.Signer
	// RecordIDKey keys source-id pseudonyms (DSPIPE_RECORD_ID_KEY), for
	// erasures named by sources' own ids.
	RecordIDKey []byte
	// Ops serves /livez, /readyz and /metrics on the API's address and
	// takes the API's metrics; nil: none.
	Ops *ops.Ops
	// LocalRoots are DSPIPE_LOCAL_ROOTS: a local source outside them is
	// refused at submission (ingest refuses it again when it reads).
	// Empty: not checked here.
	LocalRoots []string
}

// Server is the HTTP API.
type Server struct {
	store       *store.Store
	prod        *kgo.Client
	topics      kafka.Topics
	tokens      []token
	hub         *Hub
	log         *slog.Logger
	outputRoot  string
	localRoots  []string
	ops         *ops.Ops
	httpMetrics *httpMetrics
	trustedS3   []string
	access      AccessRecorder
	signer      *audit.Signer
	recordIDKey []byte
	inflight    sync.WaitGroup

	closing   chan struct{}
	closeOnce sync.Once

	// accepted are the executions this instance accepted in the last
	// acceptedFor (id -> acceptance), so a status or feed request for one
	// the projector has not applied yet waits for it instead of a 404.
	accepted sync.Map
	// learnedCosts are the dataset stages' measured costs (progress.go).
	learnedCosts atomic.Pointer[learnedCosts]
	costsRefresh sync.Mutex
}

// WaitIdle waits until every request, WebSockets included, has finished
// and been recorded, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Close tells open WebSockets to close with StatusGoingAway; call it before
// http.Server.Shutdown, which does not wait for hijacked connections.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// NewServer builds the API.
func NewServer(c Config) *Server {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{store: c.Store, prod: c.Producer, topics: c.Topics, tokens: c.Tokens, hub: c.Hub, log: c.Log,
		outputRoot: c.OutputRoot, localRoots: c.LocalRoots, ops: c.Ops, trustedS3: c.TrustedS3Endpoints, access: c.Access, signer: c.Signer, recordIDKey: c.RecordIDKey, closing: make(chan struct{})}
}

// Handler returns the router.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, s.accessLog)
	if s.ops != nil {
		if s.httpMetrics == nil {
			s.httpMetrics = newHTTPMetrics(s.ops.Registry, s.hub)
		}
		r.Use(s.httpMetrics.middleware)
		s.ops.Handle(r)
	}
	r.Route("/api/v1/datasets", func(r chi.Router) {
		r.Get("/health", s.health)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.With(requireRole(RoleSubmitter, RoleAdmin)).Post("/process", s.process)
			r.Get("/status/{id}", s.status)
			r.Get("/statistics/{id}", s.statistics)
			r.Get("/active", s.active)
			r.Get("/recent", s.recent)
			r.With(requireRole(RoleSubmitter, RoleReviewer, RoleAuditor, RoleAdmin)).Get("/{id}/events", s.auditEvents)
			r.With(requireRole(RoleSubmitter, RoleAdmin)).Post("/{id}/cancel", s.cancel)
			r.With(requireRole(RoleService, RoleAdmin)).Post("/{id}/progress", s.progress)
			r.With(requireRole(RoleSubmitter, RoleAdmin)).Delete("/{id}/data", s.deleteData)
		})
		r.With(s.authenticateWS).Get("/ws/{id}", s.websocket)
	})
	// The review queue: quarantined records waiting for a reviewer.
	r.Route("/api/v1/reviews", func(r chi.Router) {
		r.Use(s.authenticate)
		r.With(requireRole(RoleReviewer, RoleAdmin, RoleAuditor)).Get("/", s.reviews)
		r.With(requireRole(RoleReviewer, RoleAdmin)).Post("/{id}/{review}/acknowledge", s.acknowledge)
	})
	// Erasures of data subjects (admin).
	r.With(s.authenticate, requireRole(RoleAdmin)).Post("/api/v1/erasures", s.erase)
	// The audit trail's key, and the access audit for auditors.
	r.Route("/api/v1/audit", func(r chi.Router) {
		r.Get("/public-key", s.publicKey)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate, requireRole(RoleAuditor, RoleAdmin))
			r.Get("/access", s.accessRecords)
			r.Get("/access/chains", s.accessChain)
		})
	})
	// The API's description, public like the health check (reference.go).
	r.Get("/api/v1/openapi.yaml", s.openAPIYAML)
	r.Get("/api/v1/openapi.json", s.openAPIJSON)
	// The dashboard (dashboard.go).
	r.Get("/", s.dashboardIndex)
	r.Handle("/assets/*", dashboardAssets())
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint; the API lives under /api/v1/datasets, /api/v1/reviews, /api/v1/erasures and /api/v1/audit, the dashboard at /")
	})
	allow := routeMethods(r)
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		allowed := allow(req.URL.Path)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; use %s", req.Method, strings.Join(allowed, " or ")))
	})
	return r
}

// routeMethods lists, for a path, the methods some route serves it with
// (the Allow header of a 405); mounted sub-routers answer every method to
// chi's Match, so the routes are walked instead.
func routeMethods(r chi.Routes) func(path string) []string {
	type route struct {
		re     *regexp.Regexp
		method string
	}
	var routes []route
	param := regexp.MustCompile(`\\\{[^/]+\}`)
	_ = chi.Walk(r, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		p := strings.TrimSuffix(pattern, "/")
		re := "^" + param.ReplaceAllString(regexp.QuoteMeta(p), "[^/]+") + "/?$"
		routes = append(routes, route{regexp.MustCompile(re), method})
		return nil
	})
	return func(path string) []string {
		var out []string
		for _, rt := range routes {
			if rt.re.MatchString(path) && !slices.Contains(out, rt.method) {
				out = append(out, rt.method)
			}
		}
		sort.Strings(out)
		return out
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": msg, "status": code})
}

// NewExecutionID returns a fresh execution id.
func NewExecutionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ds_" + strconv.FormatInt(time.Now().Unix(), 10) + "_" + hex.EncodeToString(b[:])
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]any{"status": "healthy", "postgres": "ok", "kafka": "ok"}
	code := http.StatusOK
	if err := s.store.Ping(ctx); err != nil {
		out["postgres"], out["status"], code = "unreachable", "unhealthy", http.StatusServiceUnavailable
	}
	if err := s.prod.Ping(ctx); err != nil {
		out["kafka"], out["status"], code = "unreachable", "unhealthy", http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

func (s *Server) send(ctx context.Context, c wire.Command) error {
	rec, err := c.Record(s.topics.Commands)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.prod.ProduceSync(ctx, rec).FirstErr()
}

func (s *Server) process(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRequest(r.Body)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}
	env := source.Env{TrustedS3Endpoints: s.trustedS3}
	for i, src := range req.Sources {
		if ep := src.Config["endpoint"]; src.Type == source.TypeS3 && ep != "" && src.Config["access_key_id"] == "" && !env.TrustsS3Endpoint(ep) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sources[%d].config: %v", i, source.ErrEndpointCredentials))
			return
		}
	}
	for i, src := range req.Sources {
		if src.Type != source.TypeLocal || len(s.localRoots) == 0 {
			continue
		}
		if err := source.CheckLocalPath(src.Config["path"], s.localRoots); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sources[%d].config.path: %v (the allowed roots are set by DSPIPE_LOCAL_ROOTS on the server)", i, err))
			return
		}
	}
	p := principalFrom(r.Context())
	if code, msg := s.destinationFree(r.Context(), p, req.Output); code != 0 {
		writeError(w, code, msg)
		return
	}
	id := NewExecutionID()
	noteAccess(r.Context(), func(a *accessInfo) { a.execution = id })
	if err := s.send(r.Context(), wire.Command{Kind: wire.CmdProcess, ExecutionID: id, UserID: p.UserID, Request: &req, SubmittedAt: time.Now().UTC()}); err != nil {
		s.log.Error("api: submit", "execution_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the event log is unavailable; retry shortly")
		return
	}
	// Read your writes: answer once the execution is in the read model, so
	// a GET /status right after the 202 finds it (the projector takes a
	// few hundred milliseconds). Bounded: a slow projector delays the
	// answer by at most submitVisibleWait, never fails it.
	s.accept(id, p.UserID)
	s.waitVisible(r.Context(), id, submitVisibleWait)
	writeJSON(w, http.StatusAccepted, map[string]any{
		"execution_id":  id,
		"status":        "requested",
		"status_url":    "/api/v1/datasets/status/" + id,
		"websocket_url": "/api/v1/datasets/ws/" + id,
	})
}

// submitVisibleWait bounds how long a submission waits for its execution
// to reach the read model; acceptedWait how long a status or feed request
// for an execution this instance accepted waits when the projector lags.
const (
	submitVisibleWait = 3 * time.Second
	acceptedWait      = 15 * time.Second
	acceptedFor       = 10 * time.Minute
)

type acceptance struct {
	user string
	at   time.Time
}

// accept remembers an accepted execution (and forgets old ones).
func (s *Server) accept(id, user string) {
	now := time.Now()
	s.accepted.Range(func(k, v any) bool {
		if now.Sub(v.(acceptance).at) > acceptedFor {
			s.accepted.Delete(k)
		}
		return true
	})
	s.accepted.Store(id, acceptance{user: user, at: now})
}

// awaitAccepted waits (up to acceptedWait) for an execution this instance
// accepted for the caller, or one whose projection it cannot see yet;
// false at once for any other id, so unknown ids cost nothing.
func (s *Server) awaitAccepted(r *http.Request, id string) bool {
	v, ok := s.accepted.Load(id)
	if !ok {
		return false
	}
	if p := principalFrom(r.Context()); !p.seesAll() && v.(acceptance).user != p.UserID {
		return false
	}
	return s.waitVisible(r.Context(), id, acceptedWait)
}

// waitVisible reports when the execution is in the read model, false
// after wait.
func (s *Server) waitVisible(ctx context.Context, id string, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		if _, err := s.store.Execution(ctx, id); err == nil || !errors.Is(err, store.ErrNotFound) {
			return err == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// load fetches an execution the caller may see; it writes the error itself.
func (s *Server) load(w http.ResponseWriter, r *http.Request) (store.Execution, bool) {
	if !checkID(w, chi.URLParam(r, "id")) {
		return store.Execution{}, false
	}
	id := chi.URLParam(r, "id")
	x, err := s.store.Execution(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) && s.awaitAccepted(r, id) {
		x, err = s.store.Execution(r.Context(), id)
	}
	return x, s.visible(w, r, x, err)
}

// visible reports whether the caller may see x (fetched with err), writing
// the 404 or 503 itself when not. Another user's execution is a 404: its
// existence is not disclosed.
func (s *Server) visible(w http.ResponseWriter, r *http.Request, x store.Execution, err error) bool {
	id := chi.URLParam(r, "id")
	p := principalFrom(r.Context())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.seesAll() && x.UserID != p.UserID) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("execution %q not found (a new execution appears within a second of being submitted)", id))
		return false
	}
	if err != nil {
		s.log.Error("api: load execution", "execution_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return false
	}
	return true
}

// StatusResponse is GET /status's body (Status in docs/openapi.yaml).
type StatusResponse struct {
	ExecutionID         string           `json:"execution_id"`
	UserID              string           `json:"user_id"`
	Status              string           `json:"status"`
	CurrentStage        string           `json:"current_stage"`
	OverallProgress     float64          `json:"overall_progress"`
	StagesCompleted     []string         `json:"stages_completed"`
	Stages              []store.StageRun `json:"stages"`
	RecordsProcessed    int64            `json:"records_processed"`
	TotalRecords        int64            `json:"total_records"`
	ValidRecords        int64            `json:"valid_records"`
	RejectedRecords     int64            `json:"rejected_records"`
	ProcessingRate      float64          `json:"processing_rate"`
	EstimatedCompletion *time.Time       `json:"estimated_completion,omitempty"`
	Error               string           `json:"error,omitempty"`
	ErrorCategory       string           `json:"error_category,omitempty"`
	OutputDir           string           `json:"output_dir,omitempty"`
	LastSeq             int64            `json:"last_seq"`
	CreatedAt           time.Time        `json:"created_at"`
	StartedAt           *time.Time       `json:"started_at,omitempty"`
	FinishedAt          *time.Time       `json:"finished_at,omitempty"`
	DataDeletedAt       *time.Time       `json:"data_deleted_at,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if !checkID(w, chi.URLParam(r, "id")) {
		return
	}
	id := chi.URLParam(r, "id")
	x, stages, err := s.store.ExecutionWithStages(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) && s.awaitAccepted(r, id) {
		x, stages, err = s.store.ExecutionWithStages(r.Context(), id)
	}
	if !s.visible(w, r, x, err) {
		return
	}
	pct, stage, eta := figures(x, stages, s.costs(), time.Now())
	resp := StatusResponse{ExecutionID: x.ID, UserID: x.UserID, Status: x.Status, CurrentStage: stage, EstimatedCompletion: eta,
		OverallProgress: pct, StagesCompleted: []string{}, Stages: stages, RecordsProcessed: x.Received,
		TotalRecords: x.Total, ValidRecords: x.Valid, RejectedRecords: x.Rejected, ProcessingRate: x.RatePerSec,
		Error: x.ErrorReason, ErrorCategory: x.ErrorCategory, OutputDir: x.OutputDir, LastSeq: x.LastSeq,
		CreatedAt: x.CreatedAt, StartedAt: x.StartedAt, FinishedAt: x.FinishedAt, DataDeletedAt: x.DataDeletedAt}
	for _, st := range stages {
		if st.Status == "completed" {
			resp.StagesCompleted = append(resp.StagesCompleted, st.Stage)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) statistics(w http.ResponseWriter, r *http.Request) {
	x, ok := s.load(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	stages, err1 := s.store.Stages(ctx, x.ID)
	sources, err2 := s.store.Sources(ctx, x.ID)
	files, err3 := s.store.OutputFiles(ctx, x.ID)
	alerts, err4 := s.store.Alerts(ctx, x.ID)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		s.log.Error("api: statistics", "execution_id", x.ID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	var durationMS int64
	if x.StartedAt != nil && x.FinishedAt != nil {
		durationMS = x.FinishedAt.Sub(*x.StartedAt).Milliseconds()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"execution_id": x.ID,
		"status":       x.Status,
		"records": map[string]int64{
			"total": x.Total, "processed": x.Received, "valid": x.Valid, "rejected": x.Rejected,
		},
		"processing_rate": x.RatePerSec,
		"duration_ms":     durationMS,
		"stages":          stages,
		"sources":         sources,
		"output_files":    files,
		"output_dir":      x.OutputDir,
		"data_deleted_at": x.DataDeletedAt,
		"alerts":          alerts,
		"safety":          safetyReport(x.Safety, x.Received),
		"quality":         rawOrNil(x.Quality),
		"bias":            rawOrNil(x.Bias),
		"fusion":          rawOrNil(x.Fusion),
		"balancing":       rawOrNil(x.Balancing),
		// Null when the stage did not run: no invented scores.
		"quality_score": qualityScore(x.Quality),
		"bias_score":    biasScore(x.Bias),
	})
}

func (s *Server) active(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	user := p.UserID
	if p.seesAll() {
		user = ""
	}
	xs, err := s.store.Active(r.Context(), user)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	out, c := make([]map[string]any, 0, len(xs)), s.costs()
	for _, x := range xs {
		pct, stage, _ := figures(x, nil, c, time.Now())
		out = append(out, map[string]any{"execution_id": x.ID, "user_id": x.UserID, "status": x.Status,
			"current_stage": stage, "overall_progress": pct, "created_at": x.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"executions": out, "count": len(out)})
}

// recent lists the caller's latest executions, newest first, whatever
// their status (an admin, reviewer or auditor sees everyone's).
func (s *Server) recent(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 200")
			return
		}
		limit = n
	}
	p := principalFrom(r.Context())
	user := p.UserID
	if p.seesAll() {
		user = ""
	}
	xs, err := s.store.Recent(r.Context(), user, limit)
	if err != nil {
		s.log.Error("api: recent", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	out, c := make([]map[string]any, 0, len(xs)), s.costs()
	for _, x := range xs {
		pct, stage, _ := figures(x, nil, c, time.Now())
		out = append(out, map[string]any{"execution_id": x.ID, "user_id": x.UserID, "status": x.Status,
			"current_stage": stage, "overall_progress": pct, "created_at": x.CreatedAt, "finished_at": x.FinishedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"executions": out, "count": len(out)})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	x, ok := s.load(w, r)
	if !ok {
		return
	}
	if finished(x.Status) {
		writeError(w, http.StatusConflict, fmt.Sprintf("execution is already %s", x.Status))
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if code, err := readJSON(r.Body, 4096, &body, true); err != nil {
		writeError(w, code, "body must be empty or {\"reason\": \"why\"} (at most 4096 bytes): "+err.Error())
		return
	}
	if hasControl(body.Reason) {
		writeError(w, http.StatusBadRequest, "reason must not contain control characters")
		return
	}
	p := principalFrom(r.Context())
	reason, _ := maskIdentifiers(truncate(body.Reason, 200))
	s.sendAccepted(w, r, wire.Command{Kind: wire.CmdCancel, ExecutionID: x.ID, UserID: p.UserID, Reason: reason},
		map[string]any{"execution_id": x.ID, "status": "cancelling"})
}

// deleteData carries out the right to deletion for a finished execution:
// its outputs are deleted and its data key destroyed, so its records on
// Kafka become ciphertext no key opens; the trail records it and stays
// verifiable. The body must confirm the id: {"confirm": "<execution id>"}.
func (s *Server) deleteData(w http.ResponseWriter, r *http.Request) {
	x, ok := s.load(w, r)
	if !ok {
		return
	}
	var body struct {
		Confirm string `json:"confirm"`
	}
	if code, err := readJSON(r.Body, 4096, &body, false); err != nil {
		writeError(w, code, "body must be {\"confirm\": \"<execution id>\"}: "+err.Error())
		return
	}
	if body.Confirm != x.ID {
		writeError(w, http.StatusBadRequest, "deleting an execution's data cannot be undone: confirm with {\"confirm\": \""+x.ID+"\"}")
		return
	}
	switch {
	case x.DataDeletedAt != nil:
		writeError(w, http.StatusConflict, "the execution's data is already deleted")
		return
	case !finished(x.Status):
		writeError(w, http.StatusConflict, fmt.Sprintf("execution is %s: cancel it first, then delete its data", x.Status))
		return
	}
	p := principalFrom(r.Context())
	s.sendAccepted(w, r, wire.Command{Kind: wire.CmdDeleteData, ExecutionID: x.ID, UserID: p.UserID},
		map[string]any{"execution_id": x.ID, "status": "deleting"})
}

func (s *Server) progress(w http.ResponseWriter, r *http.Request) {
	x, ok := s.load(w, r)
	if !ok {
		return
	}
	var body struct {
		Stage   string  `json:"stage"`
		Percent float64 `json:"percent"`
		Message string  `json:"message"`
	}
	if code, err := readJSON(r.Body, 4096, &body, false); err != nil {
		writeError(w, code, "body must be {\"stage\": string, \"percent\": 0..100, \"message\": string}: "+err.Error())
		return
	}
	if hasControl(body.Stage) || hasControl(body.Message) {
		writeError(w, http.StatusBadRequest, "stage and message must not contain control characters")
		return
	}
	if body.Percent < 0 || body.Percent > 100 {
		writeError(w, http.StatusBadRequest, "percent must be between 0 and 100")
		return
	}
	p := principalFrom(r.Context())
	s.sendAccepted(w, r, wire.Command{Kind: wire.CmdProgress, ExecutionID: x.ID, UserID: p.UserID,
		Stage: truncate(body.Stage, 64), Percent: body.Percent, Message: first(maskIdentifiers(truncate(body.Message, 200)))},
		map[string]any{"execution_id": x.ID, "accepted": true})
}

// sendAccepted appends a command to the log and answers 202 with body, or
// 503 when the log cannot take it.
func (s *Server) sendAccepted(w http.ResponseWriter, r *http.Request, c wire.Command, body map[string]any) {
	if err := s.send(r.Context(), c); err != nil {
		writeError(w, http.StatusServiceUnavailable, "the event log is unavailable; retry shortly")
		return
	}
	writeJSON(w, http.StatusAccepted, body)
}

// finished reports whether an execution status is terminal.
func finished(status string) bool {
	return status == "completed" || status == "failed" || status == "cancelled"
}

// maskIdentifiers masks personal identifiers in free text a user sends
// (review notes, cancel reasons, progress messages) before it enters the
// audit trail, with type tags such as [EMAIL]; it returns how many.
func maskIdentifiers(text string) (string, int) {
	spans := pii.Detect(text)
	if len(spans) == 0 {
		return text, 0
	}
	return pii.NewMasker(pii.MaskTag, nil).Mask(text, spans), len(spans)
}

func first[T any](v T, _ int) T { return v }

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func rawOrNil(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

// qualityScore is the mean quality score, or nil when the stage did not run.
func qualityScore(raw json.RawMessage) any {
	var q events.QualitySummary
	if len(raw) == 0 || json.Unmarshal(raw, &q) != nil || q.Scored == 0 {
		return nil
	}
	return q.Mean
}

// biasScore is the bias score, or nil when the stage did not run.
func biasScore(raw json.RawMessage) any {
	var b events.BiasSummary
	if len(raw) == 0 || json.Unmarshal(raw, &b) != nil {
		return nil
	}
	return b.Score
}

// safetyReport is the safety stage's summary with its rates, or null when
// the stage did not run.
func safetyReport(raw json.RawMessage, received int64) any {
	if len(raw) == 0 {
		return nil
	}
	var s events.SafetySummary
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return safetyFigures(&s, received)
}

// safetyFigures are the per-dataset safety rates the statistics and the
// live feed report.
func safetyFigures(s *events.SafetySummary, received int64) map[string]any {
	var found int64
	for _, n := range s.PII {
		found += n
	}
	rate := func(n int64) float64 {
		if received == 0 {
			return 0
		}
		return float64(n) / float64(received)
	}
	return map[string]any{
		"pii_found": found, "pii_by_type": s.PII, "records_with_pii": s.RecordsWithPII, "pii_record_rate": rate(s.RecordsWithPII),
		"crisis_levels": s.Crisis, "quarantined": s.Quarantined, "quarantine_rate": rate(s.Quarantined),
		"content_flagged": s.Content, "review_flags": s.Flags, "blocked": s.Blocked,
	}
}

// reviews lists the review queue: ?status=open (default), acknowledged or
// all; ?execution_id=; ?limit= (1..1000, default 100). Entries say where a
// record is and why it was quarantined, never its text.
func (s *Server) reviews(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", "open":
		status = "open"
	case "acknowledged":
	case "all":
		status = ""
	default:
		writeError(w, http.StatusBadRequest, "status must be open, acknowledged or all")
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 1000")
			return
		}
		limit = n
	}
	exec := q.Get("execution_id")
	if utf8.RuneCountInString(exec) > 200 || hasControl(exec) {
		writeError(w, http.StatusBadRequest, "execution_id is not a valid execution id")
		return
	}
	list, err := s.store.Reviews(r.Context(), status, exec, limit)
	if err != nil {
		s.log.Error("api: reviews", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reviews": list, "count": len(list)})
}

// acknowledge closes a review with the reviewer's note. The note becomes
// part of the audit trail: it must describe the decision, not the person.
func (s *Server) acknowledge(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !checkID(w, id) {
		return
	}
	n, err := strconv.Atoi(chi.URLParam(r, "review"))
	if err != nil || n < 1 || n > math.MaxInt32 {
		writeError(w, http.StatusBadRequest, "review must be a positive integer")
		return
	}
	var body struct {
		Note string `json:"note"`
	}
	if code, err := readJSON(r.Body, 8192, &body, false); err != nil || strings.TrimSpace(body.Note) == "" {
		if err == nil {
			code = http.StatusBadRequest
		}
		writeError(w, code, "body must be {\"note\": \"what was decided\"} with a non-empty note (at most 1000 characters)")
		return
	}
	if utf8.RuneCountInString(body.Note) > 1000 || hasControl(strings.ReplaceAll(body.Note, "\n", "")) {
		writeError(w, http.StatusBadRequest, "note must be at most 1000 characters without control characters")
		return
	}
	rv, err := s.store.GetReview(r.Context(), id, n)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such review")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
		return
	case rv.Status != "open":
		writeError(w, http.StatusConflict, "review is already acknowledged")
		return
	}
	p := principalFrom(r.Context())
	// The note enters the permanent audit trail: identifiers in it are
	// masked like record text, and the reviewer sees what was kept.
	note, masked := maskIdentifiers(body.Note)
	s.sendAccepted(w, r, wire.Command{Kind: wire.CmdAckReview, ExecutionID: id, UserID: p.UserID, Review: n, Message: note},
		map[string]any{"execution_id": id, "review": n, "status": "acknowledging", "note": note, "identifiers_masked": masked})
}
