// Command bench measures the spine end to end and writes docs/BENCHMARKS.md:
// records/s through every service, the raw kfake consume-transform-produce
// throughput of the same records in the same run, their ratio, GET /status
// latency under concurrent load, and the services' peak RSS.
//
// It runs `dsctl up` as a separate process (embedded broker included) so the
// peak RSS is the service's own, and needs bin/dsctl (make build) and a
// Postgres at DATABASE_URL (scripts/pg.sh start).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/store"
)

func main() {
	out := flag.String("out", "docs/BENCHMARKS.md", "report to write")
	records := flag.Int("records", 200000, "conversations in the generated dataset")
	micro := flag.String("micro", "", "file with `go test -bench` output to append")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the services process during the spine run to this file (and of the every-stage run to this file.all)")
	flag.DurationVar(&cpuProfileAfter, "cpuprofile-after", 0, "start the every-stage run's profile this long after submission")
	flag.IntVar(&cpuProfileSeconds, "cpuprofile-seconds", 30, "seconds the every-stage and scale-out runs' profiles last (they must end before the run)")
	flag.Float64Var(&acqJSONLGB, "acq-jsonl-gb", 2, "GB of JSONL text (zstd-compressed) for the acquisition benchmark; 0 skips it")
	flag.Float64Var(&acqParquetGB, "acq-parquet-gb", 1, "GB of Parquet file for the acquisition benchmark; 0 skips it")
	flag.StringVar(&fusionRecords, "fusion-records", "1000000,10000000", "comma-separated record counts for the fusion cost measure; empty skips it")
	flag.IntVar(&allRecords, "all-records", 1_000_000, "conversations for the every-stage run (0: the main dataset)")
	flag.IntVar(&restartRecords, "restart-records", 5000, "conversations per execution in the restart measure")
	flag.IntVar(&scaleRecords, "scale-records", 100000, "conversations for the one-versus-two processors measure; 0 skips it")
	flag.BoolVar(&withLoad, "load", true, "run the load phase (every service as its own process)")
	fusionOnly := flag.Int("fusion-only", 0, "measure only the fusion stage on this many records and print the result as JSON (the bench runs itself so to measure it in a clean process)")
	flag.StringVar(&flatRecords, "flat-records", "1000000,10000000", "comma-separated sizes for the memory-as-the-dataset-grows measure; empty skips it")
	fusionReport := flag.Bool("fusion-report", false, "run only the fusion measures (-fusion-records) and print their section")
	flatOnly := flag.Bool("flat-only", false, "run only the memory-as-the-dataset-grows measure and print its section")
	scaleOnly := flag.Bool("scale-only", false, "run only the one-versus-two processors measure and print its section")
	allOnly := flag.Bool("all-only", false, "run only the every-stage measure (-all-records) and print its section")
	restartOnly := flag.Bool("restart-only", false, "run only the restart measure and print its section")
	flag.Parse()
	for _, only := range []struct {
		set bool
		run func() error
	}{{*restartOnly, restartOnlyRun}, {*allOnly, allOnlyRun}, {*flatOnly, flatOnlyRun}, {*scaleOnly, scaleOutOnly}} {
		if only.set {
			exitOn(only.run())
			return
		}
	}
	if *fusionReport {
		fs, err := fusionCosts()
		exitOn(err)
		var b strings.Builder
		writeFusion(&b, fs)
		fmt.Print(b.String())
		return
	}
	if *fusionOnly > 0 {
		// Under the services' soft memory limit, as the stage runs in them.
		app.SetMemoryLimit(os.Getenv)
		if cpuProfile != "" {
			f, err := os.Create(cpuProfile)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			exitOn(err)
			defer pprof.StopCPUProfile()
		}
		r, err := fusionCost(*fusionOnly)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(r)
		}
		exitOn(err)
		return
	}
	exitOn(run(*out, *records, *micro))
}

