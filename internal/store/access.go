package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dspipe/dspipe/events"
)

// ApplyAccess projects a batch of the access topic and stores its offset in
// one transaction, like Apply: each chain advances only by its next event,
// so replays are harmless and a broken chain stops the batch.
func (s *Store) ApplyAccess(ctx context.Context, b Batch) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockOffset(ctx, tx, b); err != nil {
			return err
		}
		for i := range b.Events {
			if err := applyAccess(ctx, tx, &b.Events[i], b.Raw[i]); err != nil {
				return fmt.Errorf("store: apply access %s seq %d: %w", b.Events[i].Subject, b.Events[i].Seq, err)
			}
		}
		return saveOffset(ctx, tx, b)
	})
}

func applyAccess(ctx context.Context, tx pgx.Tx, e *events.Envelope, raw []byte) error {
	p, err := events.Parse(*e)
	if err != nil {
		return err
	}
	var lastSeq int64
	var lastHash string
	err = tx.QueryRow(ctx, `SELECT last_seq, last_hash FROM access_chains WHERE chain=$1 FOR UPDATE`, e.Subject).Scan(&lastSeq, &lastHash)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO access_chains (chain, last_seq, last_hash, updated_at) VALUES ($1, 0, '', $2)`, e.Subject, e.Time)
	}
	if err != nil {
		return err
	}
	if int64(e.Seq) <= lastSeq {
		return nil
	}
	c := events.Chain{Seq: uint64(lastSeq), Hash: lastHash}
	if err := c.Next(e); err != nil {
		return err
	}
	var a events.Access
	if x, ok := p.(*events.Access); ok {
		a = *x
	}
	if _, err := tx.Exec(ctx, `INSERT INTO access_events (chain, seq, type, time, user_id, role, action, method, route, execution_id, review,
			remote, status, prevhash, hash, envelope) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) ON CONFLICT DO NOTHING`,
		e.Subject, int64(e.Seq), e.Type, e.Time, a.UserID, a.Role, a.Action, a.Method, a.Route, a.ExecutionID, a.Review,
		a.Remote, a.Status, e.PrevHash, e.Hash, raw); err != nil {
		return err
	}
	sealed := "sealed_seq"
	if events.IsSeal(e.Type) {
		sealed = "$2"
	}
	_, err = tx.Exec(ctx, `UPDATE access_chains SET last_seq=$2, last_hash=$3, updated_at=$4, sealed_seq=`+sealed+` WHERE chain=$1`,
		e.Subject, int64(e.Seq), e.Hash, e.Time)
	return err
}

// AccessFilter selects access records.
type AccessFilter struct {
	UserID      string
	ExecutionID string
	Since       time.Time
	Limit       int
}

// AccessRecord is one audited API call.
type AccessRecord struct {
	Chain       string    `json:"chain"`
	Seq         int64     `json:"seq"`
	Time        time.Time `json:"time"`
	UserID      string    `json:"user_id"`
	Role        string    `json:"role"`
	Action      string    `json:"action"`
	Method      string    `json:"method"`
	Route       string    `json:"route"`
	ExecutionID string    `json:"execution_id,omitempty"`
	Review      string    `json:"review,omitempty"`
	Remote      string    `json:"remote"`
	Status      int       `json:"status"`
}

// AccessRecords lists access records (not seals), oldest first.
func (s *Store) AccessRecords(ctx context.Context, f AccessFilter) ([]AccessRecord, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	rows, err := s.pool.Query(ctx, `SELECT chain, seq, time, user_id, role, action, method, route, execution_id, review, remote, status
		FROM access_events WHERE type=$1 AND ($2='' OR user_id=$2) AND ($3='' OR execution_id=$3) AND time >= $4
		ORDER BY time, chain, seq LIMIT $5`, events.TypeAccessRecorded, f.UserID, f.ExecutionID, f.Since, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: access records: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccessRecord, error) {
		var a AccessRecord
		return a, r.Scan(&a.Chain, &a.Seq, &a.Time, &a.UserID, &a.Role, &a.Action, &a.Method, &a.Route, &a.ExecutionID, &a.Review, &a.Remote, &a.Status)
	})
}

// AccessChains lists the access chains with their heads, newest first.
func (s *Store) AccessChains(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT chain FROM access_chains ORDER BY updated_at DESC, chain`)
	if err != nil {
		return nil, fmt.Errorf("store: access chains: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// AccessChain returns one access chain's events as published, in order.
func (s *Store) AccessChain(ctx context.Context, chain string) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT envelope FROM access_events WHERE chain=$1 ORDER BY seq`, chain)
	if err != nil {
		return nil, fmt.Errorf("store: access chain: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}
