package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrKeyDestroyed is returned for an execution whose data key was
// destroyed: its records are gone for good.
var ErrKeyDestroyed = errors.New("store: the execution's data key was destroyed")

// PutDataKey stores an execution's wrapped data key unless one exists (the
// first writer wins; every service then reads the winner).
func (s *Store) PutDataKey(ctx context.Context, execution, ref string, wrapped []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO data_keys (execution_id, key_ref, wrapped) VALUES ($1,$2,$3) ON CONFLICT (execution_id) DO NOTHING`,
		execution, ref, wrapped)
	if err != nil {
		return fmt.Errorf("store: put data key: %w", err)
	}
	return nil
}

// DataKey returns an execution's wrapped data key: ErrNotFound when it has
// none yet, ErrKeyDestroyed when it was destroyed.
func (s *Store) DataKey(ctx context.Context, execution string) (ref string, wrapped []byte, err error) {
	err = s.pool.QueryRow(ctx, `SELECT key_ref, wrapped FROM data_keys WHERE execution_id=$1`, execution).Scan(&ref, &wrapped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil, ErrNotFound
	case err != nil:
		return "", nil, fmt.Errorf("store: data key: %w", err)
	case wrapped == nil:
		return ref, nil, ErrKeyDestroyed
	}
	return ref, wrapped, nil
}

// DestroyDataKey erases an execution's wrapped data key for good (a
// missing key is recorded as destroyed too, so none can be made later).
func (s *Store) DestroyDataKey(ctx context.Context, execution string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO data_keys (execution_id, key_ref, wrapped, destroyed_at) VALUES ($1, '', NULL, now())
		ON CONFLICT (execution_id) DO UPDATE SET wrapped = NULL, destroyed_at = coalesce(data_keys.destroyed_at, now())`, execution)
	if err != nil {
		return fmt.Errorf("store: destroy data key: %w", err)
	}
	return nil
}

// CopyDataKeys copies the data keys of another schema (the live one) into
// this one, after a rebuild.
func (s *Store) CopyDataKeys(ctx context.Context, from string) (int64, error) {
	if !schemaName.MatchString(from) {
		return 0, fmt.Errorf("store: invalid schema name %q", from)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO data_keys SELECT * FROM `+pgx.Identifier{from}.Sanitize()+`.data_keys ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("store: copy data keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
