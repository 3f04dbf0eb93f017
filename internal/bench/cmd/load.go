package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jackc/pgx/v5"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/store"
)

// The load phase runs every service as its own process, so the API's
// memory and open files are its own, and puts the service under the load a
// shared deployment sees: a burst of executions against the concurrency
// limit, hundreds of live feeds, a thousand status pollers.
const (
	loadExecutions  = 20
	loadConcurrency = 5
	loadRecords     = 40000 // per execution
	loadViewers     = 20
	feedsOnOne      = 500 // subscribers of the first execution
	feedsSpread     = 500 // spread over the next ten
	statusClients   = 1000
)

type loadResult struct {
	Seconds       float64
	Completed     int
	MaxRunning    int
	OrderKept     bool
	StartOrder    []int // submission numbers in the order they started
	Subscribers   int
	Delivered     int64
	Gaps, Drops   int64
	Refused       int64
	FeedP50       time.Duration // event time to its last subscriber
	FeedP99       time.Duration
	FeedEvents    int
	PgTxIdle      float64 // Postgres transactions/s, whole system, before any feed
	PgTxFeeds     float64 // the same with every feed open and the pipelines running
	PgTxNoFeeds   float64 // the same with the pipelines running and no feed
	FeedReads     float64 // the API's Postgres round trips per second with every feed open
	APIRSSIdle    float64
	APIRSSPeak    float64
	APIFilesIdle  int
	APIFilesPeak  int
	StatusN       int
	StatusP50     time.Duration
	StatusP99     time.Duration
	StatusRPS     float64
	StatusRunning bool
	RateN         int // GET /status at 1,000 requests/s
	RateP50       time.Duration
	RateP99       time.Duration
	// CancelAfter is the time from the cancel's 202 to the status saying
	// cancelled, for an execution with records streaming (0: not measured).
	CancelAfter time.Duration
}

type loadStack struct {
	dir   string
	procs map[string]*exec.Cmd
	admin *client.Client
	api   int
}

