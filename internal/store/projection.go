package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dspipe/dspipe/events"
)

// Batch is the events consumed from one partition, to be applied together
// with the partition's next offset.
type Batch struct {
	Topic      string
	Partition  int32
	Generation int32
	NextOffset int64
	Events     []events.Envelope
	// Raw holds each event exactly as it was on the wire, for the audit table.
	Raw [][]byte
}

// Claim takes ownership of a partition for a projector: it bumps the
// partition's generation, fencing any earlier owner still writing, and
// returns the new generation and the next offset to consume.
func (s *Store) Claim(ctx context.Context, topic string, partition int32) (gen int32, next int64, err error) {
	err = s.pool.QueryRow(ctx, `INSERT INTO projector_offsets (topic, partition, next_offset, generation) VALUES ($1,$2,0,1)
		ON CONFLICT (topic, partition) DO UPDATE SET generation = projector_offsets.generation + 1
		RETURNING generation, next_offset`, topic, partition).Scan(&gen, &next)
	if err != nil {
		return 0, 0, fmt.Errorf("store: claim %s[%d]: %w", topic, partition, err)
	}
	return gen, next, nil
}

// Apply projects a batch and stores its offset in one transaction. Events at
// or below an execution's last projected seq are skipped, so replays are
// harmless. A newer generation's offset row fences this writer.
func (s *Store) Apply(ctx context.Context, b Batch) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockOffset(ctx, tx, b); err != nil {
			return err
		}
		for i := range b.Events {
			if err := applyEvent(ctx, tx, &b.Events[i], b.Raw[i]); err != nil {
				return fmt.Errorf("store: apply %s seq %d: %w", b.Events[i].Type, b.Events[i].Seq, err)
			}
		}
		return saveOffset(ctx, tx, b)
	})
}

// lockOffset locks the batch's partition offset row, failing with
// ErrFenced when a newer generation owns the partition.
func lockOffset(ctx context.Context, tx pgx.Tx, b Batch) error {
	var gen int32
	err := tx.QueryRow(ctx, `SELECT generation FROM projector_offsets WHERE topic=$1 AND partition=$2 FOR UPDATE`,
		b.Topic, b.Partition).Scan(&gen)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: partition %d was never claimed", ErrFenced, b.Partition)
	case err != nil:
		return fmt.Errorf("store: lock offset: %w", err)
	case gen != b.Generation:
		return fmt.Errorf("%w: partition %d claimed by generation %d, this writer holds %d", ErrFenced, b.Partition, gen, b.Generation)
	}
	return nil
}

// saveOffset stores the batch's next offset.
func saveOffset(ctx context.Context, tx pgx.Tx, b Batch) error {
	_, err := tx.Exec(ctx, `UPDATE projector_offsets SET next_offset = $3 WHERE topic = $1 AND partition = $2`,
		b.Topic, b.Partition, b.NextOffset)
	if err != nil {
		return fmt.Errorf("store: save offset: %w", err)
	}
	return nil
}

func applyEvent(ctx context.Context, tx pgx.Tx, e *events.Envelope, raw []byte) error {
	p, err := events.Parse(*e)
	if err != nil {
		return err
	}
	id := e.Subject
	if req, ok := p.(*events.ExecutionRequested); ok {
		reqJSON, err := json.Marshal(req.Request)
		if err != nil {
			return err
		}
		// jsonb cannot hold NUL characters; a request that carries one must
		// not stall every projection behind it. The audit table keeps the
		// event byte for byte.
		reqJSON = bytes.ReplaceAll(reqJSON, []byte(`\u0000`), []byte(`\ufffd`))
		tag, err := tx.Exec(ctx, `INSERT INTO executions (execution_id, user_id, status, request, last_seq, last_hash, created_at, updated_at)
			VALUES ($1,$2,'requested',$3,0,'',$4,$4) ON CONFLICT (execution_id) DO NOTHING`, id, req.UserID, reqJSON, e.Time)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // replayed
		}
	}
	// Idempotence and order: only the next event of the chain is applied.
	var lastSeq int64
	var lastHash string
	err = tx.QueryRow(ctx, `SELECT last_seq, last_hash FROM executions WHERE execution_id=$1 FOR UPDATE`, id).Scan(&lastSeq, &lastHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("event for unknown execution")
	}
	if err != nil {
		return err
	}
	if int64(e.Seq) <= lastSeq {
		return nil
	}
	chain := events.Chain{Seq: uint64(lastSeq), Hash: lastHash}
	if err := chain.Next(e); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_events (execution_id, seq, event_id, type, time, prevhash, hash, envelope)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING`,
		id, int64(e.Seq), e.ID, e.Type, e.Time, e.PrevHash, e.Hash, raw); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE executions SET last_seq=$2, last_hash=$3, updated_at=$4 WHERE execution_id=$1`,
		id, int64(e.Seq), e.Hash, e.Time); err != nil {
		return err
	}
	return project(ctx, tx, e, p)
}

