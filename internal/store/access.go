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
// so replays are harmless and a broken chain stops the batch. Records are
// written with one COPY per batch: the access log grows with every API
// call, so its projection must stay cheap.
func (s *Store) ApplyAccess(ctx context.Context, b Batch) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockOffset(ctx, tx, b); err != nil {
			return err
		}
		heads := map[string]*accessHead{}
		var rows [][]any
		for i := range b.Events {
			e := &b.Events[i]
			h, err := head(ctx, tx, heads, e)
			if err != nil {
				return err
			}
			if int64(e.Seq) <= int64(h.chain.Seq) {
				continue // replayed
			}
			if err := h.chain.Next(e); err != nil {
				return fmt.Errorf("store: apply access %s seq %d: %w", e.Subject, e.Seq, err)
			}
			h.time = e.Time
			if events.IsSeal(e.Type) {
				h.sealed = int64(e.Seq)
			}
			var a events.Access
			if e.Type == events.TypeAccessRecorded {
				p, err := events.Parse(*e)
				if err != nil {
					return fmt.Errorf("store: apply access %s seq %d: %w", e.Subject, e.Seq, err)
				}
				a = *p.(*events.Access)
			}
			rows = append(rows, []any{e.Subject, int64(e.Seq), e.Type, e.Time, a.UserID, a.Role, a.Action, a.Method, a.Route,
				a.ExecutionID, a.Review, a.Remote, int32(a.Status), e.PrevHash, e.Hash, b.Raw[i]})
		}
		if len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"access_events"}, []string{"chain", "seq", "type", "time", "user_id", "role",
				"action", "method", "route", "execution_id", "review", "remote", "status", "prevhash", "hash", "envelope"},
				pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("store: copy access events: %w", err)
			}
		}
		for id, h := range heads {
			if _, err := tx.Exec(ctx, `INSERT INTO access_chains (chain, last_seq, last_hash, sealed_seq, updated_at) VALUES ($1,$2,$3,$4,$5)
				ON CONFLICT (chain) DO UPDATE SET last_seq=EXCLUDED.last_seq, last_hash=EXCLUDED.last_hash,
				sealed_seq=EXCLUDED.sealed_seq, updated_at=EXCLUDED.updated_at`,
				id, int64(h.chain.Seq), h.chain.Hash, h.sealed, h.time); err != nil {
				return err
			}
		}
		return saveOffset(ctx, tx, b)
	})
}

// accessHead is one access chain's head while a batch is applied.
type accessHead struct {
	chain  events.Chain
	sealed int64
	time   time.Time
}

// head loads (and locks) a chain's head the first time the batch meets it.
func head(ctx context.Context, tx pgx.Tx, heads map[string]*accessHead, e *events.Envelope) (*accessHead, error) {
	if h, ok := heads[e.Subject]; ok {
		return h, nil
	}
	h := &accessHead{time: e.Time}
	var seq int64
	err := tx.QueryRow(ctx, `SELECT last_seq, last_hash, sealed_seq FROM access_chains WHERE chain=$1 FOR UPDATE`, e.Subject).
		Scan(&seq, &h.chain.Hash, &h.sealed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	h.chain.Seq = uint64(seq)
	heads[e.Subject] = h
	return h, nil
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
