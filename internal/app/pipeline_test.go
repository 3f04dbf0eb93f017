package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/ingest"
	"github.com/dspipe/dspipe/internal/processor"
	"github.com/dspipe/dspipe/internal/projector"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
	"github.com/dspipe/dspipe/internal/testwait"
)

// TestPipelineCountsAgreeEverywhere runs three sources of different formats
// through every service and checks that the output file, the statistics
// endpoint, the read models and the generator agree on every count, and
// that each input record appears exactly once.
func TestPipelineCountsAgreeEverywhere(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 3000, Sources: 3, Format: "mixed", Compression: "gzip", Seed: 7})
	require.NoError(t, err)
	arr, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, "arr"), Records: 1000, Format: "sharegpt", Compression: "zstd", Seed: 8, Array: true})
	require.NoError(t, err)
	id, msgs := s.run(t, localRequest(append(sum.Files, arr.Files...)...))
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"])
	var sawProgress bool
	for _, m := range msgs {
		if m.EventType != "dataset_progress" {
			continue
		}
		metrics := m.Data["metrics"].(map[string]any)
		if metrics["records_processed"].(float64) > 0 && metrics["memory_usage_mb"].(float64) > 0 {
			sawProgress = true
			require.Contains(t, m.Data, "overall_progress")
			require.Contains(t, m.Data, "current_stage")
		}
	}
	require.True(t, sawProgress, "progress messages carry the seed's metrics")

	x := s.waitStatus(t, id, "completed")
	require.Equal(t, int64(4000), x.Total)
	require.Equal(t, int64(4000), x.Received)
	require.Equal(t, x.Valid+x.Rejected, x.Received)

	stats, err := s.client.Statistics(context.Background(), id)
	require.NoError(t, err)
	recs := stats["records"].(map[string]any)
	require.EqualValues(t, x.Valid, recs["valid"])
	require.EqualValues(t, x.Rejected, recs["rejected"])

	lines := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	require.Len(t, lines, int(x.Valid))
	seen := map[string]bool{}
	perSource := map[string]int{}
	for _, l := range lines {
		src := l["source"].(map[string]any)
		key := fmt.Sprintf("%s#%v", src["name"], src["position"])
		require.False(t, seen[key], "record %s written twice", key)
		seen[key] = true
		perSource[src["name"].(string)]++
	}
	sources, err := s.store.Sources(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, sources, 4, "three JSONL sources in three formats and a JSON array")
	for _, sr := range sources {
		require.Equal(t, "completed", sr.Status)
		require.EqualValues(t, 1000, sr.Records, "generator wrote 1000 records to %s", sr.Name)
		require.EqualValues(t, perSource[sr.Name], sr.Output)
	}
	stages, err := s.store.Stages(context.Background(), id)
	require.NoError(t, err)
	var names []string
	for _, st := range stages {
		names = append(names, st.Stage)
		require.Equal(t, "completed", st.Status)
	}
	require.Equal(t, []string{"acquisition", "validation", "standardization", "output"}, names,
		"only the stages that really ran are listed")

	// The audit trail verifies.
	raws, err := s.store.EventsSince(context.Background(), id, 0, 100000)
	require.NoError(t, err)
	var envs []events.Envelope
	for _, b := range raws {
		e, err := events.Decode(b)
		require.NoError(t, err)
		envs = append(envs, e)
		require.NotContains(t, string(b), "My name is", "events never carry conversation text")
	}
	require.NoError(t, events.Verify(envs))
	require.Equal(t, events.TypeExecutionSealed, envs[len(envs)-1].Type, "the trail ends with its signed seal")
	require.Len(t, msgs, len(envs)-1, "the feed delivered every event once, up to the terminal one (the seal follows it)")
}

