package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
	"github.com/dspipe/dspipe/internal/testwait"
)

// lockedBuffer collects log lines from every service goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// canaries are the planted identifiers; none may appear anywhere in
// plaintext (record payloads are encrypted at rest; outputs hold masks).
var canaries = []string{"canary-7731@example.org", "Zelda", "Quarrington", "123-45-6789", "(415) 555-0142"}

// TestCanariesAppearNowhere plants unique identifiers in message text, in
// metadata, in a record's own id and in a review note, runs the pipeline
// with every output format, and scans every service log line, every
// record of every topic (read by a plain consumer), the broker's data
// directory (batches uncompressed), a pg_dump of the schema and every file
// under the output root: the canaries appear nowhere in plaintext, only
// as masks in the outputs.
func TestCanariesAppearNowhere(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	brokerDir := t.TempDir()
	s := startStack(t, stackOpts{tokens: twoUsers, logs: logs, kfake: []kfake.Opt{kfake.DataDir(brokerDir), kfake.SyncWrites()},
		env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true", "CRISIS_DETECTION_THRESHOLD": "0.5", "DSPIPE_LOG_LEVEL": "debug",
			"KAFKA_COMPRESSION": "none"}})
	in := filepath.Join(s.data, "canary.jsonl")
	recs := canaryRecords + `{"id":"q-3","topic":"call (415) 555-0142","messages":[{"role":"user","content":"Zelda Quarrington here, my number is (415) 555-0142."},{"role":"assistant","content":"Thanks, Zelda. How can I help today?"}]}` + "\n"
	require.NoError(t, os.WriteFile(in, []byte(recs), 0o644))
	req := localRequest(in)
	req.Output = events.OutputSpec{Formats: []string{"jsonl", "csv", "parquet"}, Compression: "zstd"}
	alice, rita, admin := s.as("alice-token-1"), s.as("review-token"), s.as("admin-token-1")
	id, status := runAs(t, s, alice, req)
	require.Equal(t, "completed", status)
	ctx := context.Background()
	var queue struct {
		Reviews []store.Review `json:"reviews"`
	}
	require.NoError(t, rita.DoV1(ctx, "GET", "/reviews?execution_id="+id, nil, &queue))
	require.NotEmpty(t, queue.Reviews, "the crisis record is quarantined for review")
	require.NoError(t, rita.DoV1(ctx, "POST", fmt.Sprintf("/reviews/%s/%d/acknowledge", id, queue.Reviews[0].Review),
		map[string]string{"note": "Spoke with Zelda Quarrington (canary-7731@example.org, 123-45-6789, (415) 555-0142)."}, nil))
	// A second execution, cancelled with a reason that names her.
	id2, err := alice.Submit(ctx, req)
	require.NoError(t, err)
	s.waitStatusSeq(t, id2, 1)
	_ = alice.Do(ctx, "POST", "/"+id2+"/cancel", map[string]string{"reason": "Zelda Quarrington asked us to stop"}, nil)
	require.NoError(t, admin.Do(ctx, "POST", "/"+id2+"/progress", map[string]any{"stage": "output", "percent": 50, "message": "mailed canary-7731@example.org"}, nil))
	x := s.waitStatus(t, id, "completed")
	// Wait for the acknowledgement's seal to be projected.
	testwait.For(t, 30*time.Second, "the acknowledgement never reached the trail", func() bool {
		x, _ = s.store.Execution(ctx, id)
		raws, _ := s.store.EventsSince(ctx, id, 0, 10000)
		n := len(raws)
		return n > 0 && strings.Contains(string(raws[n-1]), events.TypeExecutionSealed) &&
			strings.Contains(string(bytes.Join(raws, nil)), events.TypeReviewAcknowledged)
	})
	s.waitStatusSeq(t, id2, 2)

	found := map[string][]string{} // where -> canaries
	scan := func(where, text string) {
		for _, c := range canaries {
			if strings.Contains(text, c) {
				found[where] = append(found[where], c)
			}
		}
	}

	// Every topic, every record.
	topics := s.cfg.Kafka.Topics()
	for _, topic := range []string{topics.Commands, topics.Events, topics.Raw, topics.Staged, topics.Checkpoints, topics.Access} {
		var all strings.Builder
		for p := int32(0); p < s.cfg.Kafka.Partitions; p++ {
			require.NoError(t, s.cfg.Kafka.ReadPartition(ctx, topic, p, 0, func(r *kgo.Record) error {
				all.Write(r.Key)
				all.Write(r.Value)
				for _, h := range r.Headers {
					all.Write(h.Value)
				}
				return nil
			}))
		}
		require.NotZero(t, all.Len(), "topic %s holds records", topic)
		scan("topic "+topic, all.String())
	}

	// The broker's files, as bytes.
	var disk strings.Builder
	require.NoError(t, filepath.Walk(brokerDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		disk.Write(b)
		return err
	}))
	require.Contains(t, disk.String(), "dataset.execution.requested", "the broker's files hold the batches, uncompressed")
	scan("broker data directory", disk.String())

	// Every row of the schema.
	scan("postgres", dumpSchema(t, s.cfg.DBSchema))

	// Every output file, decoded.
	require.NoError(t, filepath.Walk(s.out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if strings.Contains(p, ".parquet") {
			scan("output "+filepath.Base(p), parquetText(t, p))
			return nil
		}
		scan("output "+filepath.Base(p), readAllText(t, p))
		return nil
	}))

	// Every log line of every service: stopped first, so that what the
	// access log and the processor write asynchronously is written.
	s.stop(t)
	scan("logs", logs.String())
	require.NotEmpty(t, logs.String())

	require.Empty(t, found, "no canary in plaintext anywhere")
	// And they were masked, not dropped: the masks are there.
	require.Contains(t, readAllText(t, filepath.Join(x.OutputDir, "data.jsonl.zst")), "[PERSON_")
	trail := readEvents(t, s, id)
	require.Contains(t, trail, "Spoke with [PERSON] ([EMAIL], [SSN], [PHONE]")
}

// dumpSchema is every row of one schema as text: pg_dump when installed,
// else every table read as JSON.
func dumpSchema(t *testing.T, schema string) string {
	t.Helper()
	if bin, err := exec.LookPath("pg_dump"); err == nil {
		out, err := exec.Command(bin, "--data-only", "--schema="+schema, testenv.DatabaseURL()).Output()
		if err == nil {
			require.Contains(t, string(out), "COPY "+schema+".executions")
			return string(out)
		}
		t.Logf("pg_dump failed (%v); reading the tables instead", err)
	}
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(testenv.DatabaseURL())
	require.NoError(t, err)
	c, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema=$1`, schema)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	var b strings.Builder
	for _, tb := range tables {
		rows, err := c.Query(ctx, fmt.Sprintf(`SELECT row_to_json(t)::text FROM %s.%s t`, pgx.Identifier{schema}.Sanitize(), pgx.Identifier{tb}.Sanitize()))
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}
