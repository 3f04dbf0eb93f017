package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/testenv"
	"github.com/dspipe/dspipe/internal/testwait"
)

// pgGate is a TCP proxy in front of Postgres that the test can close and
// reopen on the same port: Postgres "stopped" and "back" for the services
// behind it, without touching the server other tests use.
type pgGate struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newPGGate(t *testing.T) *pgGate {
	u, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	g := &pgGate{t: t, target: u.Host}
	g.open("127.0.0.1:0")
	t.Cleanup(g.close)
	return g
}

func (g *pgGate) url() string {
	u, _ := url.Parse(testenv.DatabaseURL())
	u.Host = g.addr
	return u.String()
}

func (g *pgGate) open(addr string) {
	ln, err := net.Listen("tcp", addr)
	require.NoError(g.t, err)
	g.mu.Lock()
	g.ln, g.addr = ln, ln.Addr().String()
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", g.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, up)
			g.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// close refuses new connections and cuts the open ones.
func (g *pgGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		_ = g.ln.Close()
		g.ln = nil
	}
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

// TestOpsEndpoints: the API serves /livez, /readyz and /metrics; /readyz
// waits for the broker, Postgres, the migrations and the consumer groups,
// turns not ready when Postgres goes away and ready again when it is back,
// and /metrics shows the runtime, the Postgres pool, executions by status,
// the review queue and the API's own requests.
func TestOpsEndpoints(t *testing.T) {
	gate := newPGGate(t)
	s := startStack(t, stackOpts{env: map[string]string{"DATABASE_URL": gate.url()}})
	get := func(path string) (int, string) {
		t.Helper()
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(s.client.Base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/livez")
	require.Equal(t, http.StatusOK, code)
	waitReadyz := func(want int, within time.Duration) string {
		t.Helper()
		var body string
		testwait.For(t, within, fmt.Sprintf("/readyz never answered %d", want), func() bool {
			var code int
			code, body = get("/readyz")
			return code == want
		})
		return body
	}
	// Ready once the consumer groups have taken this process in.
	body := waitReadyz(http.StatusOK, 30*time.Second)
	require.Contains(t, body, `"migrations":"ok"`)
	require.Contains(t, body, `"consumer_groups":"ok"`)
	require.Contains(t, body, `"kafka":"ok"`)

	// One request through the API, then the metrics.
	code, _ = get("/api/v1/datasets/health")
	require.Equal(t, http.StatusOK, code)
	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "dspipe_pg_pool_total_conns", `dspipe_executions{status="running"}`,
		"dspipe_review_queue_depth", `dspipe_api_requests_total{code="2xx",method="GET",route="/api/v1/datasets/health"}`,
		"dspipe_api_request_duration_seconds_bucket", "dspipe_api_websocket_feeds", "dspipe_kafka_lag_scrape_errors 0", "dspipe_execution_failures"} {
		require.Contains(t, body, name)
	}
	require.NotRegexp(t, `ds_[0-9]+_[0-9a-f]+`, body, "no execution id in metrics")

	// Postgres goes away: not ready, and it says why.
	addr := gate.addr
	gate.close()
	body = waitReadyz(http.StatusServiceUnavailable, 20*time.Second)
	require.Contains(t, body, `"status":"not ready"`)
	require.True(t, strings.Contains(body, `"postgres":`) && !strings.Contains(body, `"postgres":"ok"`), body)

	// Back: ready again.
	gate.open(addr)
	waitReadyz(http.StatusOK, 30*time.Second)
}

// TestDsctlUpHelpPrintsHelp: `dsctl up -h` prints what up does and exits,
// instead of starting the stack; an argument up does not take is an error.
func TestDsctlUpHelpPrintsHelp(t *testing.T) {
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "dsctl"))
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		t.Skip("SKIPPED: bin/dsctl not built (make test builds it first)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "up", "-h").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "usage: dsctl up")
	out, err = exec.CommandContext(ctx, bin, "up", "--port", "1").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "up takes no arguments")
}

