package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/remotetest"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
	"github.com/dspipe/dspipe/internal/testwait"
)

// The fault campaign (make chaos): on each broker, a cluster of separate
// processes with two processors and two ingest instances runs the same
// multi-source execution round after round while one fault hits it at a
// random point, and every round checks the invariants. Seeded: the same
// seed picks the same faults at the same points.

// faults, in the order a campaign cycles through them (shuffled per cycle).
var faults = []string{
	"kill api", "kill ingest", "kill processor", "kill processor and ingest", "kill projector",
	"kill broker", "restart postgres", "drop broker connections", "source reset mid-object", "output disk full",
}

const chaosRecords = 24000 + 6000 // three local files and one Hub dataset

type roundResult struct {
	round   int
	fault   string
	at      string
	held    bool
	skipped string
	problem string
	note    string // how a round that was meant to fail ended
	secs    float64
}

type campaignReport struct {
	broker string
	rounds []roundResult
}

func TestChaos(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("DSPIPE_CHAOS_ROUNDS"))
	if rounds <= 0 {
		t.Skip("SKIPPED: make chaos runs the fault campaign (DSPIPE_CHAOS_ROUNDS)")
	}
	seed := uint64(1)
	if v := os.Getenv("DSPIPE_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "DSPIPE_CHAOS_SEED")
		seed = n
	}
	var reports []campaignReport
	t.Run("kfake", func(t *testing.T) { reports = append(reports, campaign(t, false, seed, rounds)) })
	if testenv.ExternalKafka() != nil {
		t.Run("apache-kafka", func(t *testing.T) { reports = append(reports, campaign(t, true, seed, rounds)) })
	} else if os.Getenv("CI") != "" {
		t.Error("DSPIPE_TEST_KAFKA_BROKERS is unset: the campaign must also run on Apache Kafka")
	}
	if out := os.Getenv("DSPIPE_CHAOS_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, []byte(reliabilityReport(seed, rounds, reports)), 0o644))
	}
}

