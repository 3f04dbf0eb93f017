// Package testenv gives tests real infrastructure: a fresh Postgres schema
// per test on the server from DATABASE_URL (scripts/pg.sh starts one), an
// in-process kfake cluster, and the services wired against them.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
)

// Shared returns a path under ../shared beside the repository (the real
// data and evaluation sets, never copied into it), or skips the test,
// saying so, when it is absent.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0) // internal/testenv/testenv.go
	p := filepath.Join(append([]string{filepath.Dir(file), "..", "..", "..", "shared"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIPPED: %s is absent (it lives in ../shared beside the repository)", p)
	}
	return p
}

// DatabaseURL is the server tests use.
func DatabaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"
}

// RequirePostgres skips the test when no server answers, except under CI,
// where a missing database is a failure.
func RequirePostgres(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, DatabaseURL())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Postgres unreachable at DATABASE_URL under CI: %v", err)
		}
		t.Skipf("SKIPPED: Postgres unreachable (run scripts/pg.sh start): %v", err)
	}
	conn.Close(ctx)
}

// Schema returns a fresh, migrated schema, dropped when the test ends.
func Schema(t testing.TB) (*store.Store, string) {
	t.Helper()
	RequirePostgres(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	st, err := store.Open(ctx, DatabaseURL(), name)
	require.NoError(t, err)
	t.Cleanup(func() {
		st.Close()
		_ = store.DropSchema(context.Background(), DatabaseURL(), name)
	})
	return st, name
}

// ExternalKafka returns the external broker the tests may use
// (DSPIPE_TEST_KAFKA_BROKERS, which scripts/kafka.sh prints), or nil.
func ExternalKafka() []string {
	if v := os.Getenv("DSPIPE_TEST_KAFKA_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// Kafka returns a broker with the services' topics created. It is an
// in-process kfake cluster, unless DSPIPE_TEST_KAFKA=external and
// DSPIPE_TEST_KAFKA_BROKERS name an Apache Kafka broker: then the test gets
// that broker (and a nil cluster) under a prefix of its own, which also
// names its consumer groups and transactional ids, so tests sharing the
// broker never see each other; its topics are deleted when it ends. Tests
// that inject faults (kfake options) always get kfake.
func Kafka(t testing.TB, partitions int32, opts ...kfake.Opt) (kafka.Config, *kfake.Cluster) {
	t.Helper()
	if brokers := ExternalKafka(); len(opts) == 0 && brokers != nil && os.Getenv("DSPIPE_TEST_KAFKA") == "external" {
		return external(t, brokers, partitions), nil
	}
	return KFake(t, partitions, opts...)
}

func external(t testing.TB, brokers []string, partitions int32) kafka.Config {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	kc := kafka.Config{Brokers: brokers, Partitions: partitions, Replication: 1, TopicPrefix: "t" + hex.EncodeToString(b[:]) + "."}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, kc.EnsureTopics(ctx), "topics on the external broker %v", brokers)
	t.Cleanup(func() {
		cl, err := kc.Client()
		if err != nil {
			return
		}
		defer cl.Close()
		tp := kc.Topics()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, tp.Commands, tp.Events, tp.Raw, tp.Staged, tp.Outcomes, tp.Checkpoints, tp.Snapshots, tp.Access)
	})
	t.Logf("Kafka: external broker %v, prefix %s", brokers, kc.TopicPrefix)
	return kc
}

// KFake starts an in-process kfake cluster and returns its configuration
// with topics created.
func KFake(t testing.TB, partitions int32, opts ...kfake.Opt) (kafka.Config, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	kc := kafka.Config{Brokers: c.ListenAddrs(), Partitions: partitions, Replication: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, kc.EnsureTopics(ctx))
	return kc, c
}

// Logger writes to the test log only when -v, and never record text: the
// services never log it.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
