package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/remotetest"
	"github.com/dspipe/dspipe/internal/store"
)

type pqMsg struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type pqRow struct {
	ID       string  `parquet:"id"`
	Topic    string  `parquet:"topic"`
	Messages []pqMsg `parquet:"messages,list"`
}

func putS3(t *testing.T, endpoint, bucket, key string, body []byte) {
	ctx := context.Background()
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("k", "s", "")))
	require.NoError(t, err)
	c := s3.NewFromConfig(ac, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	_, _ = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
	require.NoError(t, err)
}

// TestThreeSourcesOfDifferentFormatsAndPriorities runs one request over a
// CSV object on S3 (with a field mapping), a HuggingFace dataset's Parquet
// conversion (nested message lists) and a gzipped local JSONL file, and
// checks the output's provenance counts per source against the inputs.
func TestThreeSourcesOfDifferentFormatsAndPriorities(t *testing.T) {
	t.Parallel()
	s3URL := remotetest.StartS3(t)
	hub := remotetest.StartHub(t)
	s := startStack(t, stackOpts{env: map[string]string{
		"DSPIPE_ALLOW_PRIVATE_ENDPOINTS": "true", "HF_ENDPOINT": hub.URL, "HF_TOKEN": hub.Token,
		"DSPIPE_SOURCE_SECRETS": "DSPIPE_TEST_AK,DSPIPE_TEST_SK", "DSPIPE_TEST_AK": "k", "DSPIPE_TEST_SK": "s",
	}})

	// S3: 300 CSV rows whose columns need mapping to question/answer.
	var csvBuf bytes.Buffer
	w := csv.NewWriter(&csvBuf)
	_ = w.Write([]string{"prompt", "response", "topic"})
	for i := range 300 {
		_ = w.Write([]string{fmt.Sprintf("How do I cope with stress at work, week %d?", i), "Short breaks and talking to someone you trust can help.", "stress"})
	}
	w.Flush()
	putS3(t, s3URL, "partner", "exports/chats.csv", csvBuf.Bytes())

	// Hub: 200 Parquet rows with a nested messages list, in two files.
	files := map[string][]byte{}
	for f := range 2 {
		var b bytes.Buffer
		pw := parquet.NewGenericWriter[pqRow](&b, parquet.MaxRowsPerRowGroup(40))
		var rows []pqRow
		for i := range 100 {
			rows = append(rows, pqRow{ID: fmt.Sprintf("hf-%d-%d", f, i), Topic: "sleep", Messages: []pqMsg{
				{Role: "user", Content: fmt.Sprintf("I keep waking at 4am (%d/%d).", f, i)},
				{Role: "assistant", Content: "Early waking is common under stress; a steady routine helps."},
			}})
		}
		_, err := pw.Write(rows)
		require.NoError(t, err)
		require.NoError(t, pw.Close())
		files[fmt.Sprintf("%04d.parquet", f)] = b.Bytes()
	}
	hub.Put("research/counselling", remotetest.HubDataset{Gated: true, Parquet: map[string]map[string]map[string][]byte{"default": {"train": files}}})

	// Local: 500 gzipped JSONL conversations and one malformed line.
	var jl bytes.Buffer
	zw := gzip.NewWriter(&jl)
	for i := range 500 {
		fmt.Fprintf(zw, `{"messages":[{"role":"user","content":"local question %d"},{"role":"assistant","content":"local answer"}]}`+"\n", i)
		if i == 249 {
			fmt.Fprintln(zw, `{"messages":[{"role":"user"`)
		}
	}
	require.NoError(t, zw.Close())
	local := filepath.Join(s.data, "chats.jsonl.gz")
	require.NoError(t, os.WriteFile(local, jl.Bytes(), 0o644))

	req := events.Request{Output: events.OutputSpec{Compression: "zstd"}, Sources: []events.SourceSpec{
		{Name: "disk", Type: "local", Config: map[string]string{"path": local}, Priority: 3},
		{Name: "partner-s3", Type: "s3", Priority: 1, Config: map[string]string{"bucket": "partner", "key": "exports/chats.csv",
			"endpoint": s3URL, "access_key_id": "${DSPIPE_TEST_AK}", "secret_access_key": "${DSPIPE_TEST_SK}"},
			Mapping: map[string]string{"prompt": "question", "response": "answer"}},
		{Name: "hub", Type: "huggingface", Priority: 2, Config: map[string]string{"dataset": "research/counselling"}},
	}}
	id, msgs := s.run(t, req)
	final := msgs[len(msgs)-1]
	require.Equal(t, "completed", final.Data["status"], "%v", final.Data)

	x := waitProjected(t, s, id, msgs)
	lines := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	per := map[string]int{}
	uris := map[string]map[string]bool{}
	for _, l := range lines {
		src := l["source"].(map[string]any)
		name := src["name"].(string)
		per[name]++
		if uris[name] == nil {
			uris[name] = map[string]bool{}
		}
		uris[name][src["uri"].(string)] = true
	}
	require.Equal(t, map[string]int{"partner-s3": 300, "hub": 200, "disk": 500}, per)
	require.Equal(t, map[string]bool{"s3://partner/exports/chats.csv": true}, uris["partner-s3"])
	require.Equal(t, map[string]bool{"hf://datasets/research/counselling/default/train/0000.parquet": true,
		"hf://datasets/research/counselling/default/train/0001.parquet": true}, uris["hub"])
	// A local file is named relative to its allowed root, never by the
	// machine's absolute path.
	require.Equal(t, map[string]bool{"local:data/chats.jsonl.gz": true}, uris["disk"])

	rej := readLines(t, filepath.Join(x.OutputDir, "rejected.jsonl"))
	require.Len(t, rej, 1)
	require.Equal(t, "disk", rej[0]["source"])
	require.EqualValues(t, 251, rej[0]["position"])
	require.Equal(t, "local:data/chats.jsonl.gz", rej[0]["object"])

	var stats struct {
		Sources []struct {
			Name    string `json:"name"`
			Status  string `json:"status"`
			Records int64  `json:"records"`
			Valid   int64  `json:"valid_records"`
		} `json:"sources"`
	}
	require.NoError(t, s.client.Do(context.Background(), "GET", "/statistics/"+id, nil, &stats))
	got := map[string][3]any{}
	for _, src := range stats.Sources {
		got[src.Name] = [3]any{src.Status, src.Records, src.Valid}
	}
	require.Equal(t, map[string][3]any{
		"partner-s3": {"completed", int64(300), int64(300)},
		"hub":        {"completed", int64(200), int64(200)},
		"disk":       {"completed", int64(501), int64(500)},
	}, got)
	// Credentials never reach the event log: only the reference does.
	evs := readEvents(t, s, id)
	require.NotContains(t, evs, "\"s\"")
	require.Contains(t, evs, "${DSPIPE_TEST_SK}")
}