// TestMalformedInputIsRejectedOrFailsClearly feeds every kind of bad input
// and checks each ends in the rejected file with reason and position, or in
// a failed status whose reason says what went wrong.
func TestMalformedInputIsRejectedOrFailsClearly(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	write := func(name string, b []byte) string {
		p := filepath.Join(s.data, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	good := `{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi there"}]}`
	var body bytes.Buffer
	body.WriteString(good + "\n")
	body.WriteString(`{"messages":[{"role":"user","content":"trunc` + "\n")
	body.WriteString("{\"text\":\"\xff\xfe bad\"}\n")
	body.WriteString(`{"text":"` + strings.Repeat("a", 50<<20) + `"}` + "\n")
	body.WriteString(`{"unrelated":"shape"}` + "\n")
	body.WriteString(good + "\n")
	mixed := write("mixed.jsonl", body.Bytes())
	empty := write("empty.jsonl", nil)
	truncArray := write("trunc.json", []byte(`[`+good+`,{"messages":[`))

	id, msgs := s.run(t, localRequest(mixed, empty, truncArray))
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"])
	x := s.waitStatus(t, id, "completed")
	require.EqualValues(t, 8, x.Total)
	require.EqualValues(t, 3, x.Valid)
	require.EqualValues(t, 5, x.Rejected)
	var alert *client.Message
	for i := range msgs {
		if msgs[i].EventType == "dataset_alert" {
			alert = &msgs[i]
		}
	}
	require.NotNil(t, alert, "a high rejection rate raises a live alert")
	require.Equal(t, "high_rejection_rate", alert.Data["code"])
	require.Contains(t, alert.Data["message"], "5 of 8 records")
	alerts, err := s.store.Alerts(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, alerts, 1, "and it is in the read model")
	rej := readLines(t, filepath.Join(x.OutputDir, "rejected.jsonl"))
	require.Len(t, rej, 5)
	reasons := map[string]string{}
	for _, r := range rej {
		reasons[fmt.Sprintf("%s:%v", r["source"], r["position"])] = r["reason"].(string)
	}
	require.Contains(t, reasons["s1:2"], "truncated")
	require.Contains(t, reasons["s1:3"], "UTF-8")
	require.Contains(t, reasons["s1:4"], "limit")
	require.Contains(t, reasons["s1:5"], "unrecognised format")
	require.Contains(t, reasons["s3:2"], "truncated")

	// A CSV with the wrong columns fails the execution with the columns it found.
	csv := write("wrong.csv", []byte("name,phone\nx,y\n"))
	id, msgs = s.run(t, localRequest(csv))
	last := msgs[len(msgs)-1]
	require.Equal(t, "failed", last.Data["status"])
	require.Contains(t, last.Data["error"], "none of the expected columns")
	x = s.waitStatus(t, id, "failed")
	require.Contains(t, x.ErrorReason, "name, phone")

	// A gzip bomb is stopped.
	var gz bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zeros := bytes.Repeat([]byte("\n"), 1<<20)
	for i := 0; i < 1024; i++ {
		_, _ = gw.Write(zeros)
	}
	require.NoError(t, gw.Close())
	bomb := write("bomb.jsonl.gz", gz.Bytes())
	_, msgs = s.run(t, localRequest(bomb))
	require.Equal(t, "failed", msgs[len(msgs)-1].Data["status"])
	require.Contains(t, msgs[len(msgs)-1].Data["error"], "decompression bomb")

	// A path outside the allowed roots is refused at submission, with a
	// 400 that says which source and why.
	_, err = s.client.Submit(context.Background(), localRequest(write("ok.jsonl", []byte(`{"messages":[{"role":"user","content":"hi"}]}`+"\n")), "/etc/passwd"))
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.Status)
	require.Contains(t, apiErr.Message, "sources[1].config.path")
	require.Contains(t, apiErr.Message, "outside the allowed")
}

// TestWebSocketResumeDeliversEveryEventOnce disconnects mid-execution and
// resumes with ?since=, then checks the union is exactly the audit trail.
func TestWebSocketResumeDeliversEveryEventOnce(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 20000, Sources: 2, Format: "chatml", Seed: 3})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := s.client.Submit(ctx, localRequest(sum.Files...))
	require.NoError(t, err)

	var seqs []uint64
	errStop := fmt.Errorf("stop")
	err = s.client.Watch(ctx, id, 0, func(m client.Message) error {
		seqs = append(seqs, m.Seq)
		if len(seqs) == 3 {
			return errStop // disconnect after three events
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	s.waitStatusSeq(t, id, int64(seqs[len(seqs)-1])+3) // events happen while we are away
	require.NoError(t, s.client.Watch(ctx, id, seqs[len(seqs)-1], func(m client.Message) error {
		seqs = append(seqs, m.Seq)
		return nil
	}))
	for i, q := range seqs {
		require.Equal(t, uint64(i+1), q, "events in order, none missed, none twice")
	}
	s.waitStatus(t, id, "completed")
	x := s.waitStatusSeq(t, id, int64(len(seqs)+1))
	require.EqualValues(t, len(seqs)+1, x.LastSeq, "every event up to the terminal one, then the final seal")
}

// TestProjectorRebuildEqualsLive replays the log from offset zero into a
// fresh schema and compares every read model.
func TestProjectorRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 500, Sources: 2, Format: "mixed", Seed: 11})
	require.NoError(t, err)
	id1, _ := s.run(t, localRequest(sum.Files...))
	_, _ = s.run(t, localRequest(filepath.Join(s.data, "nope.jsonl")))
	s.waitStatus(t, id1, "completed")

	// The rebuild reads the log to its end; the live projection reaches
	// the same state once it has applied the same events.
	rebuilt, _ := testenv.Schema(t)
	n, err := projector.Rebuild(context.Background(), s.cfg.Kafka, rebuilt, testenv.Logger(t))
	require.NoError(t, err)
	require.Positive(t, n)
	got, err := rebuilt.Snapshot(context.Background())
	require.NoError(t, err)
	var live string
	testwait.For(t, 15*time.Second, "the live read models never equalled the rebuild", func() bool {
		live, err = s.store.Snapshot(context.Background())
		return err == nil && live == got
	})
	require.Contains(t, live, id1)
}