func project(ctx context.Context, tx pgx.Tx, e *events.Envelope, p events.Payload) error {
	id, at := e.Subject, e.Time
	var err error
	switch d := p.(type) {
	case *events.ExecutionRequested:
	case *events.ExecutionQueued:
		_, err = tx.Exec(ctx, `UPDATE executions SET status='queued' WHERE execution_id=$1`, id)
	case *events.ExecutionStarted:
		_, err = tx.Exec(ctx, `UPDATE executions SET status='running', started_at=$2 WHERE execution_id=$1`, id, at)
	case *events.SourceStarted:
		_, err = tx.Exec(ctx, `INSERT INTO source_runs (execution_id, source_index, name, kind, status) VALUES ($1,$2,$3,$4,'running')
			ON CONFLICT (execution_id, source_index) DO UPDATE SET status='running', error_reason=''`, id, d.Source, d.Name, d.Kind)
	case *events.SourceCompleted:
		_, err = tx.Exec(ctx, `UPDATE source_runs SET status='completed', records=$3, bytes=$4 WHERE execution_id=$1 AND source_index=$2`,
			id, d.Source, d.Records, d.Bytes)
	case *events.SourceFailed:
		_, err = tx.Exec(ctx, `UPDATE source_runs SET status='failed', error_reason=$3 WHERE execution_id=$1 AND source_index=$2`,
			id, d.Source, d.Reason)
	case *events.StageStarted:
		_, err = tx.Exec(ctx, `INSERT INTO stage_runs (execution_id, stage, ordinal, status, started_at)
			VALUES ($1,$2,(SELECT count(*) FROM stage_runs WHERE execution_id=$1),'running',$3) ON CONFLICT DO NOTHING`, id, d.Stage, at)
		if err == nil {
			// The per-record stages all start with the first records; the
			// stage a user names meanwhile is acquisition, the first.
			// The dataset stages (fusion, balancing, output) follow one
			// by one.
			_, err = tx.Exec(ctx, `UPDATE executions SET current_stage=$2 WHERE execution_id=$1 AND (current_stage='' OR NOT $3)`,
				id, d.Stage, events.RecordStage(d.Stage))
		}
	case *events.StageProgress:
		_, err = tx.Exec(ctx, `UPDATE stage_runs SET received=$3, valid=$4, rejected=$5 WHERE execution_id=$1 AND stage=$2`,
			id, d.Stage, d.Counts.Received, d.Counts.Valid, d.Counts.Rejected)
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE executions SET received=$2, valid=$3, rejected=$4, total=GREATEST(total,$5), rate_per_sec=$6,
				estimated_total=CASE WHEN $7 > 0 THEN $7 ELSE estimated_total END WHERE execution_id=$1`,
				id, d.Counts.Received, d.Counts.Valid, d.Counts.Rejected, d.Counts.Total, d.RatePerSec, d.EstimatedTotal)
		}
		if err == nil {
			err = storeSummaries(ctx, tx, id, d.Safety, d.Quality, d.Bias, nil, nil)
		}
		for i, n := range d.PerSource {
			if err != nil {
				break
			}
			_, err = tx.Exec(ctx, `UPDATE source_runs SET output=$3 WHERE execution_id=$1 AND source_index=$2`, id, i, n)
		}
		err = storeNoConsent(ctx, tx, id, d.NoConsent, err)
	case *events.StageCompleted:
		_, err = tx.Exec(ctx, `UPDATE stage_runs SET status='completed', received=$3, valid=$4, rejected=$5, duration_ms=$6, finished_at=$7
			WHERE execution_id=$1 AND stage=$2`, id, d.Stage, d.Counts.Received, d.Counts.Valid, d.Counts.Rejected, d.DurationMS, at)
		if err == nil && d.Counts.Total > 0 {
			_, err = tx.Exec(ctx, `UPDATE executions SET total=$2 WHERE execution_id=$1`, id, d.Counts.Total)
		}
		if err == nil {
			err = storeSummaries(ctx, tx, id, d.Safety, d.Quality, d.Bias, d.Fusion, d.Balancing)
		}
	case *events.StageFailed:
		_, err = tx.Exec(ctx, `UPDATE stage_runs SET status='failed', error_reason=$3, finished_at=$4 WHERE execution_id=$1 AND stage=$2`,
			id, d.Stage, d.Reason, at)
	case *events.Alert:
		_, err = tx.Exec(ctx, `INSERT INTO alerts (execution_id, seq, severity, code, message, stage, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)
			ON CONFLICT DO NOTHING`, id, int64(e.Seq), d.Severity, d.Code, d.Message, d.Stage, at)
	case *events.ReviewOpened:
		flags := d.Flags
		if flags == nil {
			flags = []string{}
		}
		_, err = tx.Exec(ctx, `INSERT INTO reviews (execution_id, review, record_id, source, position, flags, crisis_level, score, status, opened_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'open',$9) ON CONFLICT DO NOTHING`, id, d.Review, d.RecordID, d.Source, d.Position, flags, d.CrisisLevel, d.Score, at)
	case *events.ReviewAcknowledged:
		_, err = tx.Exec(ctx, `UPDATE reviews SET status='acknowledged', acknowledged_by=$3, note=$4, acknowledged_at=$5
			WHERE execution_id=$1 AND review=$2`, id, d.Review, d.By, d.Note, at)
	case *events.ProgressReported:
		_, err = tx.Exec(ctx, `UPDATE executions SET reported_percent=$2 WHERE execution_id=$1`, id, d.Percent)
	case *events.ExecutionCompleted:
		_, err = tx.Exec(ctx, `UPDATE executions SET status='completed', finished_at=$2, received=$3, valid=$4, rejected=$5, total=$6, output_dir=$7
			WHERE execution_id=$1`, id, at, d.Counts.Received, d.Counts.Valid, d.Counts.Rejected, d.Counts.Total, d.OutputDir)
		err = storeNoConsent(ctx, tx, id, d.NoConsent, err)
		err = storeOutputFiles(ctx, tx, id, d.Files, err)
	case *events.ExecutionFailed:
		_, err = tx.Exec(ctx, `UPDATE executions SET status='failed', finished_at=$2, error_reason=$3, error_category=$4 WHERE execution_id=$1`,
			id, at, d.Reason, d.Category)
		if err == nil && d.Stage != "" {
			_, err = tx.Exec(ctx, `UPDATE stage_runs SET status='failed', error_reason=$3, finished_at=$4
				WHERE execution_id=$1 AND stage=$2 AND status='running'`, id, d.Stage, d.Reason, at)
		}
	case *events.ExecutionCancelled:
		_, err = tx.Exec(ctx, `UPDATE executions SET status='cancelled', finished_at=$2, error_reason=$3 WHERE execution_id=$1`, id, at, d.Reason)
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE stage_runs SET status='cancelled', finished_at=$2 WHERE execution_id=$1 AND status='running'`, id, at)
		}
	case *events.OutputRewritten:
		_, err = tx.Exec(ctx, `UPDATE executions SET output_dir=$2 WHERE execution_id=$1`, id, d.OutputDir)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM output_files WHERE execution_id=$1`, id)
		}
		err = storeOutputFiles(ctx, tx, id, d.Files, err)
	case *events.ExecutionDataDeleted:
		_, err = tx.Exec(ctx, `UPDATE executions SET data_deleted_at=$2 WHERE execution_id=$1`, id, at)
	case *events.Seal:
		// A signed checkpoint: part of the chain (audit_events), nothing
		// else to project.
	default:
		err = fmt.Errorf("no projection for %T", p)
	}
	return err
}

// storeNoConsent stores the per-source counts of records rejected for want
// of consent (unless an earlier statement failed).
func storeNoConsent(ctx context.Context, tx pgx.Tx, id string, counts []int64, err error) error {
	for i, n := range counts {
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE source_runs SET no_consent=$3 WHERE execution_id=$1 AND source_index=$2`, id, i, n)
	}
	return err
}

