package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// OwnerObject is the object that says which execution an S3 output
// prefix belongs to; it is written before any data.
const OwnerObject = ".dspipe-owner"

// s3Owner reads a prefix's owner object: exists is false when there is
// none.
func s3Owner(ctx context.Context, c *s3.Client, d S3Destination) (o Ownership, exists bool, err error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(path.Join(d.Prefix, OwnerObject))})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) || isStatus(err, 404) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("sink: read s3://%s/%s owner: %w", d.Bucket, d.Prefix, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 4096))
	if err != nil {
		return o, true, err
	}
	_ = json.Unmarshal(b, &o)
	return o, true, nil
}

func isStatus(err error, code int) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

// ClaimS3 is Claim for an S3 prefix: the prefix itself when it holds no
// object or is already this execution's, or with newVersion and the same
// user, the first free prefix.v2, .v3, ...; the claim is written as the
// owner object before any data. A prefix holding objects but no owner, or
// another execution's, is ErrTaken.
func ClaimS3(ctx context.Context, c *s3.Client, d S3Destination, me Ownership, newVersion bool) (S3Destination, error) {
	for v := 1; v <= 1000; v++ {
		cand := d
		if v > 1 {
			cand.Prefix = fmt.Sprintf("%s.v%d", d.Prefix, v)
		}
		o, exists, err := s3Owner(ctx, c, cand)
		if err != nil {
			return cand, err
		}
		if exists && o.ExecutionID == me.ExecutionID {
			return cand, nil
		}
		if exists {
			if newVersion && o.UserID == me.UserID && o.UserID != "" {
				continue
			}
			return cand, fmt.Errorf("%w: %s", ErrTaken, cand)
		}
		prefix := cand.Prefix
		if prefix != "" {
			prefix += "/"
		}
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(cand.Bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1)})
		if err != nil {
			return cand, fmt.Errorf("sink: list %s: %w", cand, err)
		}
		if len(list.Contents) > 0 {
			if newVersion {
				continue
			}
			return cand, fmt.Errorf("%w: %s holds objects of unknown origin", ErrTaken, cand)
		}
		b, _ := json.Marshal(me)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cand.Bucket), Key: aws.String(path.Join(cand.Prefix, OwnerObject)),
			Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))}); err != nil {
			return cand, fmt.Errorf("sink: claim %s: %w", cand, err)
		}
		return cand, nil
	}
	return d, fmt.Errorf("%w: %s has 1000 versions", ErrTaken, d)
}

// StillOwnedS3 checks, before the manifest makes an output complete, that
// the prefix is still this execution's (two claims racing for an empty
// prefix: the later owner object wins, and the loser stops here).
func StillOwnedS3(ctx context.Context, c *s3.Client, d S3Destination, me Ownership) error {
	o, exists, err := s3Owner(ctx, c, d)
	if err != nil {
		return err
	}
	if !exists || o.ExecutionID != me.ExecutionID {
		return fmt.Errorf("%w: %s was claimed by another execution while this output was uploaded", ErrTaken, d)
	}
	return nil
}

// DeleteS3Prefix deletes every object of an output prefix but its owner
// object, which stays as a tombstone (the prefix remains that execution's
// for ever), and returns how many it deleted.
func DeleteS3Prefix(ctx context.Context, c *s3.Client, d S3Destination) (int, error) {
	prefix := d.Prefix
	if prefix != "" {
		prefix += "/"
	}
	n := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(d.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("sink: list %s: %w", d, err)
		}
		for _, o := range page.Contents {
			if path.Base(aws.ToString(o.Key)) == OwnerObject {
				continue
			}
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(d.Bucket), Key: o.Key}); err != nil {
				return n, fmt.Errorf("sink: delete s3://%s/%s: %w", d.Bucket, aws.ToString(o.Key), err)
			}
			n++
		}
	}
	return n, nil
}