// TestQueueingCancellationAndTimeout checks MAX_CONCURRENT (extra
// executions wait in queued), cancellation, and the execution timeout.
func TestQueueingAndCancellation(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{maxConcurrent: 1, partitions: 1})
	big, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, "big"), Records: 200000, Sources: 1, Format: "chatml", Seed: 5})
	require.NoError(t, err)
	small, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, "small"), Records: 10, Sources: 1, Format: "chatml", Seed: 6})
	require.NoError(t, err)
	ctx := context.Background()
	first, err := s.client.Submit(ctx, localRequest(big.Files...))
	require.NoError(t, err)
	s.waitStatus(t, first, "running")
	second, err := s.client.Submit(ctx, localRequest(small.Files...))
	require.NoError(t, err)
	s.waitStatus(t, second, "queued")

	require.NoError(t, s.client.Do(ctx, "POST", "/"+first+"/cancel", map[string]string{"reason": "test"}, nil))
	x := s.waitStatus(t, first, "cancelled")
	require.Less(t, x.Valid, int64(200000), "cancellation stopped the work early")
	s.waitStatus(t, second, "completed")

	err = s.client.Do(ctx, "POST", "/"+first+"/cancel", nil, nil)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 409, ae.Status)
}

// TestQueueKeepsSubmissionOrder submits executions faster than they run,
// through several partitions, while a long one holds the only slot: once
// they wait in the queue, they start in the order they were submitted.
// (A request that reaches the processor after a slot frees can still be
// overtaken by one submitted a few milliseconds later on a partition
// consumed sooner; see docs/OPERATIONS.md.)
func TestQueueKeepsSubmissionOrder(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{maxConcurrent: 1, partitions: 4})
	big, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, "big"), Records: 60000, Sources: 1, Format: "chatml", Seed: 5})
	require.NoError(t, err)
	small, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, "small"), Records: 200, Sources: 1, Format: "chatml", Seed: 6})
	require.NoError(t, err)
	ctx := context.Background()
	first, err := s.client.Submit(ctx, localRequest(big.Files...))
	require.NoError(t, err)
	s.waitStatus(t, first, "running")
	var ids []string
	for i := 0; i < 12; i++ {
		id, err := s.client.Submit(ctx, localRequest(small.Files...))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	var started []time.Time
	for _, id := range ids {
		x := s.waitStatus(t, id, "completed")
		require.NotNil(t, x.StartedAt)
		started = append(started, *x.StartedAt)
	}
	for i := 1; i < len(started); i++ {
		require.False(t, started[i].Before(started[i-1]), "execution %d started before execution %d, submitted earlier", i+1, i)
	}
}

func TestExecutionTimeoutFailsTheExecution(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{timeout: 300 * time.Millisecond, partitions: 1})
	big, err := gen.Write(gen.Options{Dir: s.data, Records: 300000, Sources: 1, Format: "chatml", Seed: 9})
	require.NoError(t, err)
	id, msgs := s.run(t, localRequest(big.Files...))
	last := msgs[len(msgs)-1]
	require.Equal(t, "failed", last.Data["status"])
	require.Equal(t, events.CategoryTimeout, last.Data["error_category"])
	x := s.waitStatus(t, id, "failed")
	require.Contains(t, x.ErrorReason, "DATASET_EXECUTION_TIMEOUT_MINUTES")
}