// exitOn ends the bench with err's message and status 1, unless err is nil.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// spineEnv switches the services to the spine alone: the spine figure is
// the spine's own (issue 2's definition); the detectors' cost is in the
// every-stage run and the micro-benchmarks.
var spineEnv = []string{"ENABLE_SAFETY_VALIDATION=false", "ENABLE_QUALITY_ASSESSMENT=false", "ENABLE_BIAS_DETECTION=false", "ENABLE_FUSION=false"}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	cpuProfile        string
	cpuProfileAfter   time.Duration
	cpuProfileSeconds int
	acqJSONLGB        float64
	acqParquetGB      float64
	withLoad          bool
	fusionRecords     string
	allRecords        int
	restartRecords    int
	scaleRecords      int
)

type result struct {
	load          *loadResult
	records       int
	inputBytes    int64
	spineSeconds  float64
	spineRate     float64
	ctpSeconds    float64
	ctpRate       float64
	ctpSameRate   float64
	statusN       int
	statusP50     time.Duration
	statusP99     time.Duration
	statusRPS     float64
	peakRSSMB     float64
	brokerRSSMB   float64
	all           allStagesResult
	servicesCPU   float64
	brokerCPU     float64
	processorRate float64
	acquisition   []readResult
	fusion        []fusionResult
	restart       []restartPoint
	scaleOut      []scaleOutRun
	flat          []flatRun
}

// fusionResult is the fusion stage's cost on some number of conversations.
type fusionResult struct {
	Records             int
	SignSecs, ResolveMS float64
	HeapMB, PeakMB      float64
	PeakRSSMB           float64 // of the measuring process, generation included
	Removed, Clusters   int
}

// fusionCost runs the fusion stage over n generated conversations in this
// process, as the pipeline runs it: Observe for every staged record (the
// signatures, beyond fusion.InMemory records spilled to an encrypted file,
// and the record ids), then Decide on a plan of n records (clustering).
// Every record is a conversation of its own from the generator, except one
// in ten, an exact copy of a recent one. It reports the heap the stage
// holds after observing and the peak heap while it decides. Generation is
// not timed.
func fusionCost(n int) (fusionResult, error) {
	g := gen.New(77)
	recent := make([][]stage.Message, 1000)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	run := fusion.Stage{}.Resolve(events.Request{Sources: make([]events.SourceSpec, 3)}, pipeline.Env{FusionEnabled: true})
	defer run.Close()
	var sign time.Duration
	for i := 0; i < n; i++ {
		ms := recent[(i/10)%len(recent)]
		if i%10 != 0 || ms == nil {
			c := g.Next()
			ms = make([]stage.Message, 0, len(c.Turns))
			for _, t := range c.Turns {
				ms = append(ms, stage.Message{Role: t.Role, Content: t.Content})
			}
			recent[i%len(recent)] = ms
		}
		// In the order the output stage gathers them: by source, then
		// position.
		src := i * 3 / n
		r := pipeline.StagedRecord{Index: i, ID: fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15), Source: src, Position: int64(i - (src*n+2)/3), Messages: ms}
		began := time.Now()
		run.Observe(&r)
		sign += time.Since(began)
	}
	clear(recent)
	runtime.GC()
	var held runtime.MemStats
	runtime.ReadMemStats(&held)
	peak := held.HeapInuse
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	start := time.Now()
	plan := pipeline.NewPlan(n)
	err := run.Decide(plan)
	resolve := time.Since(start)
	close(done)
	<-sampled
	if err != nil {
		return fusionResult{}, err
	}
	f := plan.Fusion
	return fusionResult{Records: n, SignSecs: sign.Seconds(), ResolveMS: float64(resolve.Milliseconds()),
		HeapMB: float64(held.HeapAlloc-before.HeapAlloc) / (1 << 20), PeakMB: float64(peak-before.HeapInuse) / (1 << 20),
		PeakRSSMB: peakRSS(os.Getpid()), Removed: int(f.RemovedExact + f.RemovedNear), Clusters: int(f.Clusters)}, nil
}

