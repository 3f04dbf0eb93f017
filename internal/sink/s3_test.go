package sink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/remotetest"
)

// TestUploadDirSmallAndMultipart uploads a file in one PUT and one in
// parts through aws-sdk-go-v2 and reads both back whole: against gofakes3
// in process, and against versitygw on loopback when .ci/run started it.
func TestUploadDirSmallAndMultipart(t *testing.T) {
	t.Run("gofakes3", func(t *testing.T) { uploadDir(t, remotetest.StartS3(t), "test", "test") })
	t.Run("versitygw", func(t *testing.T) {
		ep := os.Getenv("DSPIPE_TEST_S3_ENDPOINT")
		if ep == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("DSPIPE_TEST_S3_ENDPOINT is unset: .ci/run starts versitygw and sets it")
			}
			t.Skip("SKIPPED: DSPIPE_TEST_S3_ENDPOINT is unset (scripts/s3.sh start runs versitygw)")
		}
		uploadDir(t, ep, os.Getenv("DSPIPE_TEST_S3_ACCESS_KEY"), os.Getenv("DSPIPE_TEST_S3_SECRET_KEY"))
	})
}

func uploadDir(t *testing.T, endpoint, access, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	old := PartSize
	PartSize = 5 << 20
	t.Cleanup(func() { PartSize = old })
	ctx := context.Background()
	c, err := NewS3Client(ctx, "us-east-1", endpoint)
	require.NoError(t, err)
	bucket := fmt.Sprintf("out-%d", time.Now().UnixNano())
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	dir := t.TempDir()
	big := make([]byte, 12<<20+123) // three parts
	_, _ = rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.jsonl"), big, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{}`), 0o600))
	d, ok, err := ParseS3("s3://" + bucket + "/run/1")
	require.True(t, ok)
	require.NoError(t, err)
	require.NoError(t, UploadDir(ctx, c, d, dir, []string{"manifest.json", "data.jsonl"}, nil))
	for name, want := range map[string][]byte{"data.jsonl": big, "manifest.json": []byte(`{}`)} {
		o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("run/1/" + name)})
		require.NoError(t, err)
		got, err := io.ReadAll(o.Body)
		o.Body.Close()
		require.NoError(t, err)
		require.Equal(t, sha256.Sum256(want), sha256.Sum256(got), name)
	}
	_, _, err = ParseS3("s3:///nobucket")
	require.Error(t, err)
}

// TestClaimS3NeverTakesAnotherExecutionsPrefix is finding 1 for S3
// destinations: the first execution claims an empty prefix with an owner
// object; another user's execution is refused; the owner's new_version goes
// to prefix.v2; a prefix holding objects of unknown origin is refused; an
// upload whose claim was taken over stops before its manifest.
func TestClaimS3NeverTakesAnotherExecutionsPrefix(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	c, err := NewS3Client(ctx, "us-east-1", remotetest.StartS3(t))
	require.NoError(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("out")})
	require.NoError(t, err)
	d := S3Destination{Bucket: "out", Prefix: "shared"}
	alice := Ownership{ExecutionID: "ds_a1", UserID: "alice"}
	got, err := ClaimS3(ctx, c, d, alice, false)
	require.NoError(t, err)
	require.Equal(t, d, got)
	got, err = ClaimS3(ctx, c, d, alice, false)
	require.NoError(t, err, "a rerun finds its own claim")
	require.Equal(t, d, got)

	_, err = ClaimS3(ctx, c, d, Ownership{ExecutionID: "ds_b1", UserID: "bob"}, true)
	require.ErrorIs(t, err, ErrTaken)
	got, err = ClaimS3(ctx, c, d, Ownership{ExecutionID: "ds_a2", UserID: "alice"}, true)
	require.NoError(t, err)
	require.Equal(t, "shared.v2", got.Prefix)

	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("out"), Key: aws.String("stray/data.jsonl"), Body: strings.NewReader("{}")})
	require.NoError(t, err)
	_, err = ClaimS3(ctx, c, S3Destination{Bucket: "out", Prefix: "stray"}, alice, false)
	require.ErrorIs(t, err, ErrTaken)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{}`), 0o600))
	err = UploadDir(ctx, c, d, dir, []string{"manifest.json"}, &Ownership{ExecutionID: "ds_b1", UserID: "bob"})
	require.ErrorIs(t, err, ErrTaken)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("out"), Key: aws.String("shared/manifest.json")})
	require.Error(t, err, "no manifest was published over alice's claim")
}