// TestProcessorSurvivesBrokerFaults injects failed produces of staged
// records and a fenced transaction end into kfake mid-execution; the
// processor aborts, recreates its session, reloads its state from the log,
// and the output still holds every record exactly once.
func TestProcessorSurvivesBrokerFaults(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{partitions: 2, faults: true})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 40000, Sources: 2, Format: "chatml", Seed: 13})
	require.NoError(t, err)
	produceFault := s.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "dataset.records.staged",
		Err: kerr.UnknownServerError, Count: 2})
	endFault := s.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, TxnID: "dspipe-processor-0", TopLevel: true,
		Err: kerr.InvalidProducerEpoch, Count: 1})
	id, msgs := s.run(t, localRequest(sum.Files...))
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	require.Positive(t, produceFault.Hits(), "the produce fault fired")
	require.Positive(t, endFault.Hits(), "the transaction fault fired")
	x := s.waitStatus(t, id, "completed")
	lines := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	require.Len(t, lines, 40000)
	seen := map[string]bool{}
	for _, l := range lines {
		src := l["source"].(map[string]any)
		key := fmt.Sprintf("%s#%v", src["name"], src["position"])
		require.False(t, seen[key], "record %s written twice", key)
		seen[key] = true
	}
}

// TestLargeIncompressibleRecordsPass sends records near the record limit
// whose batches cannot be compressed below the broker's default 1 MB.
func TestLargeIncompressibleRecordsPass(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{partitions: 1})
	var body bytes.Buffer
	rnd := make([]byte, 600<<10)
	for i := 0; i < 12; i++ {
		_, _ = rand.Read(rnd)
		fmt.Fprintf(&body, `{"messages":[{"role":"user","content":"%s"}]}`+"\n", base64.StdEncoding.EncodeToString(rnd))
	}
	p := filepath.Join(s.data, "large.jsonl")
	require.NoError(t, os.WriteFile(p, body.Bytes(), 0o600))
	id, msgs := s.run(t, localRequest(p))
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	x := s.waitStatus(t, id, "completed")
	require.EqualValues(t, 12, x.Valid)
}

