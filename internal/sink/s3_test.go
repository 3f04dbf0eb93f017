package sink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/remotetest"
)

// TestUploadDirSmallAndMultipart uploads a file in one PUT and one in
// parts (to gofakes3, through aws-sdk-go-v2) and reads both back whole.
func TestUploadDirSmallAndMultipart(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	old := PartSize
	PartSize = 5 << 20
	t.Cleanup(func() { PartSize = old })
	ctx := context.Background()
	c, err := NewS3Client(ctx, "us-east-1", remotetest.StartS3(t))
	require.NoError(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("out")})
	require.NoError(t, err)
	dir := t.TempDir()
	big := make([]byte, 12<<20+123) // three parts
	_, _ = rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.jsonl"), big, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{}`), 0o600))
	d, ok, err := ParseS3("s3://out/run/1")
	require.True(t, ok)
	require.NoError(t, err)
	require.NoError(t, UploadDir(ctx, c, d, dir, []string{"manifest.json", "data.jsonl"}))
	for name, want := range map[string][]byte{"data.jsonl": big, "manifest.json": []byte(`{}`)} {
		o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("out"), Key: aws.String("run/1/" + name)})
		require.NoError(t, err)
		got, err := io.ReadAll(o.Body)
		o.Body.Close()
		require.NoError(t, err)
		require.Equal(t, sha256.Sum256(want), sha256.Sum256(got), name)
	}
	_, _, err = ParseS3("s3:///nobucket")
	require.Error(t, err)
}
