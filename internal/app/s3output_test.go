package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/remotetest"
	"github.com/dspipe/dspipe/internal/sink"
)

// TestOutputToS3 writes an execution's output to an S3-compatible store
// (gofakes3, in process) through aws-sdk-go-v2: every file of the manifest
// is there with the SHA-256 the manifest gives, and nothing is left in the
// local staging area.
func TestOutputToS3(t *testing.T) {
	// Not parallel: the processor takes its S3 credentials from the
	// environment (the default AWS chain).
	endpoint := remotetest.StartS3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	ctx := context.Background()
	c, err := sink.NewS3Client(ctx, "us-east-1", endpoint)
	require.NoError(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("datasets")})
	require.NoError(t, err)

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