// TestASlowFeedGetsEveryEventAndStaysOpen: a WebSocket client that reads
// slowly through a burst of hundreds of review events (more than the hub
// holds for it) is not disconnected; it receives every event once, in
// order, the ones it fell behind on from Postgres.
func TestASlowFeedGetsEveryEventAndStaysOpen(t *testing.T) {
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true"}})
	p := filepath.Join(s.data, "crisis.jsonl")
	var b strings.Builder
	for i := 0; i < 700; i++ {
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"Last month I tried to kill myself and woke up in the hospital (%d)."},{"role":"assistant","content":"I am glad you are here."}]}`+"\n", i)
	}
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := s.client.Submit(ctx, localRequest(p))
	require.NoError(t, err)
	u := strings.Replace(s.client.Base, "http://", "ws://", 1) + "/api/v1/datasets/ws/" + id + "?token=dev-admin-token"
	c, _, err := websocket.Dial(ctx, u, nil)
	require.NoError(t, err)
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	var seqs []uint64
	reviews := 0
	for {
		var m client.Message
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("the feed closed after seq %d: %v", seqs[len(seqs)-1], err)
		}
		seqs = append(seqs, m.Seq)
		if m.EventType == "dataset_review" {
			reviews++
		}
		if len(seqs) < 400 {
			time.Sleep(3 * time.Millisecond) // slow through the burst
		}
		if m.Terminal() {
			break
		}
	}
	for i, q := range seqs {
		require.Equal(t, uint64(i+1), q, "every event once, in order")
	}
	require.GreaterOrEqual(t, reviews, 300, "the burst was larger than what the hub holds for a subscriber")

	// The processor's figures are on the same /metrics (one process here).
	resp, err := http.Get(s.client.Base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), `dspipe_records_total{outcome="quarantined",stage="safety_validation"}`)
	require.Contains(t, string(body), `dspipe_stage_duration_seconds_bucket{stage="output"`)
	// franz-go's own client metrics (kprom), one set per long-lived client.
	for _, c := range []string{"processor", "ingest-records", "api-producer"} {
		require.Regexp(t, `dspipe_kafka_produce_records_total\{client="`+c+`",node_id="\d+",topic="[^"]+"\} [1-9]`, string(body), c)
	}
	require.Regexp(t, `dspipe_kafka_fetch_records_total\{client="api-feed",node_id="\d+",topic="[^"]+"\} [1-9]`, string(body))
	require.Regexp(t, `dspipe_kafka_connects_total\{client="projector-[^"]+",node_id="\d+"\} [1-9]`, string(body))
}

// TestAnAcceptedExecutionIsNeverA404: while the projector cannot write
// (a transaction holds the read models' table), a submission still answers
// 202 within its bound, and its owner's status and feed requests wait for
// the execution instead of answering 404; another user's request for the
// same id is a 404 at once, as for any id they cannot see.
func TestAnAcceptedExecutionIsNeverA404(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: twoUsers})
	ctx := context.Background()
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 200, Sources: 1, Format: "chatml", Seed: 3})
	require.NoError(t, err)
	conn := sqlConn(t, s)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE executions IN EXCLUSIVE MODE") // reads go on, writes wait
	require.NoError(t, err)
	alice, bob := s.as("alice-token-1"), s.as("bobby-token-1")
	id, err := alice.Submit(ctx, localRequest(sum.Files...))
	require.NoError(t, err)
	var st map[string]any
	require.Equal(t, 404, apiStatus(bob.DoV1(ctx, "GET", "/datasets/status/"+id, nil, &st)), "not bob's")
	go func() {
		time.Sleep(time.Second) // the projector is held back for a second
		_ = tx.Rollback(ctx)
	}()
	require.NoError(t, alice.DoV1(ctx, "GET", "/datasets/status/"+id, nil, &st), "the owner's status waits for the projector")
	require.Equal(t, id, st["execution_id"])
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last client.Message
	require.NoError(t, alice.Watch(wctx, id, 0, func(m client.Message) error { last = m; return nil }))
	require.Equal(t, "completed", last.Data["status"])
}