func campaign(t *testing.T, external bool, seed uint64, rounds int) campaignReport {
	rep := campaignReport{broker: "kfake (`dsctl broker -sync`)"}
	if external {
		rep.broker = "Apache Kafka " + os.Getenv("DSPIPE_TEST_KAFKA_VERSION")
	}
	hub := remotetest.StartHub(t)
	proxy := remotetest.NewCutProxy(t, strings.TrimPrefix(hub.URL, "http://"))
	// The output root is a small file system of its own, so a round can
	// fill it; without the privilege to mount one, that fault is skipped.
	c := startClusterWith(t, external, clusterOpts{instances: 2, brokerSync: true, outputFS: "96m", env: []string{
		"HF_ENDPOINT=http://" + proxy.Addr, "HF_TOKEN=" + hub.Token, "DSPIPE_ALLOW_PRIVATE_ENDPOINTS=true",
	}})
	ctx := context.Background()
	outRoot, mounted := filepath.Join(c.dir, "out"), c.outputFS

	sum, err := gen.Write(gen.Options{Dir: filepath.Join(c.dir, "chaos"), Records: 24000, Sources: 3, Format: "mixed", Seed: seed})
	require.NoError(t, err)
	hubFile, err := gen.Write(gen.Options{Dir: filepath.Join(c.dir, "chaos-hub"), Records: 6000, Sources: 1, Format: "chatml", Seed: seed + 1})
	require.NoError(t, err)
	hubBytes, err := os.ReadFile(hubFile.Files[0])
	require.NoError(t, err)
	hub.Put("chaos/conversations", remotetest.HubDataset{Files: map[string][]byte{"data/part-0.jsonl": hubBytes}})
	req := request(sum.Files)
	req.Sources = append(req.Sources, events.SourceSpec{Name: "hub", Type: "huggingface", Priority: 4,
		Config: map[string]string{"dataset": "chaos/conversations", "path": "data"}})

	// The fault-free output every round must reproduce byte for byte.
	refID, err := c.client.Submit(ctx, req)
	require.NoError(t, err)
	ref := c.finish(ctx, t, refID)
	require.Equal(t, "completed", ref.status, ref.reason)
	want := digestOutput(t, ref.outputDir)
	t.Logf("fault-free output: %d files, %d records", len(want), ref.valid)
	require.NoError(t, os.RemoveAll(ref.outputDir))

	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var order []string
	for round := 1; round <= rounds; round++ {
		if len(order) == 0 {
			order = append([]string(nil), faults...)
			if only := os.Getenv("DSPIPE_CHAOS_ONLY"); only != "" {
				// One fault, round after round (to study it).
				order = []string{only}
			}
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		fault := order[0]
		order = order[1:]
		point := 0.05 + 0.9*rng.Float64()
		pick := rng.IntN(2)
		start := time.Now()
		r := c.chaosRound(ctx, t, req, want, round, fault, point, pick, proxy, hubBytes, mounted, outRoot)
		r.secs = time.Since(start).Seconds()
		if os.Getenv("DSPIPE_CHAOS_SLOW_LOGS") != "" && r.secs > 15 {
			c.dumpLogs()
		}
		rep.rounds = append(rep.rounds, r)
		switch {
		case r.skipped != "":
			t.Logf("round %d: %s: skipped (%s)", round, fault, r.skipped)
		case r.held:
			t.Logf("round %d: %s at %s: held (%.1f s)", round, fault, r.at, r.secs)
		default:
			t.Errorf("round %d: %s at %s: NOT held: %s\nreplay: DSPIPE_CHAOS_SEED=%d DSPIPE_CHAOS_ROUNDS=%d make chaos", round, fault, r.at, r.problem, seed, round)
		}
	}
	return rep
}

type finished struct {
	status, reason, stage, outputDir string
	valid                            int64
	lastSeq                          float64
	feedErr                          error
}

// finish follows the execution's feed to its end (resuming across restarts;
// a gap or a duplicate is an error) and waits for its sealed trail.
func (c *cluster) finish(ctx context.Context, t *testing.T, id string) finished {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var f finished
	n := 0
	f.feedErr = c.client.Watch(ctx, id, 0, func(m client.Message) error { n++; return nil })
	done := testwait.Poll(ctx, 100*time.Millisecond, 2*time.Minute, func() bool {
		st, err := c.client.Status(ctx, id)
		if err != nil || !events.Terminal("dataset.execution."+fmt.Sprint(st["status"])) || st["last_seq"] != float64(n+1) {
			return false
		}
		f.status, f.lastSeq = fmt.Sprint(st["status"]), st["last_seq"].(float64)
		f.reason, _ = st["error"].(string)
		f.stage, _ = st["current_stage"].(string)
		f.outputDir, _ = st["output_dir"].(string)
		v, _ := st["valid_records"].(float64)
		f.valid = int64(v)
		return true
	})
	if !done {
		f.status = "unfinished"
	}
	return f
}

func (c *cluster) chaosRound(ctx context.Context, t *testing.T, req events.Request, want map[string]string, round int, fault string,
	point float64, pick int, proxy *remotetest.CutProxy, hubBytes []byte, mounted bool, outRoot string) roundResult {
	r := roundResult{round: round, fault: fault, at: fmt.Sprintf("%.0f%% of records", 100*point)}
	var filler string
	switch fault {
	case "source reset mid-object":
		cut := int64(float64(len(hubBytes)) * point)
		proxy.CutOnce(cut)
		r.at = fmt.Sprintf("byte %d of %d", cut, len(hubBytes))
	case "output disk full":
		if !mounted {
			r.skipped = "mounting a tmpfs needs root"
			return r
		}
		filler = filepath.Join(outRoot, "filler")
		if err := fillDisk(outRoot, filler, 64<<10); err != nil {
			r.skipped = "could not fill the output file system: " + err.Error()
			return r
		}
		r.at = "before submission (64 KB left)"
	}
	id, err := c.client.Submit(ctx, req)
	if err != nil {
		r.problem = "submit: " + err.Error()
		return r
	}
	var cuts int64
	if fault != "output disk full" && fault != "source reset mid-object" {
		c.waitProgress(ctx, id, point*chaosRecords)
		c.inject(t, fault, pick)
	} else if fault == "source reset mid-object" {
		cuts = proxy.Cuts()
	}
	f := c.finish(ctx, t, id)
	if filler != "" {
		_ = os.Remove(filler)
	}
	var problems []string
	if f.feedErr != nil {
		problems = append(problems, "feed: "+f.feedErr.Error())
	}
	switch {
	case fault == "output disk full":
		if f.status != "failed" || !strings.Contains(strings.ToLower(f.reason), "no space") {
			problems = append(problems, fmt.Sprintf("want failed with a no-space reason, got %s: %q", f.status, f.reason))
		}
		r.note = fmt.Sprintf("failed in %s: %q", f.stage, f.reason)
		if left, _ := filepath.Glob(filepath.Join(outRoot, "*")); len(left) > 0 {
			problems = append(problems, fmt.Sprintf("left behind in the output root: %v", left))
		}
	case f.status != "completed":
		problems = append(problems, fmt.Sprintf("ended %s: %s", f.status, f.reason))
	default:
		got := digestOutput(t, f.outputDir)
		if d := diffDigests(want, got); d != "" {
			problems = append(problems, "output differs from the fault-free run: "+d)
		}
		_ = os.RemoveAll(f.outputDir)
	}
	if fault == "source reset mid-object" && proxy.Cuts() == cuts && proxy.Cuts() == 0 {
		problems = append(problems, "the source connection was never cut")
	}
	if f.status != "unfinished" {
		problems = append(problems, c.checkTrailAndReadModels(t, id, round)...)
	}
	r.held = len(problems) == 0
	r.problem = strings.Join(problems, "; ")
	return r
}

// waitProgress returns once the execution has processed records, or
// finished.
func (c *cluster) waitProgress(ctx context.Context, id string, records float64) {
	// Checked every 5 ms: the fault is to land near its point.
	testwait.Poll(ctx, 5*time.Millisecond, 2*time.Minute, func() bool {
		st, err := c.client.Status(ctx, id)
		if err != nil {
			return false
		}
		p, _ := st["records_processed"].(float64)
		return events.Terminal("dataset.execution."+fmt.Sprint(st["status"])) || p >= records
	})
}

// inject applies a fault and recovers from it as an operator (or a
// supervisor) would: a killed process is started again.
func (c *cluster) inject(t *testing.T, fault string, pick int) {
	instance := func(s string) string {
		if pick == 1 {
			return s + "-1"
		}
		return s
	}
	kill := func(name string) {
		c.stop(name, syscall.SIGKILL)
		c.start(name)
	}
	switch fault {
	case "kill api":
		kill("api")
	case "kill ingest":
		kill(instance("ingest"))
	case "kill processor":
		kill(instance("processor"))
	case "kill processor and ingest":
		c.stop(instance("processor"), syscall.SIGKILL)
		c.stop(instance("ingest"), syscall.SIGKILL)
		c.start(instance("processor"))
		c.start(instance("ingest"))
	case "kill projector":
		kill("projector")
	case "kill broker":
		c.restartBroker(t)
	case "restart postgres":
		script, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "pg.sh"))
		out, err := exec.Command("bash", "-c", "bash "+script+" stop && bash "+script+" start").CombinedOutput()
		if err != nil {
			t.Logf("restart postgres: %v: %s", err, out)
		}
	case "drop broker connections":
		port := c.brokerPort
		if c.external {
			_, p, _ := strings.Cut(os.Getenv("DSPIPE_TEST_KAFKA_BROKERS"), ":")
			port, _ = strconv.Atoi(strings.Split(p, ",")[0])
		}
		// Every established connection to the broker is torn down (the
		// kernel's sock_destroy): services see a reset mid-request.
		out, err := exec.Command("ss", "-K", "dst", "127.0.0.1", "dport", "=", ":"+strconv.Itoa(port)).CombinedOutput()
		if err != nil {
			t.Logf("ss -K: %v: %s", err, out)
		}
	}
}

