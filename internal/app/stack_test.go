package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/config"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/keys"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
	"github.com/dspipe/dspipe/internal/testwait"
)

// stack is every service in-process against kfake and a fresh schema.
type stack struct {
	cfg      config.Config
	cluster  *kfake.Cluster
	store    *store.Store
	client   *client.Client
	data     string
	out      string
	done     chan error
	cancel   context.CancelFunc
	stopOnce sync.Once
	// keys opens the stack's data keys (a second instance needs them).
	keys *keys.Manager
}

type stackOpts struct {
	maxConcurrent int
	timeout       time.Duration
	partitions    int32
	kfake         []kfake.Opt
	tokens        string
	env           map[string]string
	// logs, when set, receives every service's log lines (JSON, debug level).
	logs io.Writer
	// shared, when set, is the Kafka cluster to use (another stack's) and
	// prefix this deployment's topic prefix.
	shared *stack
	// faults asks for kfake whatever the test broker: the test injects
	// faults through s.cluster.
	faults bool
	prefix string
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.partitions == 0 {
		o.partitions = 3
	}
	st, schema := testenv.Schema(t)
	var kc kafka.Config
	var cluster *kfake.Cluster
	switch {
	case o.shared != nil:
		// Another deployment on the same broker, under another prefix.
		cluster = o.shared.cluster
		kc = o.shared.cfg.Kafka
		kc.Partitions, kc.TopicPrefix = o.partitions, o.prefix+kc.TopicPrefix
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		require.NoError(t, kc.EnsureTopics(ctx))
		cancel()
	case o.faults:
		kc, cluster = testenv.KFake(t, o.partitions, o.kfake...)
	default:
		kc, cluster = testenv.Kafka(t, o.partitions, o.kfake...)
	}
	dir := t.TempDir()
	port := freePort(t)
	keyPath := filepath.Join(dir, "audit-signing-key.pem")
	_, _, err := audit.LoadOrCreateKey(keyPath, true)
	require.NoError(t, err)
	keyring, _, err := crypt.LoadKeyring(filepath.Join(dir, "keyring.json"), true)
	require.NoError(t, err)
	cfg, err := config.Load(func(k string) string {
		if v, ok := o.env[k]; ok {
			return v
		}
		return map[string]string{
			"DATABASE_URL":                      testenv.DatabaseURL(),
			"DSPIPE_DB_SCHEMA":                  schema,
			"DSPIPE_API_ADDR":                   "127.0.0.1:" + strconv.Itoa(port),
			"DSPIPE_LOCAL_ROOTS":                dir,
			"DSPIPE_OUTPUT_ROOT":                filepath.Join(dir, "out"),
			"MAX_CONCURRENT_DATASET_PROCESSING": strconv.Itoa(max(o.maxConcurrent, 1)),
			"DSPIPE_API_TOKENS":                 o.tokens,
			"DSPIPE_AUDIT_SIGNING_KEY":          keyPath,
			"DSPIPE_KEYRING":                    filepath.Join(dir, "keyring.json"),
			// Spine tests count records one for one; safety_test.go turns
			// the stage on.
			"ENABLE_SAFETY_VALIDATION": "false",
			// Likewise quality (it rejects the generator's planted
			// low-quality records) and bias; quality_test.go runs them.
			"ENABLE_QUALITY_ASSESSMENT": "false",
			"ENABLE_BIAS_DETECTION":     "false",
			"ENABLE_FUSION":             "false",
			// Snapshots every few events: every abort, rebalance and
			// restart in these tests reloads from a snapshot.
			"DSPIPE_SNAPSHOT_EVERY": "20",
		}[k]
	})
	require.NoError(t, err)
	cfg.Kafka = kc
	if v := o.env["KAFKA_COMPRESSION"]; v != "" {
		cfg.Kafka.Compression = v
	}
	if o.maxConcurrent == 0 {
		cfg.MaxConcurrent = 5
	}
	if o.timeout > 0 {
		cfg.ExecutionTimeout = o.timeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{cfg: cfg, cluster: cluster, store: st, data: filepath.Join(dir, "data"), out: filepath.Join(dir, "out"),
		done: make(chan error, 1), cancel: cancel, keys: keys.New(st, keyring),
		client: client.New("http://127.0.0.1:"+strconv.Itoa(port), "dev-admin-token")}
	require.NoError(t, os.MkdirAll(s.data, 0o755))
	log := testenv.Logger(t)
	if o.logs != nil {
		log = slog.New(slog.NewJSONHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	go func() { s.done <- app.Run(ctx, cfg, log, app.All...) }()
	t.Cleanup(func() { s.stop(t) })
	testwait.For(t, 30*time.Second, "the API never became healthy", func() bool {
		var h map[string]any
		return s.client.Do(ctx, "GET", "/health", nil, &h) == nil
	})
	return s
}

// stop stops every service and waits for them (once; the cleanup calls it
// too).
func (s *stack) stop(t *testing.T) {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("services did not stop within 30s")
		}
	})
}

func localRequest(paths ...string) events.Request {
	req := events.Request{Output: events.OutputSpec{Formats: []string{"jsonl"}, Compression: "zstd"}}
	for i, p := range paths {
		req.Sources = append(req.Sources, events.SourceSpec{Name: "s" + strconv.Itoa(i+1), Type: "local",
			Config: map[string]string{"path": p}, Priority: i + 1})
	}
	return req
}

// run submits and watches to the end, returning the messages and the final status.
func (s *stack) run(t *testing.T, req events.Request) (string, []client.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := s.client.Submit(ctx, req)
	require.NoError(t, err)
	var msgs []client.Message
	require.NoError(t, s.client.Watch(ctx, id, 0, func(m client.Message) error { msgs = append(msgs, m); return nil }))
	require.NotEmpty(t, msgs)
	require.True(t, msgs[len(msgs)-1].Terminal(), "the feed ends with a terminal event")
	return id, msgs
}

// waitStatus polls the read model until the execution reaches status.
func (s *stack) waitStatus(t *testing.T, id, status string) store.Execution {
	t.Helper()
	var x store.Execution
	testwait.For(t, 60*time.Second, fmt.Sprintf("execution %s never reached %s", id, status), func() bool {
		var err error
		x, err = s.store.Execution(context.Background(), id)
		return err == nil && x.Status == status
	})
	return x
}

// readLines reads a possibly zstd-compressed JSONL file.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var sc *bufio.Scanner
	if filepath.Ext(path) == ".zst" {
		zr, err := zstd.NewReader(f)
		require.NoError(t, err)
		defer zr.Close()
		sc = bufio.NewScanner(zr)
	} else {
		sc = bufio.NewScanner(f)
	}
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	var out []map[string]any
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

// waitStatusSeq polls the read model until the execution's trail reaches seq.
func (s *stack) waitStatusSeq(t *testing.T, id string, seq int64) store.Execution {
	t.Helper()
	var x store.Execution
	testwait.For(t, 30*time.Second, fmt.Sprintf("execution %s never reached seq %d", id, seq), func() bool {
		var err error
		x, err = s.store.Execution(context.Background(), id)
		return err == nil && x.LastSeq >= seq
	})
	return x
}
