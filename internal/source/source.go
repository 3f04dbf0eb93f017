package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dspipe/dspipe/events"
)

// Object is one readable unit of a source: a local file, an S3 object, a
// Drive file or a file of a Hub dataset. A source lists its objects in a
// stable order, so a record's position (object, then record within it) is
// the same on every read.
type Object struct {
	// Name is the object's path, key or file name: its extension says the
	// format when the request does not.
	Name string
	// URI identifies the object in provenance (s3://bucket/key,
	// gdrive://<file id>, hf://datasets/<id>/<path>, or the local path).
	URI string
	// Size is the object's length in bytes, -1 when unknown.
	Size int64
	// Format overrides the name's format (a Google Sheet exports as CSV).
	Format string
	// Version pins the object's content for resumed reads (S3 ETag).
	Version string
}

// Source is where a request's records come from. Every kind (local, s3,
// google_drive, huggingface) implements it and passes the same conformance
// suite.
type Source interface {
	// List resolves the source's configuration to its objects.
	List(ctx context.Context) ([]Object, error)
	// Open reads n bytes of an object from byte offset off, or to its end
	// when n < 0. A reader that fails mid-object is reopened at the offset
	// it reached (see Resumable); Parquet reads ranges.
	Open(ctx context.Context, obj Object, off, n int64) (io.ReadCloser, error)
}

// Errors a source reports; they decide whether an attempt is retried.
var (
	// ErrNotFound: the bucket, key, file, folder or dataset does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDenied: the credentials do not allow the read.
	ErrDenied = errors.New("permission denied")
	// ErrConfig: the source's configuration is wrong; the message says what to fix.
	ErrConfig = errors.New("bad source configuration")
)

// Permanent reports whether retrying cannot help: the object is missing,
// access is denied, the configuration is wrong, the input is hostile, or
// the read was cancelled.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrDenied) || errors.Is(err, ErrConfig) ||
		errors.Is(err, ErrNotAllowed) || errors.Is(err, ErrPrivateAddress) || errors.Is(err, ErrBomb) || errors.Is(err, os.ErrNotExist) ||
		errors.Is(err, os.ErrPermission) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Env is what sources need from the server's configuration.
type Env struct {
	// LocalRoots confines local sources.
	LocalRoots []string
	// HFEndpoint and HFToken reach the HuggingFace Hub (HF_ENDPOINT, HF_TOKEN).
	HFEndpoint string
	HFToken    string
	// DriveEndpoint overrides the Google Drive API base URL (tests, proxies).
	DriveEndpoint string
	// ServiceAccountPath is GOOGLE_SERVICE_ACCOUNT_PATH, used when a Drive
	// source names none.
	ServiceAccountPath string
	// DriveFolderID is GOOGLE_DRIVE_FOLDER_ID, used when a Drive source
	// names neither a file nor a folder.
	DriveFolderID string
	// S3Bucket and S3Region are AWS_S3_BUCKET and AWS_REGION, the defaults
	// of an S3 source.
	S3Bucket string
	S3Region string
	// AllowPrivateEndpoints lets a request name an endpoint on a loopback
	// or private address (DSPIPE_ALLOW_PRIVATE_ENDPOINTS); off, such an
	// endpoint is refused at connect time.
	AllowPrivateEndpoints bool
	// TrustedS3Endpoints are the S3-compatible endpoints the operator lets
	// requests reach with the server's own AWS credential chain
	// (DSPIPE_S3_ENDPOINTS); any other endpoint a request names must come
	// with its own credentials, so the server's keys are never sent to
	// an address a user chose.
	TrustedS3Endpoints []string
	// SecretEnv lists the environment variables a request may reference as
	// ${NAME} for credentials (DSPIPE_SOURCE_SECRETS).
	SecretEnv []string
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// RetryAttempts bounds reconnections within one read (a dropped
	// connection is resumed at its offset); 0 means DefaultReconnects.
	// Whole attempts at a source are ingest's (DATASET_RETRY_ATTEMPTS).
	RetryAttempts int
	// HTTP is the client for Hub and Drive calls (a guarded default when nil).
	HTTP *http.Client
}

// DefaultReconnects is how many times one read resumes a dropped
// connection at its offset before the attempt fails.
const DefaultReconnects = 3

// TrustsS3Endpoint reports whether endpoint is one of the operator's
// (compared by scheme and host, case-insensitively).
func (e Env) TrustsS3Endpoint(endpoint string) bool {
	want := endpointKey(endpoint)
	for _, t := range e.TrustedS3Endpoints {
		if want != "" && endpointKey(t) == want {
			return true
		}
	}
	return false
}