func run(out string, records int, micro string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "dspipe-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "generating %d conversations...\n", records)
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(dir, "data"), Records: records, Sources: 3, Format: "mixed", Seed: 99,
		DupRate: 0.02, NearDupRate: 0.02})
	if err != nil {
		return err
	}
	var res result
	res.records = records
	for _, f := range sum.Files {
		if st, err := os.Stat(f); err == nil {
			res.inputBytes += st.Size()
		}
	}
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"
	}
	// 0. Every stage on (the defaults), on its own broker and services,
	// over a dataset of its own (allRecords conversations, the
	// generator's default duplicate rates).
	allFiles, allRecs, allBytes := sum.Files, records, res.inputBytes
	if allRecords > 0 && allRecords != records {
		if allFiles, allBytes, err = allDataset(dir); err != nil {
			return err
		}
		allRecs = allRecords
	}
	fmt.Fprintln(os.Stderr, "running every stage...")
	if res.all, err = allStages(ctx, dir, dbURL, allFiles); err != nil {
		return err
	}
	res.all.Records, res.all.InputBytes = allRecs, allBytes
	if allFiles[0] != sum.Files[0] {
		for _, f := range allFiles {
			_ = os.Remove(f)
		}
	}
	if scaleRecords > 0 {
		if res.scaleOut, err = scaleOut(ctx, dir, dbURL); err != nil {
			return fmt.Errorf("scale-out: %w", err)
		}
	}
	if res.flat, err = flatMemory(ctx, dir, dbURL); err != nil {
		return err
	}
	brokerPort, apiPort := freePort(), freePort()
	schema := fmt.Sprintf("bench_%d", time.Now().Unix())
	defer store.DropSchema(context.Background(), dbURL, schema)
	// The broker runs as its own process so the services' memory is
	// measured apart from the broker's (in production the broker is
	// Redpanda or Kafka, not part of the service).
	broker := exec.Command("bin/dsctl", "broker", "-port", strconv.Itoa(brokerPort), "-data-dir", filepath.Join(dir, "broker"))
	broker.Stderr = os.Stderr
	if err := broker.Start(); err != nil {
		return fmt.Errorf("start bin/dsctl broker (run make build first): %w", err)
	}
	defer func() { _ = broker.Process.Signal(syscall.SIGTERM); _ = broker.Wait() }()
	cmd := exec.Command("bin/dsctl", "up")
	cmd.Env = append(os.Environ(),
		"KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(brokerPort),
		"DSPIPE_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort),
		"DSPIPE_DB_SCHEMA="+schema,
		"DATABASE_URL="+dbURL,
		"DSPIPE_LOCAL_ROOTS="+dir,
		"DSPIPE_OUTPUT_ROOT="+filepath.Join(dir, "out"),
		"DSPIPE_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, spineEnv...)
	pprofPort := 0
	if cpuProfile != "" {
		pprofPort = freePort()
		cmd.Env = append(cmd.Env, "DSPIPE_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPort))
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start bin/dsctl up: %w", err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	c := client.New("http://127.0.0.1:"+strconv.Itoa(apiPort), "dev-admin-token")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var h map[string]any
		if err := c.Do(ctx, "GET", "/health", nil, &h); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("services never became healthy")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 1. The spine: submit to completed.
	fmt.Fprintln(os.Stderr, "running the spine...")
	profDone := make(chan error, 1)
	if cpuProfile != "" {
		go func() { profDone <- fetchProfile(pprofPort, cpuProfile, 3) }()
	}
	id, final, secs, err := runExecution(ctx, c, sum.Files)
	if err != nil {
		return err
	}
	res.spineSeconds = secs
	if final.Data["status"] != "completed" {
		return fmt.Errorf("execution ended %v: %v", final.Data["status"], final.Data["error"])
	}
	res.spineRate = float64(records) / res.spineSeconds
	if cpuProfile != "" {
		if err := <-profDone; err != nil {
			return err
		}
	}
	st, err := c.Status(ctx, id)
	if err != nil {
		return err
	}
	res.processorRate, _ = st["processing_rate"].(float64)
	res.servicesCPU = cpuSeconds(cmd.Process.Pid)
	res.brokerCPU = cpuSeconds(broker.Process.Pid)

	// 2. GET /status under concurrent load.
	fmt.Fprintln(os.Stderr, "loading GET /status...")
	res.statusN, res.statusP50, res.statusP99, res.statusRPS = loadStatus(ctx, c, id, 16, 5*time.Second)

	kc := kafka.Config{Brokers: []string{"127.0.0.1:" + strconv.Itoa(brokerPort)}, Partitions: kafka.DefaultPartitions, Replication: 1}

	// 2b. Restart cost after 10 and 100 executions of one size.
	fmt.Fprintln(os.Stderr, "measuring restart cost...")
	if res.restart, err = restartCost(ctx, dir, c, kc, restartRecords); err != nil {
		return fmt.Errorf("restart: %w", err)
	}

	// 3. Raw consume-transform-produce of the same raw records on the same broker.
	fmt.Fprintln(os.Stderr, "measuring raw kfake consume-transform-produce...")
	n, secs, err := rawCTP(ctx, kc, int64(records), "bench-ctp", nil)
	if err != nil {
		return err
	}
	res.ctpSeconds, res.ctpRate = secs, float64(n)/secs
	// The same loop with the services' own client settings (bounded fetch
	// and produce buffers, their compression), isolating our processing
	// from client tuning.
	same := append(kc.ProducerOpts(), kgo.FetchMaxBytes(8<<20), kgo.FetchMaxPartitionBytes(4<<20),
		kgo.MaxBufferedBytes(16<<20), kgo.MaxConcurrentFetches(2))
	n, secs, err = rawCTP(ctx, kc, int64(records), "bench-ctp-same", same)
	if err != nil {
		return err
	}
	res.ctpSameRate = float64(n) / secs

	// 4. Acquisition alone: big files through the local source, per format.
	if acqJSONLGB > 0 || acqParquetGB > 0 {
		plain, err := readWithDsctl(dir, sum.Files[0], "JSONL (one file of the spine's dataset, uncompressed)")
		if err != nil {
			return err
		}
		plain.TextMBPerS = plain.MBPerS
		res.acquisition = append(res.acquisition, plain)
		big, err := acquisitionBench(dir, int64(acqJSONLGB*1e9), int64(acqParquetGB*1e9))
		if err != nil {
			return err
		}
		res.acquisition = append(res.acquisition, big...)
	}

	// 4b. Fusion's cost on a million conversations and more.
	if res.fusion, err = fusionCosts(); err != nil {
		return err
	}

	// 5. Peak RSS of the service and broker processes.
	res.peakRSSMB = peakRSS(cmd.Process.Pid)
	res.brokerRSSMB = peakRSS(broker.Process.Pid)

	// 6. Load: every service as its own process, a burst of executions,
	// a thousand live feeds, a thousand status pollers.
	if withLoad {
		// The spine's processes stop first: the load phase counts
		// Postgres transactions for the whole database.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = broker.Process.Signal(syscall.SIGTERM)
		_ = broker.Wait()
		lr, err := loadPhase(ctx, dir, dbURL)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		res.load = &lr
	}

	var microOut string
	if micro != "" {
		b, _ := os.ReadFile(micro)
		microOut = string(b)
	}
	return writeReport(out, res, microOut)
}

func loadStatus(ctx context.Context, c *client.Client, id string, workers int, d time.Duration) (int, time.Duration, time.Duration, float64) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			// Like wrk, the load generator reads the body without parsing it,
			// so it takes as little CPU from the server as it can.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/api/v1/datasets/status/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+c.Token)
			for time.Now().Before(stop) {
				t0 := time.Now()
				resp, err := c.HTTP.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	return len(lat), lat[len(lat)/2], lat[len(lat)*99/100], float64(len(lat)) / d.Seconds()
}

// rawCTP consumes the raw topic in a fresh group with a transactional
// session and produces every record unchanged to another topic, committing
// per poll: the broker's own ceiling for the spine's work pattern.
func rawCTP(ctx context.Context, kc kafka.Config, want int64, name string, extra []kgo.Opt) (int64, float64, error) {
	topics := kc.Topics()
	adm, err := kc.Client()
	if err != nil {
		return 0, 0, err
	}
	out := name + ".out"
	_, err = kadm.NewClient(adm).CreateTopics(ctx, kc.Partitions, 1, nil, out)
	adm.Close()
	if err != nil {
		return 0, 0, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(kc.Brokers...),
		kgo.TransactionalID(name),
		kgo.ConsumerGroup(name),
		kgo.ConsumeTopics(topics.Raw),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ProducerBatchMaxBytes(kafka.MaxRecordBytes + 64<<10),
	}, extra...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return 0, 0, err
	}
	defer sess.Close()
	var n int64
	var start time.Time
	for n < want {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := sess.PollFetches(pctx)
		cancel()
		if fs.Empty() {
			return n, 0, fmt.Errorf("raw topic drained after %d of %d records", n, want)
		}
		if start.IsZero() {
			start = time.Now()
		}
		if err := sess.Begin(); err != nil {
			return n, 0, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Headers[0].Value) != "rec" {
				return
			}
			n++
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Headers: r.Headers}, nil)
		})
		if _, err := sess.End(ctx, kgo.TryCommit); err != nil {
			return n, 0, err
		}
	}
	return n, time.Since(start).Seconds(), nil
}