// storeSummaries stores the stage summaries an event carries on its
// execution; those it does not carry (nil) keep their stored value.
func storeSummaries(ctx context.Context, tx pgx.Tx, id string, sa *events.SafetySummary, q *events.QualitySummary, b *events.BiasSummary,
	f *events.FusionSummary, bl *events.BalancingSummary) error {
	if sa == nil && q == nil && b == nil && f == nil && bl == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE executions SET safety=COALESCE($2::jsonb, safety), quality=COALESCE($3::jsonb, quality),
		bias=COALESCE($4::jsonb, bias), fusion=COALESCE($5::jsonb, fusion), balancing=COALESCE($6::jsonb, balancing) WHERE execution_id=$1`,
		id, sa, q, b, f, bl)
	return err
}

// storeOutputFiles records an output's files, unless err is already set.
func storeOutputFiles(ctx context.Context, tx pgx.Tx, id string, files []events.OutputFile, err error) error {
	for _, f := range files {
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO output_files (execution_id, name, records, bytes, sha256) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT DO NOTHING`, id, f.Name, f.Records, f.Bytes, f.SHA256)
	}
	return err
}

// ProjectedOffsets returns, per partition of topic, the next offset the
// projector will apply: every event below it is in the read models.
func (s *Store) ProjectedOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT partition, next_offset FROM projector_offsets WHERE topic = $1`, topic)
	if err != nil {
		return nil, fmt.Errorf("store: projected offsets: %w", err)
	}
	out := map[int32]int64{}
	var p int32
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&p, &n}, func() error { out[p] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("store: projected offsets: %w", err)
	}
	return out, nil
}
