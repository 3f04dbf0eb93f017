package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Erasure is one erasure request, as pseudonyms.
type Erasure struct {
	ID             string
	By             string
	RecordIDs      []string
	SourceIDHashes []string
}

// InsertErasure records an erasure.
func (s *Store) InsertErasure(ctx context.Context, e Erasure) error {
	if e.RecordIDs == nil {
		e.RecordIDs = []string{}
	}
	if e.SourceIDHashes == nil {
		e.SourceIDHashes = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO erasures (erasure_id, by_user, record_ids, source_id_hashes) VALUES ($1,$2,$3,$4)
		ON CONFLICT (erasure_id) DO NOTHING`,
		e.ID, e.By, e.RecordIDs, e.SourceIDHashes)
	if err != nil {
		return fmt.Errorf("store: insert erasure: %w", err)
	}
	return nil
}

// Erased maps every erased record id and source-id hash to the erasure
// that named it (the oldest).
func (s *Store) Erased(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT erasure_id, record_ids, source_id_hashes FROM erasures ORDER BY created_at DESC, erasure_id DESC`)
	if err != nil {
		return nil, fmt.Errorf("store: erasures: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id string
		var recs, srcs []string
		if err := rows.Scan(&id, &recs, &srcs); err != nil {
			return nil, err
		}
		for _, r := range append(recs, srcs...) {
			out[r] = id
		}
	}
	return out, rows.Err()
}

// FinishedOutputs lists the completed executions whose output still
// exists (an erasure may have to rewrite them).
func (s *Store) FinishedOutputs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT execution_id FROM executions
		WHERE status = 'completed' AND data_deleted_at IS NULL AND output_dir <> '' ORDER BY execution_id`)
	if err != nil {
		return nil, fmt.Errorf("store: finished outputs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
