// Package e2e runs the four services and the embedded broker as separate OS
// processes against a real Postgres, as production would, and checks the
// whole flow through the REST API and the WebSocket feed, including a
// processor killed with SIGKILL mid-execution.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
	"github.com/dspipe/dspipe/internal/testwait"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dspipe-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/dspipe/dspipe/cmd/...")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
}

type cluster struct {
	brokerArgs []string
	// external is set when the cluster runs on Apache Kafka through
	// scripts/kafka.sh (DSPIPE_TEST_KAFKA_BROKERS) instead of dsctl broker.
	external bool
	t        *testing.T
	env      []string
	// killPhase makes killMidExecution wait for a phase before it kills:
	// "acquiring" (ingest still committing chunks) or "acquired" (every
	// record committed); empty kills once processing is under way.
	killPhase string
	dir       string
	schema    string
	// brokerPort is the embedded broker's port (0 when external).
	brokerPort int
	// outputFS is set when the output root is a small tmpfs of its own.
	outputFS bool
	procs    map[string]*proc
	client   *client.Client
}

func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	// "processor-1" is instance 1 of bin/processor.
	service, instance, _ := strings.Cut(name, "-")
	bin := filepath.Join(binDir, service)
	if name == "broker" {
		bin = filepath.Join(binDir, "dsctl")
	}
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(c.t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = c.env
	if instance != "" {
		cmd.Env = append(append([]string(nil), c.env...), "DSPIPE_INSTANCE_ID="+instance)
	}
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(c.t, cmd.Start())
	f.Close()
	c.procs[name] = &proc{name: name, cmd: cmd, log: logPath}
}

func (c *cluster) stop(name string, sig syscall.Signal) {
	p := c.procs[name]
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	delete(c.procs, name)
}

// dsctl runs the CLI with the cluster's environment and returns its output.
func (c *cluster) dsctl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "dsctl"), args...)
	cmd.Env = append(c.env, "DSPIPE_API_URL="+c.client.Base, "DSPIPE_TOKEN="+c.client.Token)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "dsctl %v:\n%s", args, out)
	return string(out)
}

func (c *cluster) dumpLogs() {
	for _, p := range c.procs {
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		c.t.Logf("--- %s log tail:\n%s", p.name, strings.Join(lines, "\n"))
	}
}

func waitPort(t *testing.T, port int) {
	testwait.For(t, 30*time.Second, fmt.Sprintf("nothing listens on port %d", port), func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// kafkaScript runs scripts/kafka.sh (start, kill) for the external broker.
func kafkaScript(t *testing.T, arg string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "kafka.sh"))
	require.NoError(t, err)
	out, err := exec.Command("bash", script, arg).CombinedOutput()
	require.NoError(t, err, "scripts/kafka.sh %s:\n%s", arg, out)
}

// restartBroker SIGKILLs the broker and starts it again on its data.
func (c *cluster) restartBroker(t *testing.T) {
	if c.external {
		start := time.Now()
		kafkaScript(t, "kill")
		kafkaScript(t, "start")
		t.Logf("Apache Kafka killed with SIGKILL and restarted in %s", time.Since(start).Round(time.Second))
		return
	}
	c.stop("broker", syscall.SIGKILL)
	c.start("broker", c.brokerArgs...)
}

// startCluster runs every service as its own process, on the embedded
// broker (dsctl broker), or on Apache Kafka when external is set.
func startCluster(t *testing.T, external bool) *cluster {
	return startClusterWith(t, external, clusterOpts{})
}

type clusterOpts struct {
	// instances of processor and of ingest (1 when 0); instance i > 0 is
	// named "processor-i".
	instances int
	// env adds to (and overrides) every service's environment.
	env []string
	// brokerSync makes the embedded broker fsync before acknowledging.
	brokerSync bool
	// outputFS, when set, is the size of a tmpfs mounted on the output
	// root before the services start (a round of the fault campaign
	// fills it); mounted reports whether that worked (it needs root).
	outputFS string
}

// services lists the service processes in start order.
func (o clusterOpts) services() []string {
	out := []string{"projector"}
	for _, s := range []string{"processor", "ingest"} {
		out = append(out, s)
		for i := 1; i < o.instances; i++ {
			out = append(out, s+"-"+strconv.Itoa(i))
		}
	}
	return append(out, "api")
}

