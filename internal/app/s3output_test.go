package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/remotetest"
	"github.com/dspipe/dspipe/internal/sink"
)

// s3WithBucket starts an S3-compatible store with one bucket and gives the
// processor credentials for it through the environment (so the test
// cannot run in parallel).
func s3WithBucket(t *testing.T, bucket string) (string, *s3.Client) {
	endpoint := remotetest.StartS3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	c, err := sink.NewS3Client(context.Background(), "us-east-1", endpoint)
	require.NoError(t, err)
	_, err = c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	return endpoint, c
}

// TestOutputToS3 writes an execution's output to an S3-compatible store
// (gofakes3, in process) through aws-sdk-go-v2: every file of the manifest
// is there with the SHA-256 the manifest gives, and nothing is left in the
// local staging area.
func TestOutputToS3(t *testing.T) {
	// Not parallel: the processor takes its S3 credentials from the
	// environment (the default AWS chain).
	endpoint, c := s3WithBucket(t, "datasets")
	ctx := context.Background()

	s := startStack(t, stackOpts{env: map[string]string{"DSPIPE_OUTPUT_S3_ENDPOINT": endpoint}})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 500, Sources: 1, Format: "chatml", Seed: 71})
	require.NoError(t, err)
	req := localRequest(sum.Files...)
	req.Output = events.OutputSpec{Formats: []string{"jsonl", "parquet"}, Compression: "gzip", Destination: "s3://datasets/runs/one"}
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	x := waitProjected(t, s, id, msgs)
	require.Equal(t, "s3://datasets/runs/one", x.OutputDir)

	get := func(key string) []byte {
		o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("datasets"), Key: aws.String("runs/one/" + key)})
		require.NoError(t, err, key)
		defer o.Body.Close()
		b, err := io.ReadAll(o.Body)
		require.NoError(t, err)
		return b
	}
	var manifest struct {
		Files []events.OutputFile `json:"files"`
	}
	require.NoError(t, json.Unmarshal(get("manifest.json"), &manifest))
	require.GreaterOrEqual(t, len(manifest.Files), 4)
	for _, f := range manifest.Files {
		sum := sha256.Sum256(get(f.Name))
		require.Equal(t, f.SHA256, hex.EncodeToString(sum[:]), f.Name)
	}
}

// TestOutputToS3RetriesAPassingFailure: the store answers the first four
// uploads with 503. The SDK's own retries give up after three, so the
// first attempt of the output stage fails; the stage classifies the failure
// as passing, tries again with backoff, and the execution completes with
// every file in place.
func TestOutputToS3RetriesAPassingFailure(t *testing.T) {
	// Not parallel: the processor takes its S3 credentials from the
	// environment (the default AWS chain).
	endpoint, c := s3WithBucket(t, "datasets")
	ctx := context.Background()
	target, err := url.Parse(endpoint)
	require.NoError(t, err)
	var refused atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && refused.Load() < 4 {
			refused.Add(1)
			http.Error(w, "<Error><Code>ServiceUnavailable</Code></Error>", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()

	s := startStack(t, stackOpts{env: map[string]string{"DSPIPE_OUTPUT_S3_ENDPOINT": flaky.URL, "DSPIPE_RETRY_BASE_MS": "10"}})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 200, Sources: 1, Format: "chatml", Seed: 72})
	require.NoError(t, err)
	req := localRequest(sum.Files...)
	req.Output = events.OutputSpec{Formats: []string{"jsonl"}, Destination: "s3://datasets/runs/flaky"}
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	require.EqualValues(t, 4, refused.Load())
	x := waitProjected(t, s, id, msgs)
	require.Equal(t, "s3://datasets/runs/flaky", x.OutputDir)
	o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("datasets"), Key: aws.String("runs/flaky/manifest.json")})
	require.NoError(t, err)
	o.Body.Close()
}