// checkTrailAndReadModels verifies the execution's trail from Kafka and
// from Postgres, and compares the read models with a rebuild from offset
// zero.
func (c *cluster) checkTrailAndReadModels(t *testing.T, id string, round int) []string {
	var problems []string
	run := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir, "dsctl"), args...)
		cmd.Env = append(c.env, "DSPIPE_API_URL="+c.client.Base, "DSPIPE_TOKEN="+c.client.Token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, from := range []string{"kafka", "postgres"} {
		if out, err := run("audit", "verify", "-from", from, id); err != nil || !strings.Contains(out, "verifies") {
			problems = append(problems, fmt.Sprintf("trail from %s: %v %s", from, err, strings.TrimSpace(out)))
		}
	}
	rebuilt := fmt.Sprintf("%s_rb%d", c.schema, round)
	defer func() { _ = store.DropSchema(context.Background(), testenv.DatabaseURL(), rebuilt) }()
	if out, err := run("projector", "rebuild", "-schema", rebuilt); err != nil {
		return append(problems, fmt.Sprintf("rebuild: %v %s", err, out))
	}
	ctx := context.Background()
	live, err := store.Open(ctx, testenv.DatabaseURL(), c.schema)
	if err != nil {
		return append(problems, "open live schema: "+err.Error())
	}
	defer live.Close()
	fresh, err := store.Open(ctx, testenv.DatabaseURL(), rebuilt)
	if err != nil {
		return append(problems, "open rebuilt schema: "+err.Error())
	}
	defer fresh.Close()
	a, err1 := live.Snapshot(ctx)
	b, err2 := fresh.Snapshot(ctx)
	if err1 != nil || err2 != nil {
		return append(problems, fmt.Sprintf("snapshot: %v %v", err1, err2))
	}
	if a != b {
		problems = append(problems, "read models differ from a rebuild from offset zero: "+firstDifference(a, b))
	}
	return problems
}

