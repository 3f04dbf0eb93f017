// Package store holds every SQL statement of the service: opening and
// migrating the database, the projector's idempotent read-model writes with
// offsets in the same transaction, and the API's queries.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dspipe/dspipe/migrations"
)

// ErrNotFound is returned when an execution does not exist (yet).
var ErrNotFound = errors.New("store: not found")

// ErrFenced is returned when a projector writes offsets for a partition that
// a newer group generation already owns.
var ErrFenced = errors.New("store: fenced by a newer projector generation")

// Store is the Postgres handle.
type Store struct {
	pool   *pgxpool.Pool
	schema string
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects, creates the schema if needed, applies the migrations, and
// returns a store whose connections use that schema.
func Open(ctx context.Context, databaseURL, schema string) (*Store, error) {
	if schema == "" {
		schema = "public"
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("store: invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse DATABASE_URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	// Operators see which schema a connection serves in pg_stat_activity.
	cfg.ConnConfig.RuntimeParams["application_name"] = "dspipe-" + schema
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: create schema %s: %w", schema, err)
	}
	if err := migrateUp(databaseURL, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, schema: schema}, nil
}

// readAgain runs a read-only query of s again when the connection it ran
// on is one the database had ended (an administrator's
// pg_terminate_backend, a restart, a failover). The pool pings only
// connections idle for more than a second, so right after such an end it
// can hand out every idle one dead; a failed query drops its connection
// from the pool, so as many tries as the pool holds connections, and one
// more, reach a live one. Reads are safe to repeat; writes are not
// retried here.
func readAgain[T any](ctx context.Context, s *Store, read func() (T, error)) (T, error) {
	v, err := read()
	for try := int32(0); try < s.pool.Config().MaxConns && err != nil && connectionEnded(err) && ctx.Err() == nil; try++ {
		v, err = read()
	}
	return v, err
}

// connectionEnded reports an error that says the connection, not the
// query, failed.
func connectionEnded(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 57P01-57P03: the server ended the session; class 08: connection exceptions.
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08")
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func migrateUp(databaseURL, schema string) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return fmt.Errorf("store: parse DATABASE_URL: %w", err)
	}
	u.Scheme = "pgx5"
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("x-migrations-table", "schema_migrations")
	u.RawQuery = q.Encode()
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, u.String())
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("store: migrate up: %w", err)
	}
	return nil
}

// Schema is the Postgres schema this store reads and writes.
func (s *Store) Schema() string { return s.schema }

// Ping checks the database is reachable.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// DropSchema removes a schema and everything in it (tests and rebuilds).
func DropSchema(ctx context.Context, databaseURL, schema string) error {
	if !schemaName.MatchString(schema) || schema == "public" {
		return fmt.Errorf("store: refusing to drop schema %q", schema)
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("store: connect: %w", err)
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	return err
}

// LatestMigration is the version of the newest migration this build
// carries (read once: the migrations are embedded).
var LatestMigration = sync.OnceValues(latestMigration)

func latestMigration() (uint, error) {
	ents, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return 0, err
	}
	var latest uint
	for _, e := range ents {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

// Ready checks the database answers and holds this build's migrations,
// none of them left half-applied.
func (s *Store) Ready(ctx context.Context) error {
	var version int64
	var dirty bool
	if err := s.pool.QueryRow(ctx, `SELECT version, dirty FROM `+pgx.Identifier{s.schema, "schema_migrations"}.Sanitize()).Scan(&version, &dirty); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	latest, err := LatestMigration()
	if err != nil {
		return err
	}
	switch {
	case dirty:
		return fmt.Errorf("store: migration %d is dirty (half-applied)", version)
	case version < int64(latest):
		return fmt.Errorf("store: migrations at %d, this build needs %d", version, latest)
	}
	return nil
}

// PoolStat is the connection pool's state, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

// Failures counts failed executions by error category, for metrics.
func (s *Store) Failures(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT error_category, count(*) FROM executions WHERE status='failed' GROUP BY error_category`)
	if err != nil {
		return nil, fmt.Errorf("store: failures: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var c string
		var n int64
		if err := rows.Scan(&c, &n); err != nil {
			return nil, err
		}
		out[c] = n
	}
	return out, rows.Err()
}

// AlertCounts counts the alerts raised, by severity and code, for metrics.
func (s *Store) AlertCounts(ctx context.Context) (map[[2]string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT severity, code, count(*) FROM alerts GROUP BY severity, code`)
	if err != nil {
		return nil, fmt.Errorf("store: alert counts: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]int64{}
	for rows.Next() {
		var sev, code string
		var n int64
		if err := rows.Scan(&sev, &code, &n); err != nil {
			return nil, err
		}
		out[[2]string{sev, code}] = n
	}
	return out, rows.Err()
}

// StatusCounts counts executions by status and open reviews, for metrics.
func (s *Store) StatusCounts(ctx context.Context) (map[string]int64, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM executions GROUP BY status`)
	if err != nil {
		return nil, 0, fmt.Errorf("store: status counts: %w", err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, 0, err
		}
		out[st] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var open int64
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM reviews WHERE status='open'`).Scan(&open)
	return out, open, err
}