func startClusterWith(t *testing.T, external bool, o clusterOpts) *cluster {
	_, schema := testenv.Schema(t)
	dir := t.TempDir()
	brokerPort, apiPort := freePort(t), freePort(t)
	brokers := "127.0.0.1:" + strconv.Itoa(brokerPort)
	prefix := ""
	if external {
		brokers = os.Getenv("DSPIPE_TEST_KAFKA_BROKERS")
		// The prefix also names groups and transactional ids: runs never
		// see each other on the shared broker.
		prefix = "e2e_" + strings.ToLower(strings.ReplaceAll(schema, "_", "")) + "."
	}
	keyPath := filepath.Join(dir, "audit-signing-key.pem")
	if _, _, err := audit.LoadOrCreateKey(keyPath, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := crypt.LoadKeyring(filepath.Join(dir, "keyring.json"), true); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"DSPIPE_AUDIT_SIGNING_KEY="+keyPath,
		"DSPIPE_KEYRING="+filepath.Join(dir, "keyring.json"),
		"KAFKA_BROKERS="+brokers,
		"KAFKA_TOPIC_PREFIX="+prefix,
		"KAFKA_PARTITIONS=3",
		"DATABASE_URL="+testenv.DatabaseURL(),
		"DSPIPE_DB_SCHEMA="+schema,
		"DSPIPE_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort),
		"DSPIPE_LOCAL_ROOTS="+dir,
		"DSPIPE_OUTPUT_ROOT="+filepath.Join(dir, "out"),
		// These tests check the spine's counts record for record; the
		// safety stage (which quarantines some generated records) has its
		// own tests in internal/app.
		"ENABLE_SAFETY_VALIDATION=false",
		"ENABLE_QUALITY_ASSESSMENT=false",
		"ENABLE_BIAS_DETECTION=false",
		"ENABLE_FUSION=false",
		// Snapshots every few events: every kill and restart here reloads
		// from a snapshot and the events after it.
		"DSPIPE_SNAPSHOT_EVERY=20",
	)
	env = append(env, o.env...)
	mounted := false
	if o.outputFS != "" {
		out := filepath.Join(dir, "out")
		require.NoError(t, os.MkdirAll(out, 0o755))
		if exec.Command("mount", "-t", "tmpfs", "-o", "size="+o.outputFS, "tmpfs", out).Run() == nil {
			t.Cleanup(func() { _ = exec.Command("umount", "-l", out).Run() })
			mounted = true
		}
	}
	c := &cluster{outputFS: mounted, t: t, env: env, dir: dir, schema: schema, procs: map[string]*proc{}, external: external,
		client: client.New("http://127.0.0.1:"+strconv.Itoa(apiPort), "dev-admin-token")}
	if !external {
		c.brokerArgs = []string{"broker", "-port", strconv.Itoa(brokerPort), "-data-dir", filepath.Join(dir, "broker")}
		if o.brokerSync {
			c.brokerArgs = append(c.brokerArgs, "-sync")
		}
		c.brokerPort = brokerPort
		c.start("broker", c.brokerArgs...)
		waitPort(t, brokerPort)
	}
	for _, s := range o.services() {
		c.start(s)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		services := append(o.services(), "broker")
		for i := len(services) - 1; i >= 0; i-- {
			c.stop(services[i], syscall.SIGTERM)
		}
	})
	testwait.For(t, 60*time.Second, "the API never became healthy", func() bool {
		var h map[string]any
		return c.client.Do(context.Background(), "GET", "/health", nil, &h) == nil
	})
	return c
}

func request(files []string) events.Request {
	req := events.Request{Output: events.OutputSpec{Formats: []string{"jsonl"}, Compression: "zstd"}}
	for i, f := range files {
		req.Sources = append(req.Sources, events.SourceSpec{Name: fmt.Sprintf("s%d", i+1), Type: "local",
			Config: map[string]string{"path": f}, Priority: i + 1})
	}
	return req
}

// outputKeys reads data.jsonl.zst and returns source#position of each line.
func outputKeys(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := zstd.NewReader(f)
	require.NoError(t, err)
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	var keys []string
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, `"source":{"name":"`)
		require.GreaterOrEqual(t, i, 0)
		rest := line[i+len(`"source":{"name":"`):]
		name := rest[:strings.IndexByte(rest, '"')]
		j := strings.Index(rest, `"position":`)
		pos := rest[j+len(`"position":`):]
		pos = pos[:strings.IndexAny(pos, ",}")]
		keys = append(keys, name+"#"+pos)
	}
	require.NoError(t, sc.Err())
	return keys
}

func TestSeparateProcessesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process end-to-end test skipped in -short mode")
	}
	endToEnd(t, startCluster(t, false))
}

