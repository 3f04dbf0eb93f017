package app_test

import (
	"context"
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

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/testenv"
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
	code, body := get("/readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"migrations":"ok"`)
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
	waitReadyz := func(want int, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := get("/readyz")
			if code == want {
				return body
			}
			require.True(t, time.Now().Before(deadline), "/readyz never answered %d: %s", want, body)
			time.Sleep(100 * time.Millisecond)
		}
	}
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
