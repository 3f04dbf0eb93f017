package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dspipe/dspipe/events"
)

// Execution is the executions read model.
type Execution struct {
	ID              string          `json:"execution_id"`
	UserID          string          `json:"user_id"`
	Status          string          `json:"status"`
	CurrentStage    string          `json:"current_stage"`
	Request         json.RawMessage `json:"-"`
	Received        int64           `json:"received"`
	Valid           int64           `json:"valid"`
	Rejected        int64           `json:"rejected"`
	Total           int64           `json:"total"`
	RatePerSec      float64         `json:"processing_rate"`
	ReportedPercent *float64        `json:"reported_percent,omitempty"`
	// EstimatedTotal is the processor's estimate of the records while
	// acquisition runs (0: none).
	EstimatedTotal int64      `json:"estimated_total,omitempty"`
	ErrorReason    string     `json:"error,omitempty"`
	ErrorCategory  string     `json:"error_category,omitempty"`
	OutputDir      string     `json:"output_dir,omitempty"`
	LastSeq        int64      `json:"last_seq"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// Safety is the safety stage's summary (events.SafetySummary), when it ran.
	Safety json.RawMessage `json:"-"`
	// Quality and Bias are those stages' summaries (events.QualitySummary,
	// events.BiasSummary), when they ran.
	Quality json.RawMessage `json:"-"`
	Bias    json.RawMessage `json:"-"`
	// Fusion is the fusion stage's summary (events.FusionSummary).
	Fusion json.RawMessage `json:"-"`
	// Balancing is the balancing stage's summary (events.BalancingSummary).
	Balancing json.RawMessage `json:"-"`
	// DataDeletedAt is when the execution's data was deleted (outputs
	// removed, data key destroyed), nil while it exists.
	DataDeletedAt *time.Time `json:"data_deleted_at,omitempty"`
}

// StageRun is one stage of an execution.
type StageRun struct {
	Stage       string     `json:"stage"`
	Status      string     `json:"status"`
	Received    int64      `json:"received"`
	Valid       int64      `json:"valid"`
	Rejected    int64      `json:"rejected"`
	DurationMS  int64      `json:"duration_ms"`
	ErrorReason string     `json:"error,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// SourceRun is one source of an execution.
type SourceRun struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	Kind        string `json:"type"`
	Status      string `json:"status"`
	Records     int64  `json:"records"`
	Output      int64  `json:"valid_records"`
	Bytes       int64  `json:"bytes"`
	ErrorReason string `json:"error,omitempty"`
	// NoConsent counts the records rejected for want of consent.
	NoConsent int64 `json:"no_consent"`
}

// OutputFile is one file written by the output stage.
type OutputFile = events.OutputFile

// Alert is one alert raised during an execution.
type Alert struct {
	Seq       int64     `json:"seq"`
	Severity  string    `json:"severity"`
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	Stage     string    `json:"stage,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

const executionCols = `execution_id, user_id, status, current_stage, request, received, valid, rejected, total, rate_per_sec,
	reported_percent, error_reason, error_category, output_dir, last_seq, created_at, started_at, finished_at, updated_at, safety, quality, bias, fusion, balancing, data_deleted_at,
	estimated_total`

func scanExecution(row pgx.Row) (Execution, error) {
	var x Execution
	err := row.Scan(&x.ID, &x.UserID, &x.Status, &x.CurrentStage, &x.Request, &x.Received, &x.Valid, &x.Rejected, &x.Total,
		&x.RatePerSec, &x.ReportedPercent, &x.ErrorReason, &x.ErrorCategory, &x.OutputDir, &x.LastSeq, &x.CreatedAt,
		&x.StartedAt, &x.FinishedAt, &x.UpdatedAt, &x.Safety, &x.Quality, &x.Bias, &x.Fusion, &x.Balancing, &x.DataDeletedAt,
		&x.EstimatedTotal)
	if errors.Is(err, pgx.ErrNoRows) {
		return x, ErrNotFound
	}
	return x, err
}

// Execution returns one execution.
func (s *Store) Execution(ctx context.Context, id string) (Execution, error) {
	x, err := readAgain(ctx, s, func() (Execution, error) {
		return scanExecution(s.pool.QueryRow(ctx, `SELECT `+executionCols+` FROM executions WHERE execution_id=$1`, id))
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return x, fmt.Errorf("store: execution: %w", err)
	}
	return x, err
}

// Recent lists the latest executions, newest first; userID "" means
// every user's.
func (s *Store) Recent(ctx context.Context, userID string, limit int) ([]Execution, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+executionCols+` FROM executions
		WHERE ($1 = '' OR user_id = $1) ORDER BY created_at DESC, execution_id LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Execution, error) { return scanExecution(r) })
	if err != nil {
		return nil, fmt.Errorf("store: recent: %w", err)
	}
	return out, nil
}