// TestFailingSourceRetriesThenFallsBackOrFails: a source whose store keeps
// answering 5xx is retried DATASET_RETRY_ATTEMPTS times with the retries
// visible live, then either skipped (on_failure fallback) or fails the
// execution (the default).
func TestFailingSourceRetriesThenFallsBackOrFails(t *testing.T) {
	t.Parallel()
	// One source at a time, so the order they start in is the priority order.
	s := startStack(t, stackOpts{env: map[string]string{"DSPIPE_ALLOW_PRIVATE_ENDPOINTS": "true", "DATASET_RETRY_ATTEMPTS": "2", "DSPIPE_RETRY_BASE_MS": "20", "DSPIPE_SOURCE_CONCURRENCY": "1",
		"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "DSPIPE_SOURCE_SECRETS": "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY"}})
	good := filepath.Join(s.data, "good.jsonl")
	require.NoError(t, os.WriteFile(good, []byte(strings.Repeat(`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`+"\n", 10)), 0o644))
	// The flaky source's endpoint is a closed port: connection refused is
	// transient, so it is retried.
	for _, policy := range []string{events.OnFailureFallback, events.OnFailureFail} {
		t.Run(policy, func(t *testing.T) {
			req := events.Request{Sources: []events.SourceSpec{
				{Name: "good", Type: "local", Config: map[string]string{"path": good}, Priority: 2},
				{Name: "flaky", Type: "s3", Priority: 1, OnFailure: policy, Config: map[string]string{"bucket": "bkt", "key": "k.jsonl", "endpoint": "http://127.0.0.1:1",
					"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}"}},
			}}
			id, msgs := s.run(t, req)
			final := msgs[len(msgs)-1]
			var retries, fallbacks int
			for _, m := range msgs {
				if m.EventType == "dataset_alert" {
					switch m.Data["code"] {
					case "source_retry":
						retries++
					case "source_fallback":
						fallbacks++
					}
				}
			}
			require.Equal(t, 2, retries, "DATASET_RETRY_ATTEMPTS retries, each announced live")
			// The read model has every event once it shows the terminal
			// status (the projector applies them in order).
			x := waitProjected(t, s, id, msgs)
			started := startedSources(t, s, id)
			if policy == events.OnFailureFallback {
				require.Equal(t, []string{"flaky", "good"}, started, "priority 1 first, though listed second")
				require.Equal(t, "completed", final.Data["status"], "%v", final.Data)
				require.Equal(t, 1, fallbacks)
				require.EqualValues(t, 10, x.Valid)
			} else {
				require.Equal(t, "failed", final.Data["status"], "%v", final.Data)
				require.Equal(t, []string{"flaky"}, started, "the execution failed before the next source started")
				require.Contains(t, fmt.Sprint(final.Data["error"]), "flaky")
			}
		})
	}
}

// waitProjected waits for the read model to reach the status the live feed ended with.
func waitProjected(t *testing.T, s *stack, id string, msgs []client.Message) store.Execution {
	t.Helper()
	return s.waitStatus(t, id, fmt.Sprint(msgs[len(msgs)-1].Data["status"]))
}

// readEvents is the execution's whole event log as projected, as text.
func readEvents(t *testing.T, s *stack, id string) string {
	t.Helper()
	evs, err := s.store.EventsSince(context.Background(), id, 0, 100000)
	require.NoError(t, err)
	return string(bytes.Join(evs, []byte("\n")))
}

// startedSources lists the sources in the order their started events were
// published.
func startedSources(t *testing.T, s *stack, id string) []string {
	t.Helper()
	raw, err := s.store.EventsSince(context.Background(), id, 0, 100000)
	require.NoError(t, err)
	var out []string
	for _, b := range raw {
		e, err := events.Decode(b)
		require.NoError(t, err)
		if e.Type != events.TypeSourceStarted {
			continue
		}
		p, err := events.Parse(e)
		require.NoError(t, err)
		out = append(out, p.(*events.SourceStarted).Name)
	}
	return out
}