func endpointKey(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// ErrEndpointCredentials is returned for an S3 source that names its own
// endpoint without its own credentials.
var ErrEndpointCredentials = errors.New("an s3 source with config.endpoint must name its own credentials (config.access_key_id and config.secret_access_key as ${ENV_VAR} references): the server's AWS credentials are only used for AWS itself and for the endpoints in DSPIPE_S3_ENDPOINTS")

// DefaultSecretEnv are the variables a request may reference when
// DSPIPE_SOURCE_SECRETS is unset.
var DefaultSecretEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

func (e Env) getenv(k string) string {
	if e.Getenv != nil {
		return e.Getenv(k)
	}
	return os.Getenv(k)
}

// Secret resolves a credential given as a ${NAME} reference. Literal
// values are refused: the request is stored in the event log, which must
// never hold a secret.
func (e Env) Secret(field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	name, ok := SecretRef(v)
	if !ok {
		return "", fmt.Errorf("%w: config.%s must be a ${ENV_VAR} reference, not a literal credential", ErrConfig, field)
	}
	allowed := e.SecretEnv
	if allowed == nil {
		allowed = DefaultSecretEnv
	}
	for _, a := range allowed {
		if a == name {
			val := e.getenv(name)
			if val == "" {
				return "", fmt.Errorf("%w: config.%s references ${%s}, which is not set on the server", ErrConfig, field, name)
			}
			return val, nil
		}
	}
	return "", fmt.Errorf("%w: config.%s references ${%s}, which is not in DSPIPE_SOURCE_SECRETS", ErrConfig, field, name)
}

// SecretRef returns NAME for a "${NAME}" reference.
func SecretRef(v string) (string, bool) {
	if !strings.HasPrefix(v, "${") || !strings.HasSuffix(v, "}") || len(v) < 4 {
		return "", false
	}
	name := v[2 : len(v)-1]
	for _, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return "", false
		}
	}
	return name, true
}

// Types of source a request can name.
const (
	TypeLocal       = "local"
	TypeS3          = "s3"
	TypeGoogleDrive = "google_drive"
	TypeHuggingFace = "huggingface"
)

// Types lists the supported source types.
var Types = []string{TypeLocal, TypeS3, TypeGoogleDrive, TypeHuggingFace}

// New builds the source a request's spec names.
func New(ctx context.Context, spec events.SourceSpec, env Env) (Source, error) {
	switch spec.Type {
	case TypeLocal:
		return &Local{Path: spec.Config["path"], Roots: env.LocalRoots}, nil
	case TypeS3:
		return NewS3(ctx, spec.Config, env)
	case TypeGoogleDrive:
		return NewDrive(ctx, spec.Config, env)
	case TypeHuggingFace:
		return NewHF(spec.Config, env)
	}
	return nil, fmt.Errorf("%w: source type %q is not supported (use %s)", ErrConfig, spec.Type, strings.Join(Types, ", "))
}

// Backoff is the wait before retry attempt n (1-based): exponential from
// base, capped, with full jitter so retries of many sources spread out.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base << min(n-1, 20)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// Resumable reads an object and, when the connection drops mid-object,
// reopens it at the offset it reached, up to attempts times in a row, so a
// dropped connection loses and repeats nothing.
type Resumable struct {
	ctx      context.Context
	src      Source
	obj      Object
	off      int64
	rc       io.ReadCloser
	attempts int
	failures int
	// Resumed counts reconnections, for tests and statistics.
	Resumed int
}

// NewResumable starts reading obj at offset 0.
func NewResumable(ctx context.Context, src Source, obj Object, attempts int) *Resumable {
	return &Resumable{ctx: ctx, src: src, obj: obj, attempts: attempts}
}

func (r *Resumable) Read(p []byte) (int, error) {
	for {
		if r.rc == nil {
			rc, err := r.src.Open(r.ctx, r.obj, r.off, -1)
			if err != nil {
				if !r.retry(err) {
					return 0, err
				}
				continue
			}
			r.rc = rc
		}
		n, err := r.rc.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.failures = 0
		}
		if err == nil || errors.Is(err, io.EOF) {
			if errors.Is(err, io.EOF) && r.obj.Size >= 0 && r.off < r.obj.Size {
				// A body that ends early without an error is a dropped
				// connection too.
				err = io.ErrUnexpectedEOF
			} else {
				return n, err
			}
		}
		_ = r.rc.Close()
		r.rc = nil
		if !r.retry(err) {
			return n, err
		}
		r.Resumed++
		if n > 0 {
			return n, nil
		}
	}
}

func (r *Resumable) retry(err error) bool {
	if r.ctx.Err() != nil || Permanent(err) {
		return false
	}
	r.failures++
	if r.failures > r.attempts {
		return false
	}
	select {
	case <-time.After(Backoff(r.failures, 50*time.Millisecond, 2*time.Second)):
		return true
	case <-r.ctx.Done():
		return false
	}
}

// Close releases the current connection.
func (r *Resumable) Close() error {
	if r.rc != nil {
		err := r.rc.Close()
		r.rc = nil
		return err
	}
	return nil
}

// Offset is the number of bytes read so far.
func (r *Resumable) Offset() int64 { return r.off }
