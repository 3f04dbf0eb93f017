package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
)

// scaleOutPartitions is the record topics' partition count in the
// scale-out measure: even, so two processors share them equally.
const scaleOutPartitions = 4

// scaleOutRun is one execution of the scale-out dataset with a number of
// processor processes, each limited to one core.
type scaleOutRun struct {
	Processors int
	Seconds    float64
	Valid      int64
	Digest     map[string]string // output file → sha256 (the manifest aside: it names the execution)
	// CPU seconds of each processor process over the run.
	ProcessorCPU []float64
}

// scaleOutOnly runs the scale-out measure alone and prints its section.
func scaleOutOnly() error {
	return onlySection(func(ctx context.Context, dir, dbURL string, b *strings.Builder) error {
		runs, err := scaleOut(ctx, dir, dbURL)
		if err == nil {
			writeScaleOut(b, runs, scaleRecords)
		}
		return err
	})
}

// onlySection runs one measure in a temporary directory of its own and
// prints the section it writes.
func onlySection(measure func(ctx context.Context, dir, dbURL string, b *strings.Builder) error) error {
	dir, err := os.MkdirTemp("", "dspipe-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"
	}
	var b strings.Builder
	if err := measure(context.Background(), dir, dbURL, &b); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}

// scaleOut runs the same request with one processor process and with two
// (GOMAXPROCS=1 each), every stage on, every service a process of its own,
// over scaleRecords generated conversations.
func scaleOut(ctx context.Context, dir, dbURL string) ([]scaleOutRun, error) {
	fmt.Fprintf(os.Stderr, "generating %d conversations for one processor against two...\n", scaleRecords)
	sc, err := gen.Write(gen.Options{Dir: filepath.Join(dir, "data-scale"), Records: scaleRecords, Sources: 2, Format: "chatml", Seed: 13,
		DupRate: 0.05, NearDupRate: 0.05})
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range sc.Files {
			_ = os.Remove(f)
		}
	}()
	files := sc.Files
	var out []scaleOutRun
	for _, n := range []int{1, 2} {
		fmt.Fprintf(os.Stderr, "scale-out: %d processor process(es)...\n", n)
		r, err := runWithProcessors(ctx, dir, dbURL, files, n)
		if err != nil {
			return nil, fmt.Errorf("%d processors: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func runWithProcessors(ctx context.Context, dir, dbURL string, files []string, n int) (scaleOutRun, error) {
	r := scaleOutRun{Processors: n}
	brokerPort, apiPort := freePort(), freePort()
	schema := fmt.Sprintf("bench_scale%d_%d", n, time.Now().Unix())
	defer store.DropSchema(context.Background(), dbURL, schema)
	run := filepath.Join(dir, fmt.Sprintf("scale-%d", n))
	if err := os.MkdirAll(run, 0o755); err != nil {
		return r, err
	}
	defer os.RemoveAll(run)
	keyPath, ring := filepath.Join(run, "audit-signing-key.pem"), filepath.Join(run, "keyring.json")
	if _, _, err := audit.LoadOrCreateKey(keyPath, true); err != nil {
		return r, err
	}
	if _, _, err := crypt.LoadKeyring(ring, true); err != nil {
		return r, err
	}
	broker := exec.Command("bin/dsctl", "broker", "-port", strconv.Itoa(brokerPort), "-data-dir", filepath.Join(run, "broker"))
	broker.Stderr = os.Stderr
	if err := broker.Start(); err != nil {
		return r, err
	}
	defer func() { _ = broker.Process.Signal(syscall.SIGTERM); _ = broker.Wait() }()
	env := append(os.Environ(), "KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(brokerPort), "KAFKA_PARTITIONS="+strconv.Itoa(scaleOutPartitions),
		"DSPIPE_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort), "DSPIPE_DB_SCHEMA="+schema, "DATABASE_URL="+dbURL,
		"DSPIPE_LOCAL_ROOTS="+dir, "DSPIPE_OUTPUT_ROOT="+filepath.Join(run, "out"), "DSPIPE_LOG_LEVEL=warn",
		"DSPIPE_AUDIT_SIGNING_KEY="+keyPath, "DSPIPE_KEYRING="+ring)
	var procs []*exec.Cmd
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Process.Signal(syscall.SIGTERM)
			_ = procs[i].Wait()
		}
	}()
	start := func(bin string, extra ...string) (*exec.Cmd, error) {
		cmd := exec.Command(filepath.Join("bin", bin))
		cmd.Env = append(append([]string(nil), env...), extra...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
		return cmd, nil
	}
	if _, err := start("projector"); err != nil {
		return r, err
	}
	var processors []*exec.Cmd
	var pprofPorts []int
	for i := range n {
		extra := []string{"GOMAXPROCS=1", "DSPIPE_INSTANCE_ID=bench-" + strconv.Itoa(i)}
		if cpuProfile != "" {
			pprofPorts = append(pprofPorts, freePort())
			extra = append(extra, "DSPIPE_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPorts[i]))
		}
		p, err := start("processor", extra...)
		if err != nil {
			return r, err
		}
		processors = append(processors, p)
	}
	for _, b := range []string{"ingest", "api"} {
		if _, err := start(b); err != nil {
			return r, err
		}
	}
	c := client.New("http://127.0.0.1:"+strconv.Itoa(apiPort), "dev-admin-token")
	if err := waitHealthy(ctx, c); err != nil {
		return r, err
	}
	if err := waitMembers(ctx, kafka.Config{Brokers: []string{"127.0.0.1:" + strconv.Itoa(brokerPort)}}, "dspipe-processor", n); err != nil {
		return r, err
	}
	cpu0 := make([]float64, n)
	for i, p := range processors {
		cpu0[i] = cpuSeconds(p.Process.Pid)
	}
	for i, port := range pprofPorts { // each processor's profile (bench -cpuprofile, -cpuprofile-after, -cpuprofile-seconds)
		go func() {
			time.Sleep(cpuProfileAfter)
			path := fmt.Sprintf("%s.scale%d.p%d", cpuProfile, n, i)
			if err := fetchProfile(port, path, cpuProfileSeconds); err != nil {
				fmt.Fprintln(os.Stderr, "scale-out profile:", err)
			}
		}()
	}
	id, final, secs, err := runExecution(ctx, c, files)
	if err != nil {
		return r, err
	}
	if final.Data["status"] != "completed" {
		return r, fmt.Errorf("execution ended %v: %v", final.Data["status"], final.Data["error"])
	}
	r.Seconds = secs
	for i, p := range processors {
		r.ProcessorCPU = append(r.ProcessorCPU, cpuSeconds(p.Process.Pid)-cpu0[i])
	}
	// The read models take the last event a moment after the feed.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := c.Status(ctx, id)
		if err != nil {
			return r, err
		}
		outDir, _ := st["output_dir"].(string)
		if outDir != "" {
			v, _ := st["valid_records"].(float64)
			r.Valid = int64(v)
			r.Digest, err = digestDir(outDir)
			return r, err
		}
		if time.Now().After(deadline) {
			return r, errors.New("the status never showed the output directory")
		}
	}
}

// waitMembers waits until the consumer group has n members in a stable
// state, so the measure does not include a rebalance.
func waitMembers(ctx context.Context, kc kafka.Config, group string, n int) error {
	cl, err := kc.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(90 * time.Second)
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := gs[group]; ok && g.State == "Stable" && len(g.Members) == n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the processor group never had %d stable members", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// digestDir hashes every output file but the manifest.
func digestDir(dir string) (map[string]string, error) {
	if dir == "" {
		return nil, errors.New("no output directory")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), "manifest") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		out[e.Name()] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

func sameDigest(a, b map[string]string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func writeScaleOut(b *strings.Builder, runs []scaleOutRun, records int) {
	if len(runs) != 2 {
		return
	}
	fmt.Fprintf(b, "\n## One execution, two processors\n\n%d generated conversations (5%% exact and 5%% near duplicates), every stage on; "+
		"every service its own process (`bin/api`, `bin/ingest`, `bin/projector`, `bin/processor`), the record topics with %d partitions; "+
		"each processor process limited to one core (`GOMAXPROCS=1`). Submission to `completed`.\n\n", records, scaleOutPartitions)
	b.WriteString("| processor processes | seconds | valid records | CPU seconds per processor |\n|---|---|---|---|\n")
	for _, r := range runs {
		cpu := make([]string, len(r.ProcessorCPU))
		for i, c := range r.ProcessorCPU {
			cpu[i] = fmt.Sprintf("%.1f", c)
		}
		fmt.Fprintf(b, "| %d | %.1f | %d | %s |\n", r.Processors, r.Seconds, r.Valid, strings.Join(cpu, " / "))
	}
	ratio := runs[1].Seconds / runs[0].Seconds
	names := make([]string, 0, len(runs[0].Digest))
	for k := range runs[0].Digest {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(b, "\nTwo processors / one: %.2f× the time (target ≤ 0.6× %s). Output files (%s) byte-identical: %s.\n\n",
		ratio, mark(ratio <= 0.6), strings.Join(names, ", "), yes(sameDigest(runs[0].Digest, runs[1].Digest)))
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