// cpuSeconds is the user+system CPU time a process has used so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks; USER_HZ is 100 on Linux
}

func peakRSS(pid int) float64 { return statusMB(pid, "VmHWM:") }

// statusMB reads a kB figure of /proc/<pid>/status (VmRSS:, VmHWM:) in MB;
// -1 when the process is gone.
func statusMB(pid int, key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// allDataset writes the every-stage run's dataset (allRecords
// conversations, 5% exact and 5% near duplicates planted): its files and
// their bytes.
func allDataset(dir string) ([]string, int64, error) {
	fmt.Fprintf(os.Stderr, "generating %d conversations for every stage...\n", allRecords)
	all, err := gen.Write(gen.Options{Dir: filepath.Join(dir, "data-all"), Records: allRecords, Sources: 3, Format: "chatml", Seed: 7,
		DupRate: 0.05, NearDupRate: 0.05})
	if err != nil {
		return nil, 0, err
	}
	var size int64
	for _, f := range all.Files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	return all.Files, size, nil
}

// allOnlyRun runs only the every-stage measure and prints its section.
func allOnlyRun() error {
	return onlySection(func(ctx context.Context, dir, dbURL string, b *strings.Builder) error {
		files, size, err := allDataset(dir)
		if err != nil {
			return err
		}
		var res result
		if res.all, err = allStages(ctx, dir, dbURL, files); err != nil {
			return err
		}
		res.all.Records, res.all.InputBytes = allRecords, size
		writeAllStages(b, res)
		return nil
	})
}

// writeAllStages is the section of the run with every stage on.
func writeAllStages(b *strings.Builder, r result) {
	a := r.all
	fmt.Fprintf(b, "## Every stage on\n\n%d generated conversations (%.2f GB of JSON Lines in three sources, 5%% exact and 5%% near duplicates planted), "+
		"all nine stages at their defaults (quality, safety with PII masking, crisis and content, bias, fusion), on a broker (kfake, its own process) "+
		"and services process of their own.\n\n", a.Records, float64(a.InputBytes)/1e9)
	b.WriteString("| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(b, "| end to end, submit to `completed` | %.1f s: %.0f records/s, %.1f MB/s of input | ≥ 30000 records/s %s |\n",
		a.Seconds, float64(a.Records)/a.Seconds, float64(a.InputBytes)/1e6/a.Seconds, mark(float64(a.Records)/a.Seconds >= 30000))
	for _, s := range a.Stages {
		fmt.Fprintf(b, "| %s | %.1f s (%.0f records/s) | |\n", s.Stage, s.Seconds, float64(a.Records)/s.Seconds)
	}
	fmt.Fprintf(b, "| valid records / duplicates removed / written | %d / %d / %d | |\n", a.Valid, a.RemovedDuplicates, a.Output)
	fmt.Fprintf(b, "| CPU per record until completion: services process / broker process | %.1f µs / %.1f µs | |\n",
		a.ServicesCPU/float64(a.Records)*1e6, a.BrokerCPU/float64(a.Records)*1e6)
	fmt.Fprintf(b, "| peak RSS of the services process / the broker | %.0f MB / %.0f MB | services < 300 MB %s |\n\n", a.ServicesRSSMB, a.BrokerRSSMB, mark(a.ServicesRSSMB < 300))
	b.WriteString("The record stages run together on each record, so they share one duration (from the first record to the last); fusion and balancing run in the output stage's first pass, so the output stage's time includes theirs.\n\n")
}

func writeReport(path string, r result, micro string) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` on %s (%s, %d CPUs, %s/%s, %s).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "Dataset: %d generated conversations (`dsctl gen`, seed 99), three sources (ChatML, ShareGPT, ESConv JSONL), %.1f MB.\n",
		r.records, float64(r.inputBytes)/1e6)
	b.WriteString("Processes: `bin/dsctl broker` (the embedded kfake broker with a data directory) and `bin/dsctl up` (api, ingest, processor, projector) with `KAFKA_BROKERS` pointing at it; Postgres 15 on loopback.\n\n")
	writeAllStages(&b, r)
	writeScaleOut(&b, r.scaleOut, scaleRecords)
	if len(r.flat) > 0 {
		writeFlat(&b, r.flat)
	}
	b.WriteString("## The spine\n\n| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| records/s through the spine (submit to `completed`, all stages that exist) | %.0f (%.1f s) | |\n", r.spineRate, r.spineSeconds)
	fmt.Fprintf(&b, "| processor rate reported by the execution | %.0f records/s | |\n", r.processorRate)
	fmt.Fprintf(&b, "| raw kfake consume-transform-produce of the same raw records, same broker, same run | %.0f records/s (%.1f s) | |\n", r.ctpRate, r.ctpSeconds)
	ratio := r.spineRate / r.ctpRate
	fmt.Fprintf(&b, "| spine / raw ratio | %.0f%% | ≥ 30%% %s |\n", 100*ratio, mark(ratio >= 0.30))
	fmt.Fprintf(&b, "| the same raw loop with the services' client settings (bounded buffers, same compression); spine / that | %.0f records/s; %.0f%% | (for comparison) |\n",
		r.ctpSameRate, 100*r.spineRate/r.ctpSameRate)
	fmt.Fprintf(&b, "| CPU per record until completion: services process / broker process | %.1f µs / %.1f µs | |\n",
		1e6*r.servicesCPU/float64(r.records), 1e6*r.brokerCPU/float64(r.records))
	fmt.Fprintf(&b, "| `GET /status` p50 (16 concurrent clients, 5 s, %d requests, %.0f req/s) | %s | |\n", r.statusN, r.statusRPS, r.statusP50)
	fmt.Fprintf(&b, "| `GET /status` p99 | %s | < 10 ms %s |\n", r.statusP99, mark(r.statusP99 < 10*time.Millisecond))
	fmt.Fprintf(&b, "| peak RSS of the services process: api, ingest, processor, projector (VmHWM) | %.0f MB | < 300 MB %s |\n", r.peakRSSMB, mark(r.peakRSSMB < 300))
	fmt.Fprintf(&b, "| peak RSS of the embedded broker process (`dsctl broker`, kfake with a data directory) | %.0f MB | (development broker) |\n", r.brokerRSSMB)
	b.WriteString("\nThe spine figure covers acquisition (file read, framing, transactional produce with checkpoints), validation, standardization, staged produce, event emission and projection into Postgres, and the output stage (reading the staged topic back, zstd-compressing, hashing, manifest). The raw figure is a `GroupTransactSession` loop that copies the same records to another topic without looking at them.\n")
	writeRestart(&b, r.restart, restartRecords)
	b.WriteString("\nReproduce: `make bench` (needs Postgres: `scripts/pg.sh start`).\n")
	if len(r.acquisition) > 0 {
		b.WriteString("\n## Acquisition alone, per format\n\n")
		b.WriteString("Each file is read by `bin/dsctl read` as its own process through the local source (the same code path ingest uses: resumable reader, gzip/zstd sniffing, framing; Parquet by row groups and batches), so the peak RSS is the reader's alone. Target: peak RSS < 200 MB.\n\n")
		b.WriteString("| format | file size | records | MB/s read from disk | MB/s of text | records/s | peak RSS |\n|---|---|---|---|---|---|---|\n")
		for _, a := range r.acquisition {
			verdict := "met"
			if a.PeakRSSMB >= 200 {
				verdict = "NOT met"
			}
			fmt.Fprintf(&b, "| %s | %.2f GB | %d | %.0f | %.0f | %.0f | %.0f MB (%s) |\n", a.Format, float64(a.FileBytes)/1e9, a.Records, a.MBPerS, a.TextMBPerS, a.RecPerS, a.PeakRSSMB, verdict)
		}
		b.WriteString("\n\"MB/s of text\" is the decompressed JSON for JSONL and the message text for Parquet. The big files are generated conversations (a pool of 20,000 cycled with unique ids); they are deleted after the run.\n")
	}
	if len(r.fusion) > 0 {
		writeFusion(&b, r.fusion)
	}
	if r.load != nil {
		writeLoad(&b, *r.load)
	}
	if micro != "" {
		b.WriteString("\n## Analyzers, per core\n\nEach analyzer on a counselling-style text written for the benchmark (PII detection also on the turns of generated conversations, one at a time, as the safety stage runs it), one goroutine (`go test -bench`). Target: ≥ 20 MB/s of text per core.\n\n")
		b.WriteString("| analyzer | MB/s | target |\n|---|---|---|\n")
		for _, a := range []struct{ name, bench string }{{"PII detection (`dsctl analyze pii`), a text dense in identifiers", "BenchmarkPIIDetect"},
			{"PII detection, generated conversation turns", "BenchmarkPIIDetectTurns"},
			{"crisis grading (`dsctl analyze crisis`)", "BenchmarkCrisisAssess"}, {"content safety (`dsctl analyze content`)", "BenchmarkContentAssess"},
			{"quality, language id included (`dsctl analyze quality`)", "BenchmarkQualityAssess"}, {"bias mentions (`dsctl analyze bias`)", "BenchmarkBiasDetect"},
			{"language id alone (`internal/lang`, first 150 words)", "BenchmarkDetect"},
			{"MinHash signature (`internal/fusion`, 64 permutations)", "BenchmarkMinHashSignature"},
			{"**the safety stage as a whole** (`internal/safety`: PII masking, crisis and content on every turn of generated conversations)", "BenchmarkSafetyStage"}} {
			mb := microMBs(micro, a.bench)
			verdict := "met"
			if mb < 20 {
				verdict = "NOT met"
			}
			fmt.Fprintf(&b, "| %s | %.1f | ≥ 20 (%s) |\n", a.name, mb, verdict)
		}
		b.WriteString("\nLanguage identification libraries measured before writing `internal/lang` (2 cores, counsel-chat answers, seven candidate languages): " +
			"whatlanggo v1.0.1 1.9 MB/s on whole texts and 6.3 MB/s on a 300-byte prefix (97.5% of the English answers called English); " +
			"lingua-go v1.4.0 in low-accuracy mode 0.4 MB/s (98%). Both are below the 20 MB/s budget of the whole quality stage, so the stage " +
			"uses a function-word identifier over the first 150 words.\n")
		b.WriteString("\n## Micro-benchmarks (`go test -bench`)\n\n```\n" + micro + "```\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func mark(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(NOT met)"
}

// fetchProfile saves a CPU profile of the services process over secs
// seconds (the spine run is shorter; the idle tail costs nothing).
func fetchProfile(port int, path string, secs int) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// microMBs finds a benchmark's MB/s in `go test -bench` output.
func microMBs(out, name string) float64 {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], name+"-") {
			continue
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "MB/s" {
				v, _ := strconv.ParseFloat(f[i-1], 64)
				return v
			}
		}
	}
	return 0
}

func writeFusion(b *strings.Builder, fs []fusionResult) {
	b.WriteString("\n## Fusion, per million records and at ten million\n\n")
	b.WriteString("One goroutine, in a bench process of its own: the fusion stage as the pipeline runs it, without reading the log, over records in " +
		"the order the output stage gathers them (by source, then position). It observes every staged record (exact hash and MinHash " +
		"signature, spilled to an encrypted temporary file beyond 100,000 records, with the record ids), then decides on the plan " +
		"(exact hashes, 16 LSH bands, verification, keepers). Every record is a generated conversation of its own, except one in ten, " +
		"an exact copy of a recent one. Target: memory flat in the records (services < 300 MB at 1M and at 10M).\n\n")
	b.WriteString("| records | signatures | clustering | per million records | heap held by the stage | peak heap while clustering (plan included) | peak RSS of the process | removed / clusters |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range fs {
		fmt.Fprintf(b, "| %d | %.1f s (%.0f records/s) | %.1f s | %.1f s | %.1f MB (%.1f bytes/record) | %.0f MB (%.1f bytes/record) | %.0f MB | %d / %d |\n", f.Records, f.SignSecs,
			float64(f.Records)/f.SignSecs, f.ResolveMS/1000, (f.SignSecs+f.ResolveMS/1000)*1e6/float64(f.Records), f.HeapMB,
			f.HeapMB*(1<<20)/float64(f.Records), f.PeakMB, f.PeakMB*(1<<20)/float64(f.Records), f.PeakRSSMB, f.Removed, f.Clusters)
	}
	b.WriteString("\nHeld per record while observing: nothing but the ranks' runs (a run per source and per gap in its positions); the features " +
		"(exact hash and signature, 152 bytes sealed) and the record id (32) are on disk, encrypted, beyond 100,000 records. Deciding holds " +
		"the keepers (4 bytes a record, the union-find's parents reused), two bit sets, the grouping's 16 MB budget (keys beyond it spread " +
		"by bucket over an encrypted temporary file, one bucket sorted at a time), the plan's copies (4 bytes a record) and the merged ids (44 bytes a " +
		"removed record). The process runs under the services' memory limit and collector target (`GOGC` 400 under the limit), so the peak " +
		"heap includes garbage not yet collected: the limit, not what the stage holds, sets it.\n")
}

// fusionCosts measures fusion at each size of fusionRecords, each in a
// process of its own, so its heap figures are its own.
func fusionCosts() ([]fusionResult, error) {
	var out []fusionResult
	for _, f := range strings.Split(fusionRecords, ",") {
		if f = strings.TrimSpace(f); f == "" || f == "0" {
			continue
		}
		fmt.Fprintf(os.Stderr, "measuring fusion on %s records...\n", f)
		cmd := exec.Command(os.Args[0], "-fusion-only", f)
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("fusion measure: %w", err)
		}
		var fr fusionResult
		if err := json.Unmarshal(b, &fr); err != nil {
			return nil, fmt.Errorf("fusion measure: %w", err)
		}
		out = append(out, fr)
	}
	return out, nil
}