// TestSeparateProcessesEndToEndOnApacheKafka runs the same test on a real
// Apache Kafka broker (scripts/kafka.sh; DSPIPE_TEST_KAFKA_BROKERS), killing
// and restarting the Java broker through the script.
func TestSeparateProcessesEndToEndOnApacheKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process end-to-end test skipped in -short mode")
	}
	if os.Getenv("DSPIPE_TEST_KAFKA_BROKERS") == "" {
		t.Skip("SKIPPED: DSPIPE_TEST_KAFKA_BROKERS is unset (eval \"$(scripts/kafka.sh start)\" runs Apache Kafka)")
	}
	t.Logf("Apache Kafka %s at %s", os.Getenv("DSPIPE_TEST_KAFKA_VERSION"), os.Getenv("DSPIPE_TEST_KAFKA_BROKERS"))
	endToEnd(t, startCluster(t, true))
}

func endToEnd(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	t.Run("counts agree across output, statistics and read models", func(t *testing.T) {
		sum, err := gen.Write(gen.Options{Dir: filepath.Join(c.dir, "small"), Records: 5000, Sources: 3, Format: "mixed", Compression: "zstd", Seed: 21})
		require.NoError(t, err)
		id, err := c.client.Submit(ctx, request(sum.Files))
		require.NoError(t, err)
		var last client.Message
		n := 0
		require.NoError(t, c.client.Watch(ctx, id, 0, func(m client.Message) error { last = m; n++; return nil }))
		require.Equal(t, "completed", last.Data["status"])

		var stats map[string]any
		require.Eventually(t, func() bool {
			stats, err = c.client.Statistics(ctx, id)
			return err == nil && stats["status"] == "completed"
		}, 30*time.Second, 50*time.Millisecond)
		recs := stats["records"].(map[string]any)
		require.EqualValues(t, 5000, recs["total"])
		require.EqualValues(t, 5000, recs["valid"])
		keys := outputKeys(t, filepath.Join(stats["output_dir"].(string), "data.jsonl.zst"))
		require.Len(t, keys, 5000)
		var status map[string]any
		// The trail ends with the final seal, one event after the terminal
		// one the feed closes on.
		require.Eventually(t, func() bool {
			status, err = c.client.Status(ctx, id)
			return err == nil && status["last_seq"] == float64(n+1)
		}, 30*time.Second, 50*time.Millisecond, "the feed delivered every event up to the terminal one: %d, last_seq %v", n, status["last_seq"])
		require.EqualValues(t, 5000, status["valid_records"])
		for _, sr := range stats["sources"].([]any) {
			src := sr.(map[string]any)
			require.EqualValues(t, src["records"], src["valid_records"])
		}

		// The CLI an auditor and an operator use, against the same cluster.
		out := c.dsctl(t, "audit", "verify", id)
		require.Contains(t, out, fmt.Sprintf("audit trail of %s (from api) verifies: %d events", id, n+1))
		require.Contains(t, out, "sealed")
		require.Contains(t, c.dsctl(t, "status", id), `"status": "completed"`)
		require.Contains(t, c.dsctl(t, "stats", id), `"valid": 5000`)
		rebuilt := "rebuilt_" + strings.ReplaceAll(strings.ToLower(id), "ds_", "")
		require.Contains(t, c.dsctl(t, "projector", "rebuild", "-schema", rebuilt), "rebuilt schema "+rebuilt)
		t.Cleanup(func() { _ = store.DropSchema(context.Background(), testenv.DatabaseURL(), rebuilt) })

		// dsctl process submits, follows the feed to the end and prints a
		// summary, or with -json the whole statistics.
		out = c.dsctl(t, "process", "-quiet", "-compression", "gzip", "-source", "one="+sum.Files[0])
		require.Contains(t, out, ": completed")
		require.Regexp(t, `output rows +[1-9][0-9]*\n`, out)
		out = c.dsctl(t, "process", "-quiet", "-json", "-compression", "gzip", "-source", "one="+sum.Files[0])
		require.Contains(t, out, `"status": "completed"`)
		require.Contains(t, out, "data.jsonl.gz")
	})

	t.Run("kcat lists the embedded broker's topics", func(t *testing.T) {
		kcat, err := exec.LookPath("kcat")
		if err != nil {
			t.Skip("SKIPPED: kcat is not installed (.ci/run installs it from Debian's packages)")
		}
		var brokers string
		for _, e := range c.env {
			if strings.HasPrefix(e, "KAFKA_BROKERS=") {
				brokers = strings.TrimPrefix(e, "KAFKA_BROKERS=")
			}
		}
		out, err := exec.Command(kcat, "-b", brokers, "-L", "-m", "10").CombinedOutput()
		require.NoError(t, err, string(out))
		require.Contains(t, string(out), "dataset.events")
		require.Contains(t, string(out), "dataset.records.raw")
	})

	t.Run("a processor killed with SIGKILL mid-execution loses and duplicates nothing", func(t *testing.T) {
		c.killMidExecution(ctx, t, "big", 22, func() {
			c.stop("processor", syscall.SIGKILL)
			c.start("processor")
		})
	})

	// Killed while the output stage writes: the restarted processor
	// writes the whole output again (the first attempt never became
	// visible: files are staged and renamed in one step).
	t.Run("a processor killed with SIGKILL during the output stage writes a complete output", func(t *testing.T) {
		c.killPhase = "output"
		defer func() { c.killPhase = "" }()
		c.killMidExecution(ctx, t, "big-output", 25, func() {
			c.stop("processor", syscall.SIGKILL)
			c.start("processor")
		})
	})

	// The broker is killed twice: while ingest is still committing chunks
	// (which lost a contiguous run of one source before the embedded
	// broker wrote abort markers for transactions a crash left open, see
	// TestBrokerCrashTransactionRecovery), and once acquisition is done.
	for i, phase := range []string{"acquiring", "acquired"} {
		t.Run("a broker killed with SIGKILL while "+phase+" and restarted loses and duplicates nothing", func(t *testing.T) {
			c.killPhase = phase
			defer func() { c.killPhase = "" }()
			c.killMidExecution(ctx, t, "big-broker-"+phase, uint64(23+i), func() { c.restartBroker(t) })
		})
	}
}

