package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// S3 reads one object (config.key) or every object under a prefix
// (config.prefix) of a bucket, from AWS or from an S3-compatible store
// (config.endpoint, path-style).
type S3 struct {
	Bucket string
	Key    string
	Prefix string
	client *s3.Client
}

// NewS3 builds an S3 source from a request's config: bucket, key or prefix,
// region, endpoint, and access_key_id / secret_access_key / session_token
// as ${ENV_VAR} references (the default AWS credential chain when absent).
func NewS3(ctx context.Context, cfg map[string]string, env Env) (*S3, error) {
	s := &S3{Bucket: cfg["bucket"], Key: cfg["key"], Prefix: cfg["prefix"]}
	if s.Bucket == "" {
		s.Bucket = env.S3Bucket
	}
	if s.Bucket == "" {
		return nil, fmt.Errorf("%w: an s3 source needs config.bucket (or AWS_S3_BUCKET on the server)", ErrConfig)
	}
	// An empty prefix given explicitly means the whole bucket.
	if (s.Key == "" && !hasKey(cfg, "prefix")) || (s.Key != "" && s.Prefix != "") {
		return nil, fmt.Errorf("%w: an s3 source needs exactly one of config.key or config.prefix", ErrConfig)
	}
	region := firstOf(cfg["region"], env.S3Region, "us-east-1")
	// The SDK's own logger writes to stderr outside our structured logs.
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region), awsconfig.WithLogger(logging.Nop{})}
	ak, err := env.Secret("access_key_id", cfg["access_key_id"])
	if err != nil {
		return nil, err
	}
	sk, err := env.Secret("secret_access_key", cfg["secret_access_key"])
	if err != nil {
		return nil, err
	}
	tok, err := env.Secret("session_token", cfg["session_token"])
	if err != nil {
		return nil, err
	}
	if (ak == "") != (sk == "") {
		return nil, fmt.Errorf("%w: give both config.access_key_id and config.secret_access_key, or neither", ErrConfig)
	}
	// The default secret list is the server's own AWS variables: naming
	// them for an endpoint the request chose would send the server's keys
	// there. Such an endpoint needs credentials the operator listed in
	// DSPIPE_SOURCE_SECRETS for requests to use.
	if cfg["endpoint"] != "" && !env.TrustsS3Endpoint(cfg["endpoint"]) && (ak == "" || env.SecretEnv == nil) {
		return nil, fmt.Errorf("%w: %w", ErrConfig, ErrEndpointCredentials)
	}
	if ak != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, tok)))
	}
	endpoint := cfg["endpoint"]
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: config.endpoint must be an http(s) URL", ErrConfig)
		}
		// A request-supplied endpoint may not reach private addresses.
		opts = append(opts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			guardTransport(tr, env.AllowPrivateEndpoints)
		})))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	// The SDK retries a failed call once; longer outages are the ingest's
	// retries (DATASET_RETRY_ATTEMPTS), which the user sees.
	ac.RetryMaxAttempts = 2
	s.client = s3.NewFromConfig(ac, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
		// S3-compatible stores vary in checksum support; ask only when required.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return s, nil
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func (s *S3) uri(key string) string { return "s3://" + s.Bucket + "/" + key }

// List heads the key, or lists every object under the prefix (paged).
func (s *S3) List(ctx context.Context) ([]Object, error) {
	if s.Key != "" {
		h, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &s.Key})
		if err != nil {
			return nil, s3Err(err, s.uri(s.Key))
		}
		return []Object{{Name: s.Key, URI: s.uri(s.Key), Size: aws.ToInt64(h.ContentLength), Version: aws.ToString(h.ETag)}}, nil
	}
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &s.Prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Err(err, s.uri(s.Prefix))
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if strings.HasSuffix(k, "/") {
				continue // a "folder" marker
			}
			out = append(out, Object{Name: k, URI: s.uri(k), Size: aws.ToInt64(o.Size), Version: aws.ToString(o.ETag)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no objects under %s", ErrNotFound, s.uri(s.Prefix))
	}
	return out, nil
}

// Open GETs the object from off (a ranged GET), pinned to the listed ETag
// so a resumed read never stitches two versions together.
func (s *S3) Open(ctx context.Context, obj Object, off, n int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &s.Bucket, Key: &obj.Name}
	if r := rangeHeader(off, n); r != "" {
		in.Range = aws.String(r)
	}
	if obj.Version != "" {
		in.IfMatch = aws.String(obj.Version)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, s3Err(err, obj.URI)
	}
	return out.Body, nil
}

// OpenAt gives Parquet ranged access.
func (s *S3) OpenAt(ctx context.Context, obj Object) (ReaderAtCloser, error) {
	return rangeReaderAt(ctx, s, obj), nil
}

func s3Err(err error, what string) error {
	if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "failed to refresh cached credentials") {
		return fmt.Errorf("%w: %s: no AWS credentials: give config.access_key_id and config.secret_access_key as ${ENV_VAR} references, or configure the server's AWS credential chain", ErrConfig, what)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "NotFound":
			return fmt.Errorf("%w: %s", ErrNotFound, what)
		case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled":
			return fmt.Errorf("%w: %s (%s)", ErrDenied, what, ae.ErrorCode())
		case "PreconditionFailed":
			return fmt.Errorf("%w: %s changed while it was read", ErrConfig, what)
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s", ErrNotFound, what)
		case http.StatusForbidden, http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", ErrDenied, what)
		}
	}
	if errors.Is(err, ErrPrivateAddress) {
		return fmt.Errorf("s3: %s: %w", what, ErrPrivateAddress)
	}
	return fmt.Errorf("s3: %s: %w", what, err)
}