// Active lists executions not yet finished; userID "" means every user's.
func (s *Store) Active(ctx context.Context, userID string) ([]Execution, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+executionCols+` FROM executions
		WHERE status IN ('requested','queued','running') AND ($1 = '' OR user_id = $1) ORDER BY created_at LIMIT 1000`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: active: %w", err)
	}
	defer rows.Close()
	out := []Execution{}
	for rows.Next() {
		x, err := scanExecution(rows)
		if err != nil {
			return nil, fmt.Errorf("store: active: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

const stagesQuery = `SELECT stage, status, received, valid, rejected, duration_ms, error_reason, started_at, finished_at
	FROM stage_runs WHERE execution_id=$1 ORDER BY ordinal`

func scanStage(r pgx.CollectableRow) (StageRun, error) {
	var st StageRun
	err := r.Scan(&st.Stage, &st.Status, &st.Received, &st.Valid, &st.Rejected, &st.DurationMS, &st.ErrorReason, &st.StartedAt, &st.FinishedAt)
	return st, err
}

// Stages lists an execution's stage runs in the order they started.
func (s *Store) Stages(ctx context.Context, id string) ([]StageRun, error) {
	rows, err := s.pool.Query(ctx, stagesQuery, id)
	if err != nil {
		return nil, fmt.Errorf("store: stages: %w", err)
	}
	return pgx.CollectRows(rows, scanStage)
}

// ExecutionWithStages returns an execution and its stage runs in one round
// trip (the status endpoint's hot path).
func (s *Store) ExecutionWithStages(ctx context.Context, id string) (Execution, []StageRun, error) {
	var b pgx.Batch
	var x Execution
	var stages []StageRun
	var xErr, sErr error
	b.Queue(`SELECT `+executionCols+` FROM executions WHERE execution_id=$1`, id).QueryRow(func(row pgx.Row) error {
		x, xErr = scanExecution(row)
		return nil
	})
	b.Queue(stagesQuery, id).Query(func(rows pgx.Rows) error {
		stages, sErr = pgx.CollectRows(rows, scanStage)
		return nil
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return x, nil, fmt.Errorf("store: status: %w", err)
	}
	if xErr != nil {
		if errors.Is(xErr, ErrNotFound) {
			return x, nil, xErr
		}
		return x, nil, fmt.Errorf("store: status: %w", xErr)
	}
	if sErr != nil {
		return x, nil, fmt.Errorf("store: status: %w", sErr)
	}
	return x, stages, nil
}

// Sources lists an execution's sources.
func (s *Store) Sources(ctx context.Context, id string) ([]SourceRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT source_index, name, kind, status, records, output, bytes, error_reason, no_consent
		FROM source_runs WHERE execution_id=$1 ORDER BY source_index`, id)
	if err != nil {
		return nil, fmt.Errorf("store: sources: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceRun, error) {
		var sr SourceRun
		err := r.Scan(&sr.Index, &sr.Name, &sr.Kind, &sr.Status, &sr.Records, &sr.Output, &sr.Bytes, &sr.ErrorReason, &sr.NoConsent)
		return sr, err
	})
}

// OutputFiles lists the files an execution wrote.
func (s *Store) OutputFiles(ctx context.Context, id string) ([]OutputFile, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, records, bytes, sha256 FROM output_files WHERE execution_id=$1 ORDER BY name`, id)
	if err != nil {
		return nil, fmt.Errorf("store: output files: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutputFile, error) {
		var f OutputFile
		err := r.Scan(&f.Name, &f.Records, &f.Bytes, &f.SHA256)
		return f, err
	})
}

// Alerts lists an execution's alerts.
func (s *Store) Alerts(ctx context.Context, id string) ([]Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, severity, code, message, stage, created_at FROM alerts WHERE execution_id=$1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("store: alerts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) {
		var a Alert
		err := r.Scan(&a.Seq, &a.Severity, &a.Code, &a.Message, &a.Stage, &a.CreatedAt)
		return a, err
	})
}

// EventsSince returns up to limit audited events of an execution with seq
// greater than since, in order, byte for byte as published.
func (s *Store) EventsSince(ctx context.Context, id string, since uint64, limit int) ([][]byte, error) {
	out, err := readAgain(ctx, s, func() ([][]byte, error) {
		rows, err := s.pool.Query(ctx, `SELECT envelope FROM audit_events WHERE execution_id=$1 AND seq > $2 ORDER BY seq LIMIT $3`,
			id, int64(since), limit)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[[]byte])
	})
	if err != nil {
		return nil, fmt.Errorf("store: events since: %w", err)
	}
	return out, nil
}

// Snapshot renders every read model as canonical text, ordered, so two
// projections of the same log can be compared for equality.
func (s *Store) Snapshot(ctx context.Context) (string, error) {
	queries := []string{
		`SELECT execution_id, user_id, status, current_stage, request::text, received, valid, rejected, total, rate_per_sec,
			reported_percent, error_reason, error_category, output_dir, last_seq, last_hash, created_at, started_at, finished_at, updated_at,
			safety::text, quality::text, bias::text, fusion::text, balancing::text, data_deleted_at FROM executions ORDER BY execution_id`,
		`SELECT * FROM stage_runs ORDER BY execution_id, stage`,
		`SELECT * FROM source_runs ORDER BY execution_id, source_index`,
		`SELECT * FROM output_files ORDER BY execution_id, name`,
		`SELECT * FROM alerts ORDER BY execution_id, seq`,
		`SELECT * FROM reviews ORDER BY execution_id, review`,
		`SELECT execution_id, seq, event_id, type, time, prevhash, hash, envelope FROM audit_events ORDER BY execution_id, seq`,
	}
	var b strings.Builder
	for _, q := range queries {
		rows, err := s.pool.Query(ctx, q)
		if err != nil {
			return "", fmt.Errorf("store: snapshot: %w", err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return "", err
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
		b.WriteString("--\n")
	}
	return b.String(), nil
}

// Review is one entry of the review queue.
type Review struct {
	ExecutionID    string     `json:"execution_id"`
	Review         int        `json:"review"`
	RecordID       string     `json:"record_id"`
	Source         string     `json:"source"`
	Position       int64      `json:"position"`
	Flags          []string   `json:"flags"`
	CrisisLevel    string     `json:"crisis_level"`
	Score          float64    `json:"score"`
	Status         string     `json:"status"`
	OpenedAt       time.Time  `json:"opened_at"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	Note           string     `json:"note,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
}

const reviewCols = `execution_id, review, record_id, source, position, flags, crisis_level, score, status, opened_at,
	acknowledged_by, note, acknowledged_at`

func scanReview(row pgx.Row) (Review, error) {
	var r Review
	err := row.Scan(&r.ExecutionID, &r.Review, &r.RecordID, &r.Source, &r.Position, &r.Flags, &r.CrisisLevel, &r.Score,
		&r.Status, &r.OpenedAt, &r.AcknowledgedBy, &r.Note, &r.AcknowledgedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// Reviews lists the queue, oldest first: status "open", "acknowledged" or
// "" for all; executionID "" for every execution.
func (s *Store) Reviews(ctx context.Context, status, executionID string, limit int) ([]Review, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reviewCols+` FROM reviews
		WHERE ($1 = '' OR status = $1) AND ($2 = '' OR execution_id = $2) ORDER BY opened_at, execution_id, review LIMIT $3`, status, executionID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Review{}
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetReview returns one review.
func (s *Store) GetReview(ctx context.Context, executionID string, review int) (Review, error) {
	return scanReview(s.pool.QueryRow(ctx, `SELECT `+reviewCols+` FROM reviews WHERE execution_id=$1 AND review=$2`, executionID, review))
}

// DestinationHolder is an execution that holds, or will hold, an output
// destination.
type DestinationHolder struct {
	ExecutionID string
	UserID      string
	Destination string
}

// DestinationHolders lists the executions, neither failed nor cancelled,
// whose output destination (the request's, or the execution id by default)
// is dest, lies inside it or contains it.
func (s *Store) DestinationHolders(ctx context.Context, dest string) ([]DestinationHolder, error) {
	rows, err := s.pool.Query(ctx, `WITH d AS (
			SELECT execution_id, user_id, coalesce(nullif(request->'output'->>'destination', ''), execution_id) AS dest
			FROM executions WHERE status NOT IN ('failed', 'cancelled'))
		SELECT execution_id, user_id, dest FROM d
		WHERE dest = $1 OR starts_with(dest, $1 || '/') OR starts_with($1, dest || '/')
		ORDER BY execution_id LIMIT 100`, dest)
	if err != nil {
		return nil, fmt.Errorf("store: destination holders: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DestinationHolder, error) {
		var h DestinationHolder
		return h, r.Scan(&h.ExecutionID, &h.UserID, &h.Destination)
	})
}

// DatasetCosts measures, over the latest completed executions (at most
// 50), how long the dataset stages took as a share of the record stages'
// time: the median for executions that ran fusion or balancing
// (WithFusion, and FusionShare, the part of that time fusion itself took)
// and for those that only wrote output (OutputOnly). A figure is 0 where
// fewer than 3 executions give it.
type DatasetCosts struct {
	WithFusion, FusionShare, OutputOnly float64
}

// DatasetCosts reads the figures from the stage runs.
func (s *Store) DatasetCosts(ctx context.Context) (DatasetCosts, error) {
	rows, err := s.pool.Query(ctx, `WITH recent AS (
		SELECT execution_id FROM executions WHERE status = 'completed' AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 50)
	SELECT bool_or(r.stage IN ('fusion', 'balancing')),
		EXTRACT(EPOCH FROM max(r.finished_at) FILTER (WHERE r.stage = 'output') - min(r.started_at) FILTER (WHERE r.stage IN ('fusion', 'balancing', 'output')))::float8,
		EXTRACT(EPOCH FROM max(r.finished_at) FILTER (WHERE r.stage = 'acquisition') - min(r.started_at) FILTER (WHERE r.stage = 'acquisition'))::float8,
		coalesce(max(r.duration_ms) FILTER (WHERE r.stage = 'fusion'), 0)::float8 / 1000
	FROM stage_runs r JOIN recent USING (execution_id) GROUP BY r.execution_id`)
	if err != nil {
		return DatasetCosts{}, fmt.Errorf("store: dataset costs: %w", err)
	}
	var fus, share, out []float64
	for rows.Next() {
		var fusion *bool
		var dataset, records *float64
		var fusionSecs float64
		if err := rows.Scan(&fusion, &dataset, &records, &fusionSecs); err != nil {
			rows.Close()
			return DatasetCosts{}, fmt.Errorf("store: dataset costs: %w", err)
		}
		if fusion == nil || dataset == nil || records == nil || *records < 0.5 || *dataset <= 0 {
			continue // not finished, or too short to say anything
		}
		if *fusion {
			fus = append(fus, *dataset / *records)
			share = append(share, min(fusionSecs / *dataset, 1))
		} else {
			out = append(out, *dataset / *records)
		}
	}
	if err := rows.Err(); err != nil {
		return DatasetCosts{}, fmt.Errorf("store: dataset costs: %w", err)
	}
	median := func(v []float64) float64 {
		if len(v) < 3 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return DatasetCosts{WithFusion: median(fus), FusionShare: median(share), OutputOnly: median(out)}, nil
}