// killMidExecution submits 150,000 records, runs kill once processing is
// under way, and checks the output holds every record exactly once.
func (c *cluster) killMidExecution(ctx context.Context, t *testing.T, dir string, seed uint64, kill func()) {
	const n = 150000
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(c.dir, dir), Records: n, Sources: 2, Format: "chatml", Seed: seed})
	require.NoError(t, err)
	id, err := c.client.Submit(ctx, request(sum.Files))
	require.NoError(t, err)
	started := 10000.0
	switch c.killPhase {
	case "acquiring":
		started = 1000 // acquisition of 150,000 records must still be running
	case "output":
		started = n - 1
	}
	require.Eventually(t, func() bool {
		st, err := c.client.Status(ctx, id)
		if err != nil || st["records_processed"].(float64) <= started {
			return false
		}
		switch total := st["total_records"].(float64); c.killPhase {
		case "acquiring":
			return total == 0
		case "acquired":
			return total == n
		case "output":
			return st["current_stage"] == "output"
		}
		return true
	}, 2*time.Minute, 5*time.Millisecond, "processing never got going")
	st, err := c.client.Status(ctx, id)
	require.NoError(t, err)
	require.NotEqual(t, "completed", st["status"], "the kill happens mid-execution")
	kill()

	var last client.Message
	require.NoError(t, c.client.Watch(ctx, id, 0, func(m client.Message) error { last = m; return nil }))
	require.Equal(t, "completed", last.Data["status"], "execution completes after the restart: %v", last.Data)
	var stats map[string]any
	require.Eventually(t, func() bool {
		stats, err = c.client.Statistics(ctx, id)
		return err == nil && stats["status"] == "completed"
	}, 30*time.Second, 50*time.Millisecond)
	keys := outputKeys(t, filepath.Join(stats["output_dir"].(string), "data.jsonl.zst"))
	if len(keys) != n {
		t.Logf("output holds %d of %d records; missing: %s", len(keys), n, missingRanges(keys))
	}
	require.Equal(t, n, len(keys), "every valid input record is in the output")
	partial, _ := filepath.Glob(filepath.Join(c.dir, "out", "*.partial-*"))
	require.Empty(t, partial, "no half-written output directory is left behind")
	seen := make(map[string]struct{}, n)
	for _, k := range keys {
		_, dup := seen[k]
		require.False(t, dup, "record %s written twice", k)
		seen[k] = struct{}{}
	}
}

// missingRanges summarises which source#position keys are absent, as
// ranges per source, so a loss can be traced to chunks.
func missingRanges(keys []string) string {
	have := map[string]map[int]bool{}
	maxPos := map[string]int{}
	for _, k := range keys {
		name, pos, _ := strings.Cut(k, "#")
		p, _ := strconv.Atoi(pos)
		if have[name] == nil {
			have[name] = map[int]bool{}
		}
		have[name][p] = true
		maxPos[name] = max(maxPos[name], p)
	}
	var b strings.Builder
	for name, ps := range have {
		start := -1
		for p := 1; p <= maxPos[name]+1; p++ {
			switch {
			case !ps[p] && p <= maxPos[name] && start < 0:
				start = p
			case (ps[p] || p > maxPos[name]) && start >= 0:
				fmt.Fprintf(&b, "%s %d-%d; ", name, start, p-1)
				start = -1
			}
		}
		fmt.Fprintf(&b, "%s max %d; ", name, maxPos[name])
	}
	return b.String()
}