// TestProjectorRecoversFromDroppedDatabaseConnections kills every Postgres
// backend of the test's database repeatedly while an execution runs; the
// projector must re-claim its partitions from the stored offsets, and the
// read models must still equal a rebuild from the log.
func TestProjectorRecoversFromDroppedDatabaseConnections(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	app := "dspipe-" + s.store.Schema()
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 60000, Sources: 3, Format: "chatml", Seed: 17})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := pgx.Connect(ctx, testenv.DatabaseURL())
	require.NoError(t, err)
	defer admin.Close(context.Background())
	var killed atomic.Int64
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			var n int
			_ = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE application_name = $1`, app).Scan(&n)
			killed.Add(int64(n))
			time.Sleep(30 * time.Millisecond) // the fault: every 30 ms, for as long as it is on
		}
	}()
	id, msgs := s.run(t, localRequest(sum.Files...))
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data["error"])
	// The connections were dropped for the whole run; the projector then
	// catches up. (Killing every 30 ms for ever can starve a transaction
	// that takes longer than that on a loaded machine.)
	cancel()
	<-stopped
	x := s.waitStatus(t, id, "completed")
	require.EqualValues(t, 60000, x.Valid)
	require.Positive(t, killed.Load(), "connections were really terminated")
	t.Logf("terminated %d connections", killed.Load())

	// The test's own pool may still hold a connection the killer ended
	// (pgxpool drops a dead one when it next checks it): read until a read
	// succeeds.
	var live string
	testwait.For(t, 10*time.Second, "the read models could not be read after the faults", func() bool {
		var err error
		live, err = s.store.Snapshot(context.Background())
		return err == nil
	})
	rebuilt, _ := testenv.Schema(t)
	_, err = projector.Rebuild(context.Background(), s.cfg.Kafka, rebuilt, testenv.Logger(t))
	require.NoError(t, err)
	got, err := rebuilt.Snapshot(context.Background())
	require.NoError(t, err)
	require.Equal(t, live, got, "the read models survived the dropped connections intact")
}

// runner is a service instance that runs until its context ends.
type runner interface{ Run(context.Context) error }

// withSecondInstance submits three 60k-record executions, starts the second
// instance of a service once underway holds for the first, and returns the
// executions once they have all completed.
func withSecondInstance(t *testing.T, seed uint64, underway func(store.Execution) bool, second func(*stack) runner) ([]store.Execution, *stack, []string) {
	t.Helper()
	s := startStack(t, stackOpts{partitions: 4})
	var files []string
	for i := 0; i < 3; i++ {
		sum, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, fmt.Sprint(i)), Records: 60000, Format: "chatml", Seed: seed + uint64(i)})
		require.NoError(t, err)
		files = append(files, sum.Files...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var ids []string
	for _, f := range files {
		id, err := s.client.Submit(ctx, localRequest(f))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.Eventually(t, func() bool {
		x, err := s.store.Execution(ctx, ids[0])
		return err == nil && underway(x)
	}, time.Minute, 10*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- second(s).Run(ctx) }()
	var xs []store.Execution
	for _, id := range ids {
		xs = append(xs, s.waitStatus(t, id, "completed"))
	}
	cancel()
	require.NoError(t, <-done)
	return xs, s, files
}

// TestSecondIngestJoiningMidAcquisitionDuplicatesNothing starts a second
// ingest instance while a large acquisition runs: partitions move, the
// moving acquisition stops before its new owner resumes it from the
// checkpoint, and every record arrives exactly once.
func TestSecondIngestJoiningMidAcquisitionDuplicatesNothing(t *testing.T) {
	t.Parallel()
	xs, _, _ := withSecondInstance(t, 40, func(x store.Execution) bool { return x.Received > 2000 }, func(s *stack) runner {
		ic := app.IngestConfig(s.cfg, "ingest-second")
		ic.Keys = s.keys
		return ingest.New(ic, testenv.Logger(t))
	})
	for _, x := range xs {
		require.EqualValues(t, 60000, x.Total, "acquisition counted each record once")
		require.EqualValues(t, 60000, x.Valid)
		lines := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
		require.Len(t, lines, 60000)
	}
}

// TestSecondProcessorJoiningMidExecutionDuplicatesNothing scales the
// processor out while executions run: partitions are rebalanced, the open
// transactions abort, state reloads from the log on both instances, and
// every execution still completes with each record once.
func TestSecondProcessorJoiningMidExecutionDuplicatesNothing(t *testing.T) {
	t.Parallel()
	xs, s, files := withSecondInstance(t, 50, func(x store.Execution) bool { return x.Valid > 5000 }, func(s *stack) runner {
		c := app.ProcessorConfig(s.cfg, "processor-second")
		c.MaxConcurrent, c.Keys = 5, s.keys
		return processor.New(c, testenv.Logger(t))
	})
	for _, x := range xs {
		require.EqualValues(t, 60000, x.Valid)
		lines := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
		require.Len(t, lines, 60000)
		seen := map[float64]bool{}
		for _, l := range lines {
			pos := l["source"].(map[string]any)["position"].(float64)
			require.False(t, seen[pos], "position %v twice", pos)
			seen[pos] = true
		}
	}
	// The same input with one processor: the same bytes as with two.
	req := localRequest(files[0])
	req.Output.Destination = "single-processor"
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"])
	one := waitProjected(t, s, id, msgs)
	if dataSHA(t, xs[0].OutputDir) != dataSHA(t, one.OutputDir) {
		// Where the outputs part, and in which fields (not their text).
		a := readLines(t, filepath.Join(xs[0].OutputDir, "data.jsonl.zst"))
		b := readLines(t, filepath.Join(one.OutputDir, "data.jsonl.zst"))
		for i := range min(len(a), len(b)) {
			var fields []string
			for k := range a[i] {
				if fmt.Sprint(a[i][k]) != fmt.Sprint(b[i][k]) {
					fields = append(fields, k)
				}
			}
			if len(fields) > 0 {
				t.Logf("line %d differs in %v (source %v against %v)", i, fields, a[i]["source"], b[i]["source"])
				break
			}
		}
	}
	require.Equal(t, dataSHA(t, xs[0].OutputDir), dataSHA(t, one.OutputDir), "two processors write what one writes")
}

// dataSHA is the SHA-256 of an output's data file, from its manifest.
func dataSHA(t *testing.T, dir string) string {
	t.Helper()
	var m struct {
		Files []events.OutputFile `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	for _, f := range m.Files {
		if strings.HasPrefix(f.Name, "data") {
			return f.SHA256
		}
	}
	t.Fatalf("no data file in %s", dir)
	return ""
}