func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: live %.200q, rebuilt %.200q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("live has %d lines, rebuilt %d", len(la), len(lb))
}

// digestOutput hashes every data file of an output (the manifest names
// the execution, so it is compared by its record count instead).
func digestOutput(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err, "output directory %s", dir)
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), "manifest") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(sum[:])
	}
	return out
}

func diffDigests(want, got map[string]string) string {
	var diffs []string
	for name, h := range want {
		if got[name] != h {
			diffs = append(diffs, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, "extra "+name)
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

// fillDisk writes a file that leaves about free bytes on dir's file system.
func fillDisk(dir, path string, free int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for left := avail - free; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

func reliabilityReport(seed uint64, rounds int, reports []campaignReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Reliability\n\nWritten by `make chaos` on %s: seed %d, %d rounds per broker.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), seed, rounds)
	b.WriteString("Each round runs the same execution (three local files in three formats and a HuggingFace Hub dataset, 30,000 conversations) " +
		"on a cluster of separate processes: two processors and two ingest instances in one group, a projector, an API. " +
		"One fault hits it at a random point; the killed process is started again. The round holds when the output equals the fault-free " +
		"output byte for byte (or, for a full disk, the execution failed with a clear reason and left nothing behind), the WebSocket feed " +
		"followed across every restart had no gap and no duplicate, the trail verifies from Kafka and from Postgres, and the read models " +
		"equal a rebuild from offset zero.\n\n")
	b.WriteString("| broker | fault | rounds | held | slowest round |\n|---|---|---|---|---|\n")
	for _, rep := range reports {
		type tally struct {
			rounds, held, skipped int
			slowest               float64
		}
		per := map[string]*tally{}
		for _, r := range rep.rounds {
			if per[r.fault] == nil {
				per[r.fault] = &tally{}
			}
			per[r.fault].rounds++
			per[r.fault].slowest = max(per[r.fault].slowest, r.secs)
			if r.skipped != "" {
				per[r.fault].skipped++
			} else if r.held {
				per[r.fault].held++
			}
		}
		for _, f := range faults {
			if tl := per[f]; tl != nil {
				held := fmt.Sprintf("%d", tl.held)
				if tl.skipped > 0 {
					held += fmt.Sprintf(" (%d skipped)", tl.skipped)
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %.1f s |\n", rep.broker, f, tl.rounds, held, tl.slowest)
			}
		}
	}
	b.WriteString("\n## Rounds\n\n| broker | round | fault | injected at | result | seconds |\n|---|---|---|---|---|---|\n")
	for _, rep := range reports {
		for _, r := range rep.rounds {
			result := "held"
			if r.note != "" {
				result += " (" + r.note + ")"
			}
			switch {
			case r.skipped != "":
				result = "skipped: " + r.skipped
			case !r.held:
				result = "NOT held: " + r.problem
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %.1f |\n", rep.broker, r.round, r.fault, r.at, result, r.secs)
		}
	}
	b.WriteString("\nReplay a campaign: `DSPIPE_CHAOS_SEED=<seed> DSPIPE_CHAOS_ROUNDS=<n> make chaos`. " +
		"The faults: SIGKILL of a service (one of the two instances for processor and ingest, picked by the seed), " +
		"SIGKILL of the broker (Apache Kafka through `scripts/kafka.sh kill` and `start`), a fast Postgres restart (`scripts/pg.sh`), " +
		"every TCP connection to the broker torn down (`ss -K`), the Hub download cut mid-object by a proxy, and the output " +
		"file system (a 96 MB tmpfs) filled before submission. A round's seconds run from submission to the last check; " +
		"a fault-free round takes about 1.5 s, so the rest is recovery. A killed projector's partitions wait for its group " +
		"session to expire (Kafka's default 45 s: a shorter one made its recovery from dropped database connections fail under load); " +
		"processors and ingests rejoin at once on Apache Kafka (static membership) and within their 10 s session on the embedded broker, " +
		"which does not implement static membership.\n")
	return b.String()
}

// TestTwoOfEachOneOfEachKilled runs two processors and two ingest
// instances in one group, as separate processes, kills one of each with
// SIGKILL mid-run and starts them again: the output equals a fault-free
// run's byte for byte, and the trail verifies. On the embedded broker, and
// on Apache Kafka when DSPIPE_TEST_KAFKA_BROKERS is set.
func TestTwoOfEachOneOfEachKilled(t *testing.T) {
	onEachBroker(t, func(t *testing.T, external bool) {
		c := startClusterWith(t, external, clusterOpts{instances: 2, brokerSync: true})
		ctx := context.Background()
		sum, err := gen.Write(gen.Options{Dir: filepath.Join(c.dir, "two"), Records: 60000, Sources: 3, Format: "mixed", Seed: 31})
		require.NoError(t, err)
		req := request(sum.Files)
		id, err := c.client.Submit(ctx, req)
		require.NoError(t, err)
		ref := c.finish(ctx, t, id)
		require.NoError(t, ref.feedErr)
		require.Equal(t, "completed", ref.status, ref.reason)
		want := digestOutput(t, ref.outputDir)

		id, err = c.client.Submit(ctx, req)
		require.NoError(t, err)
		// One processor and one ingest at 30%, the other two at 60%.
		for pick, at := range []float64{0.3, 0.6} {
			c.waitProgress(ctx, id, at*60000)
			st, err := c.client.Status(ctx, id)
			require.NoError(t, err)
			require.Equal(t, "running", st["status"], "the kills happen mid-run")
			c.inject(t, "kill processor and ingest", pick)
			t.Logf("killed processor and ingest instance %d at %v of 60000 records", pick, st["records_processed"])
		}
		f := c.finish(ctx, t, id)
		require.NoError(t, f.feedErr, "the feed had no gap and no duplicate")
		require.Equal(t, "completed", f.status, f.reason)
		require.EqualValues(t, 60000, f.valid)
		require.Empty(t, diffDigests(want, digestOutput(t, f.outputDir)), "the output equals the fault-free output byte for byte")
		require.Empty(t, c.checkTrailAndReadModels(t, id, 1))
	})
}

// onEachBroker runs fn as a subtest on the embedded broker, and on Apache
// Kafka when DSPIPE_TEST_KAFKA_BROKERS is set.
func onEachBroker(t *testing.T, fn func(t *testing.T, external bool)) {
	t.Run("kfake", func(t *testing.T) { fn(t, false) })
	if testenv.ExternalKafka() != nil {
		t.Run("apache-kafka", func(t *testing.T) { fn(t, true) })
	}
}
