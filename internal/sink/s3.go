package sink

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
)

// S3Destination is an output destination s3://bucket/prefix.
type S3Destination struct {
	Bucket, Prefix string
}

// ParseS3 reads s3://bucket/prefix; ok is false for other destinations.
func ParseS3(dest string) (S3Destination, bool, error) {
	if !strings.HasPrefix(dest, "s3://") {
		return S3Destination{}, false, nil
	}
	u, err := url.Parse(dest)
	if err != nil || u.Host == "" || strings.Contains(u.Path, "..") {
		return S3Destination{}, true, fmt.Errorf("output.destination: an S3 destination is s3://bucket/prefix")
	}
	return S3Destination{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}, true, nil
}

// String is the destination as a URI.
func (d S3Destination) String() string { return "s3://" + d.Bucket + "/" + d.Prefix }

// NewS3Client builds the output's S3 client from the server's settings:
// region, an optional endpoint for S3-compatible stores (path-style), and
// the default AWS credential chain.
func NewS3Client(ctx context.Context, region, endpoint string) (*s3.Client, error) {
	if region == "" {
		region = "us-east-1"
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithLogger(logging.Nop{}))
	if err != nil {
		return nil, fmt.Errorf("sink: AWS configuration: %w", err)
	}
	return s3.NewFromConfig(ac, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// UploadDir puts the named files of dir under the destination, the
// manifest last: each object appears whole or not at all, and a reader
// takes the output as complete once manifest.json exists. Uploading again
// after a crash writes the same bytes. When me is set, the destination
// must still be its claim (ClaimS3) before the manifest goes up.
func UploadDir(ctx context.Context, c *s3.Client, d S3Destination, dir string, names []string, me *Ownership) error {
	var manifest string
	for _, n := range names {
		if n == "manifest.json" {
			manifest = n
			continue
		}
		if err := put(ctx, c, d, dir, n); err != nil {
			return err
		}
	}
	if me != nil {
		if err := StillOwnedS3(ctx, c, d, *me); err != nil {
			return err
		}
	}
	if manifest != "" {
		return put(ctx, c, d, dir, manifest)
	}
	return nil
}

// PartSize is the size of a multipart upload's parts; a file up to this
// size is one PUT. S3 allows parts from 5 MiB and 10,000 parts an upload.
var PartSize int64 = 64 << 20

func put(ctx context.Context, c *s3.Client, d S3Destination, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	key := path.Join(d.Prefix, name)
	if st.Size() <= PartSize {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key), Body: f,
			ContentLength: aws.Int64(st.Size())}); err != nil {
			return fmt.Errorf("sink: upload s3://%s/%s: %w", d.Bucket, key, err)
		}
		return nil
	}
	if err := putMultipart(ctx, c, d.Bucket, key, f, st.Size()); err != nil {
		return fmt.Errorf("sink: upload s3://%s/%s: %w", d.Bucket, key, err)
	}
	return nil
}

// putMultipart uploads a large file in parts; the object appears only when
// the upload completes, and a failed upload is aborted.
func putMultipart(ctx context.Context, c *s3.Client, bucket, key string, f io.ReaderAt, size int64) error {
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	abort := func(err error) error {
		_, _ = c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
		return err
	}
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+PartSize, n+1 {
		length := min(PartSize, size-off)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: io.NewSectionReader(f, off, length), ContentLength: aws.Int64(length)})
		if err != nil {
			return abort(err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		return abort(err)
	}
	return nil
}