func (s *loadStack) stop() {
	for _, name := range []string{"api", "ingest", "processor", "projector", "broker"} {
		if p := s.procs[name]; p != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
}

func startLoadStack(dir, dbURL, apiDB, schema string) (*loadStack, error) {
	brokerPort, apiPort := freePort(), freePort()
	keyPath, ringPath := filepath.Join(dir, "audit-signing-key.pem"), filepath.Join(dir, "keyring.json")
	if _, _, err := audit.LoadOrCreateKey(keyPath, true); err != nil {
		return nil, err
	}
	if _, _, err := crypt.LoadKeyring(ringPath, true); err != nil {
		return nil, err
	}
	tokens := []string{"bench-admin-token:bench:admin"}
	for i := 0; i < loadViewers; i++ {
		tokens = append(tokens, fmt.Sprintf("bench-viewer-%02d-token:viewer%02d:viewer", i, i))
	}
	env := append(os.Environ(),
		"DSPIPE_AUDIT_SIGNING_KEY="+keyPath, "DSPIPE_KEYRING="+ringPath,
		"KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(brokerPort), "KAFKA_PARTITIONS=3",
		"DATABASE_URL="+dbURL, "DSPIPE_DB_SCHEMA="+schema,
		"DSPIPE_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort), "DSPIPE_API_TOKENS="+strings.Join(tokens, ","),
		"DSPIPE_LOCAL_ROOTS="+dir, "DSPIPE_OUTPUT_ROOT="+filepath.Join(dir, "out"),
		"DSPIPE_LOG_LEVEL=warn",
		"MAX_CONCURRENT_DATASET_PROCESSING="+strconv.Itoa(loadConcurrency),
		"ENABLE_SAFETY_VALIDATION=false", "ENABLE_QUALITY_ASSESSMENT=false", "ENABLE_BIAS_DETECTION=false", "ENABLE_FUSION=false",
	)
	s := &loadStack{dir: dir, procs: map[string]*exec.Cmd{}, api: apiPort,
		admin: client.New("http://127.0.0.1:"+strconv.Itoa(apiPort), "bench-admin-token")}
	start := func(name, bin string, args ...string) error {
		f, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
		if name == "api" {
			// The API reaches Postgres through the counting proxy.
			cmd.Env = append(append([]string(nil), env...), "DATABASE_URL="+apiDB)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s (run make build first): %w", bin, err)
		}
		s.procs[name] = cmd
		return nil
	}
	if err := start("broker", "bin/dsctl", "broker", "-port", strconv.Itoa(brokerPort), "-data-dir", filepath.Join(dir, "broker")); err != nil {
		return nil, err
	}
	for _, name := range []string{"projector", "processor", "ingest", "api"} {
		if err := start(name, filepath.Join("bin", name)); err != nil {
			s.stop()
			return nil, err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var h map[string]any
		if err := s.admin.Do(context.Background(), "GET", "/health", nil, &h); err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("load stack never became healthy")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pgTransactions reads the database's committed and rolled-back
// transactions, every client's.
func pgTransactions(ctx context.Context, conn *pgx.Conn) (tx int64) {
	_ = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&tx)
	return tx
}

func openFiles(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

func currentRSS(pid int) float64 { return statusMB(pid, "VmRSS:") }

// feedStats gathers what the subscribers saw: for each event of the
// watched execution, when its last subscriber got it.
type feedStats struct {
	mu        sync.Mutex
	last      map[uint64]time.Time
	at        map[uint64]time.Time
	delivered atomic.Int64
	gaps      atomic.Int64
	drops     atomic.Int64
	refused   atomic.Int64
	dialed    atomic.Int64
	liveFrom  time.Time
}

// subscribe reads one feed to its end, resuming after a disconnect, and
// records delivery times of the watched execution's live events.
func subscribe(ctx context.Context, c *client.Client, id string, fs *feedStats, watched bool) {
	var last uint64
	for attempt := 0; attempt < 20 && ctx.Err() == nil; attempt++ {
		conn, err := c.Dial(ctx, id, last)
		if err != nil {
			fs.refused.Add(1)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if attempt == 0 {
			fs.dialed.Add(1)
		}
		conn.SetReadLimit(4 << 20)
		for {
			var m client.Message
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
					conn.CloseNow()
					return
				}
				if websocket.CloseStatus(err) == websocket.StatusPolicyViolation {
					fs.drops.Add(1)
				}
				break
			}
			now := time.Now()
			if m.Seq != last+1 {
				fs.gaps.Add(1)
			}
			last = m.Seq
			fs.delivered.Add(1)
			if watched && m.Timestamp.After(fs.liveFrom) {
				fs.mu.Lock()
				if now.After(fs.last[m.Seq]) {
					fs.last[m.Seq], fs.at[m.Seq] = now, m.Timestamp
				}
				fs.mu.Unlock()
			}
			if m.Terminal() {
				conn.CloseNow()
				return
			}
		}
		conn.CloseNow()
	}
}

func loadPhase(ctx context.Context, root, dbURL string) (loadResult, error) {
	var res loadResult
	dir := filepath.Join(root, "load")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(dir, "data"), Records: loadRecords, Sources: 1, Format: "chatml", Seed: 7})
	if err != nil {
		return res, err
	}
	schema := fmt.Sprintf("bench_load_%d", time.Now().Unix())
	defer store.DropSchema(context.Background(), dbURL, schema)
	counter, err := startPGCounter(pgHostPort(dbURL))
	if err != nil {
		return res, err
	}
	defer counter.close()
	s, err := startLoadStack(dir, dbURL, strings.Replace(dbURL, pgHostPort(dbURL), counter.addr(), 1), schema)
	if err != nil {
		return res, err
	}
	defer s.stop()
	apiPid := s.procs["api"].Process.Pid
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	req := events.Request{Sources: []events.SourceSpec{{Name: "s1", Type: "local", Config: map[string]string{"path": sum.Files[0]}}},
		Output: events.OutputSpec{Formats: []string{"jsonl"}}}

	// Idle figures, then a first round with no feed for the baseline.
	time.Sleep(2 * time.Second)
	res.APIRSSIdle, res.APIFilesIdle = currentRSS(apiPid), openFiles(apiPid)
	tx0 := pgTransactions(ctx, conn)
	time.Sleep(5 * time.Second)
	tx1 := pgTransactions(ctx, conn)
	res.PgTxIdle = float64(tx1-tx0) / 5
	submit := func(n int) ([]string, error) {
		var ids []string
		for i := 0; i < n; i++ {
			id, err := s.admin.Submit(ctx, req)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	base, err := submit(loadConcurrency)
	if err != nil {
		return res, err
	}
	time.Sleep(time.Second)
	tx0 = pgTransactions(ctx, conn)
	t0 := time.Now()
	if err := waitAll(ctx, conn, schema, base, nil); err != nil {
		return res, err
	}
	tx1 = pgTransactions(ctx, conn)
	res.PgTxNoFeeds = float64(tx1-tx0) / time.Since(t0).Seconds()

	// The burst: twenty executions against a limit of five.
	fmt.Fprintln(os.Stderr, "load: 20 executions, 1,000 live feeds...")
	start := time.Now()
	ids, err := submit(loadExecutions)
	if err != nil {
		return res, err
	}
	fs := &feedStats{last: map[uint64]time.Time{}, at: map[uint64]time.Time{}}
	var wg sync.WaitGroup
	viewers := make([]*client.Client, loadViewers)
	for i := range viewers {
		viewers[i] = client.New(s.admin.Base, fmt.Sprintf("bench-viewer-%02d-token", i))
	}
	// The watched executions are queued behind the first five, so every
	// event of theirs is live for feeds opened now.
	watchedIDs := ids[loadConcurrency : loadConcurrency+11]
	for i := 0; i < feedsOnOne+feedsSpread; i++ {
		id, watched := watchedIDs[0], true
		if i >= feedsOnOne {
			id, watched = watchedIDs[1+(i-feedsOnOne)%10], false
		}
		wg.Add(1)
		go func(c *client.Client, id string, watched bool) {
			defer wg.Done()
			subscribe(ctx, c, id, fs, watched)
		}(viewers[i%loadViewers], id, watched)
	}
	res.Subscribers = feedsOnOne + feedsSpread
	// Wait until every feed is open before counting what they cost.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fs.dialed.Load() >= int64(res.Subscribers) {
			break
		}
	}
	fs.mu.Lock()
	fs.liveFrom = time.Now()
	fs.mu.Unlock()
	tx0 = pgTransactions(ctx, conn)
	r0 := counter.ready.Load()
	t0 = time.Now()
	sampler, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer sampler.Close(ctx)
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if f := openFiles(apiPid); f > res.APIFilesPeak {
				res.APIFilesPeak = f
			}
			if m := currentRSS(apiPid); m > res.APIRSSPeak {
				res.APIRSSPeak = m
			}
			var n int
			if err := sampler.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "executions"}.Sanitize()+` WHERE status = 'running'`).Scan(&n); err == nil && n > res.MaxRunning {
				res.MaxRunning = n
			}
		}
	}()
	// The feeds' cost is counted while they are all open: until the ten
	// executions they watch have finished.
	if err := waitAll(ctx, conn, schema, watchedIDs, nil); err != nil {
		return res, err
	}
	tx1 = pgTransactions(ctx, conn)
	r1 := counter.ready.Load()
	secs := time.Since(t0).Seconds()
	res.PgTxFeeds, res.FeedReads = float64(tx1-tx0)/secs, float64(r1-r0)/secs
	var started []time.Time
	if err := waitAll(ctx, conn, schema, ids, &started); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	close(stopSampling)
	<-sampled
	wg.Wait()
	res.Delivered, res.Gaps, res.Drops, res.Refused = fs.delivered.Load(), fs.gaps.Load(), fs.drops.Load(), fs.refused.Load()
	for _, id := range ids {
		st, err := s.admin.Status(ctx, id)
		if err == nil && st["status"] == "completed" {
			res.Completed++
		}
	}
	order := make([]int, len(started))
	for i := range order {
		order[i] = i + 1
	}
	sort.SliceStable(order, func(i, j int) bool { return started[order[i]-1].Before(started[order[j]-1]) })
	res.StartOrder = order
	res.OrderKept = sort.IntsAreSorted(order)
	var lat []time.Duration
	for seq, t := range fs.last {
		lat = append(lat, t.Sub(fs.at[seq]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.FeedEvents, res.FeedP50, res.FeedP99 = len(lat), lat[len(lat)/2], lat[len(lat)*99/100]
	}

	// A thousand status pollers while an execution runs.
	fmt.Fprintln(os.Stderr, "load: 1,000 GET /status clients...")
	big := req
	big.Sources = nil
	for i := 0; i < 16; i++ {
		big.Sources = append(big.Sources, events.SourceSpec{Name: fmt.Sprintf("s%d", i+1), Type: "local", Config: map[string]string{"path": sum.Files[0]}})
	}
	id, err := s.admin.Submit(ctx, big)
	if err != nil {
		return res, err
	}
	time.Sleep(time.Second)
	pollers := client.New(s.admin.Base, s.admin.Token)
	pollers.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: statusClients, MaxIdleConnsPerHost: statusClients}}
	res.StatusN, res.StatusP50, res.StatusP99, res.StatusRPS = loadStatus(ctx, pollers, id, statusClients, 5*time.Second)
	res.RateN, res.RateP50, res.RateP99 = loadStatusRate(ctx, pollers, id, 1000, 5*time.Second)
	if st, err := s.admin.Status(ctx, id); err == nil {
		res.StatusRunning = st["status"] == "running"
	}
	// Cancel it while records stream, and time the status catching up.
	if res.StatusRunning {
		fmt.Fprintln(os.Stderr, "load: cancelling a running execution...")
		if err := s.admin.Do(ctx, "POST", "/"+id+"/cancel", map[string]string{"reason": "bench"}, nil); err != nil {
			return res, err
		}
		t0 := time.Now()
		for time.Since(t0) < time.Minute {
			if st, err := s.admin.Status(ctx, id); err == nil && st["status"] == "cancelled" {
				res.CancelAfter = time.Since(t0)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return res, nil
}

// waitAll waits until every execution has finished, asking Postgres
// directly (the API's own queries are being counted); started, when given,
// gets their start times in submission order.
func waitAll(ctx context.Context, conn *pgx.Conn, schema string, ids []string, started *[]time.Time) error {
	deadline := time.Now().Add(10 * time.Minute)
	for _, id := range ids {
		for {
			var status string
			var at *time.Time
			err := conn.QueryRow(ctx, `SELECT status, started_at FROM `+pgx.Identifier{schema, "executions"}.Sanitize()+` WHERE execution_id = $1`,
				id).Scan(&status, &at)
			if err == nil && (status == "completed" || status == "failed" || status == "cancelled") {
				if started != nil && at != nil {
					*started = append(*started, *at)
				}
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("execution %s did not finish in 10 minutes", id)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

func pgHostPort(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "127.0.0.1:5432"
	}
	return u.Host
}

func writeLoad(b *strings.Builder, r loadResult) {
	b.WriteString("\n## Load\n\n")
	fmt.Fprintf(b, "Every service as its own process (`bin/api`, `bin/ingest`, `bin/processor`, `bin/projector`, `bin/dsctl broker`), "+
		"`MAX_CONCURRENT_DATASET_PROCESSING=%d`, %d viewer users plus an admin; each execution reads one generated file of %d conversations.\n\n",
		loadConcurrency, loadViewers, loadRecords)
	b.WriteString("| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(b, "| %d executions submitted at once: completed | %d of %d in %.1f s | all %s |\n", loadExecutions, r.Completed, loadExecutions, r.Seconds,
		mark(r.Completed == loadExecutions))
	fmt.Fprintf(b, "| most running at once (sampled every 100 ms) | %d | ≤ %d %s |\n", r.MaxRunning, loadConcurrency, mark(r.MaxRunning <= loadConcurrency))
	fmt.Fprintf(b, "| started in submission order (submission numbers in start order: %v) | %v | yes %s |\n", r.StartOrder, r.OrderKept, mark(r.OrderKept))
	fmt.Fprintf(b, "| live feeds: %d on the sixth execution (queued when they connect), %d over the next ten | %d messages, %d gaps, %d disconnected as too slow, %d refused | no gap %s |\n",
		feedsOnOne, feedsSpread, r.Delivered, r.Gaps, r.Drops, r.Refused, mark(r.Gaps == 0))
	fmt.Fprintf(b, "| an event's time to reach the last of %d subscribers, p50 / p99 (%d live events) | %s / %s | |\n",
		feedsOnOne, r.FeedEvents, r.FeedP50.Round(time.Millisecond), r.FeedP99.Round(time.Millisecond))
	fmt.Fprintf(b, "| Postgres transactions/s, whole system: idle / %d pipelines, no feed / pipelines and %d feeds | %.0f / %.0f / %.0f | |\n",
		loadConcurrency, r.Subscribers, r.PgTxIdle, r.PgTxNoFeeds, r.PgTxFeeds)
	fmt.Fprintf(b, "| the API's Postgres round trips per second with %d feeds open (counted by a proxy in front of the API's connection) | %.1f | < 20 %s |\n",
		r.Subscribers, r.FeedReads, mark(r.FeedReads < 20))
	fmt.Fprintf(b, "| API process: RSS idle / peak with the feeds | %.0f MB / %.0f MB | |\n", r.APIRSSIdle, r.APIRSSPeak)
	fmt.Fprintf(b, "| API process: open files idle / peak with the feeds | %d / %d | |\n", r.APIFilesIdle, r.APIFilesPeak)
	fmt.Fprintf(b, "| `GET /status`, %d concurrent clients for 5 s, an execution running (%v): requests, req/s | %d, %.0f | |\n",
		statusClients, r.StatusRunning, r.StatusN, r.StatusRPS)
	fmt.Fprintf(b, "| `GET /status` p50 / p99 under that load | %s / %s | |\n", r.StatusP50.Round(100*time.Microsecond), r.StatusP99.Round(100*time.Microsecond))
	rateVerdict := "p99 < 50 ms (NOT met)"
	if r.RateP99 < 50*time.Millisecond {
		rateVerdict = "p99 < 50 ms (met)"
	}
	fmt.Fprintf(b, "| `GET /status` at a steady 1,000 requests/s for 5 s (open loop, the same execution running): p50 / p99 of %d | %s / %s | %s |\n",
		r.RateN, r.RateP50.Round(100*time.Microsecond), r.RateP99.Round(100*time.Microsecond), rateVerdict)
	cancel, verdict := "not measured (the execution had ended)", ""
	if r.CancelAfter > 0 {
		cancel, verdict = r.CancelAfter.Round(time.Millisecond).String(), "< 1 s (NOT met)"
		if r.CancelAfter < time.Second {
			verdict = "< 1 s (met)"
		}
	}
	fmt.Fprintf(b, "| cancel of that execution while records stream: from the 202 to `GET /status` saying cancelled | %s | %s |\n", cancel, verdict)
	b.WriteString("\nFeeds are served from the API's one tail of the event topic: a feed reads Postgres once when it connects " +
		"(the execution's row, and the events older than the hub's memory of 256 per execution), never on a timer. " +
		"Before this, each feed polled Postgres every 250 ms: 500 feeds made about 1,900 transactions a second. " +
		"The thousand status pollers are closed loops on two cores shared with the pipeline and the load generator, so their latency is mostly queueing.\n")
}

// loadStatusRate sends GET /status at a fixed rate for d (an open loop:
// latency counts from when a request was due, so a slow server is not
// excused by the generator waiting for it) and returns p50 and p99.
func loadStatusRate(ctx context.Context, c *client.Client, id string, rps int, d time.Duration) (int, time.Duration, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	sem := make(chan struct{}, statusClients)
	start := time.Now()
	interval := time.Second / time.Duration(rps)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(due))
		sem <- struct{}{}
		wg.Add(1)
		go func(due time.Time) {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/api/v1/datasets/status/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+c.Token)
			resp, err := c.HTTP.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				lat = append(lat, time.Since(due))
				mu.Unlock()
			}
		}(due)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return 0, 0, 0
	}
	return len(lat), lat[len(lat)/2], lat[len(lat)*99/100]
}
