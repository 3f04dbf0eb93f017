package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	json "github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/remotetest"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/stage"
)

// A fixture puts objects into one kind of store and builds sources over it.
// Every source kind runs the same conformance cases against its fixture.
type fixture struct {
	// source returns a source over a fresh location holding objs.
	source func(t *testing.T, objs map[string][]byte) source.Source
	// missing and denied return sources naming something absent, or
	// something the credentials may not read.
	missing func(t *testing.T) source.Source
	denied  func(t *testing.T) source.Source
	// cutOnce makes the next read drop its connection after n bytes;
	// cuts says how many were dropped.
	cutOnce func(n int64)
	cuts    func() int64
}

var seq atomic.Int64

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

type msg struct {
	Role    string `json:"role" parquet:"role"`
	Content string `json:"content" parquet:"content"`
}

type row struct {
	ID       string `json:"id" parquet:"id"`
	Messages []msg  `json:"messages" parquet:"messages,list"`
}

func rows(prefix string, n int) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{ID: fmt.Sprintf("%s-%05d", prefix, i+1), Messages: []msg{
			{Role: "user", Content: fmt.Sprintf("I have been feeling low for %d days and cannot sleep; what could help me get through the week?", i)},
			{Role: "assistant", Content: "That sounds exhausting. It can help to keep a regular wind-down routine and to talk with someone you trust. " + strings.Repeat("Take it one step at a time. ", 4)},
		}}
	}
	return out
}

func jsonl(rs []row) []byte {
	var b bytes.Buffer
	for _, r := range rs {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func parquetFile(t testing.TB, rs []row) []byte {
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b, parquet.MaxRowsPerRowGroup(100))
	_, err := w.Write(rs)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// readAll reads every object of src and returns the record ids in order and
// the positions of records validation rejects.
func readAll(ctx context.Context, src source.Source) (ids []string, rejected []int64, err error) {
	objs, err := src.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range objs {
		err := source.Each(ctx, src, o, source.ReadOptions{MaxRecord: 1 << 20, Attempts: 3}, func(it source.Item, _ source.Counter) error {
			if it.Err != "" {
				rejected = append(rejected, it.Position)
				return nil
			}
			if _, err := stage.Validate(it.Data, stage.DefaultLimits); err != nil {
				rejected = append(rejected, it.Position)
				return nil
			}
			var r struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(it.Data, &r)
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil {
			return ids, rejected, err
		}
	}
	return ids, rejected, nil
}

func idsOf(rs ...[]row) []string {
	var out []string
	for _, r := range rs {
		for _, x := range r {
			out = append(out, x.ID)
		}
	}
	return out
}

func conformance(t *testing.T, f fixture) {
	ctx := context.Background()
	t.Run("full read", func(t *testing.T) {
		a, b, c := rows("a", 1500), rows("b", 400), rows("c", 250)
		src := f.source(t, map[string][]byte{"a.jsonl": jsonl(a), "b.jsonl.gz": gz(jsonl(b)), "c.parquet": parquetFile(t, c)})
		ids, rej, err := readAll(ctx, src)
		require.NoError(t, err)
		require.Empty(t, rej)
		require.Equal(t, idsOf(a, b, c), ids)
	})
	t.Run("empty source", func(t *testing.T) {
		src := f.source(t, map[string][]byte{"empty.jsonl": {}})
		ids, rej, err := readAll(ctx, src)
		require.NoError(t, err)
		require.Empty(t, ids)
		require.Empty(t, rej)
	})
	t.Run("not found", func(t *testing.T) {
		_, _, err := readAll(ctx, f.missing(t))
		require.ErrorIs(t, err, source.ErrNotFound)
		require.True(t, source.Permanent(err))
	})
	t.Run("permission denied", func(t *testing.T) {
		_, _, err := readAll(ctx, f.denied(t))
		require.ErrorIs(t, err, source.ErrDenied)
		require.True(t, source.Permanent(err))
	})
	t.Run("connection dropped mid-object", func(t *testing.T) {
		a, c := rows("a", 2000), rows("c", 400)
		src := f.source(t, map[string][]byte{"a.jsonl": jsonl(a), "c.parquet": parquetFile(t, c)})
		objs, err := src.List(ctx)
		require.NoError(t, err)
		before := f.cuts()
		f.cutOnce(150_000) // about a fifth into a.jsonl
		ids, rej, err := readAll(ctx, src)
		require.NoError(t, err)
		require.Empty(t, rej)
		require.Equal(t, idsOf(a, c), ids, "resumed without loss or duplication")
		require.Equal(t, before+1, f.cuts(), "the connection was dropped once")
		// And a drop while Parquet reads a range.
		f.cutOnce(20_000)
		ids, _, err = readAll(ctx, src)
		require.NoError(t, err)
		require.Equal(t, idsOf(a, c), ids)
		require.Len(t, objs, 2)
	})
	t.Run("cancellation mid-read", func(t *testing.T) {
		a := rows("a", 3000)
		src := f.source(t, map[string][]byte{"a.jsonl": jsonl(a)})
		objs, err := src.List(ctx)
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		n := 0
		err = source.Each(cctx, src, objs[0], source.ReadOptions{MaxRecord: 1 << 20, Attempts: 3}, func(source.Item, source.Counter) error {
			n++
			if n == 100 {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 100, n, "no record is delivered after cancellation")
	})
	t.Run("malformed record in the middle", func(t *testing.T) {
		a := rows("a", 100)
		lines := bytes.Split(bytes.TrimSuffix(jsonl(a), []byte("\n")), []byte("\n"))
		lines[50] = lines[50][:len(lines[50])/2] // truncated JSON on line 51
		src := f.source(t, map[string][]byte{"a.jsonl": append(bytes.Join(lines, []byte("\n")), '\n')})
		ids, rej, err := readAll(ctx, src)
		require.NoError(t, err)
		require.Equal(t, []int64{51}, rej, "rejected with its position")
		want := idsOf(a)
		require.Equal(t, append(append([]string{}, want[:50]...), want[51:]...), ids, "the rest is kept")
	})
}

// faultyReader fails once with EIO after a number of bytes, as a network
// filesystem can.
type faultyReader struct {
	io.ReadCloser
	left *atomic.Int64
	cuts *atomic.Int64
}

func (r *faultyReader) Read(p []byte) (int, error) {
	left := r.left.Load()
	if left > 0 && int64(len(p)) >= left {
		if r.left.CompareAndSwap(left, 0) {
			n, _ := r.ReadCloser.Read(p[:left])
			r.cuts.Add(1)
			return n, &os.PathError{Op: "read", Path: "x", Err: syscall.EIO}
		}
	}
	n, err := r.ReadCloser.Read(p)
	if left > 0 {
		r.left.Add(-int64(n))
	}
	return n, err
}

func TestConformanceLocal(t *testing.T) {
	root := t.TempDir()
	var left, cuts atomic.Int64
	fault := func(rc io.ReadCloser) io.ReadCloser { return &faultyReader{ReadCloser: rc, left: &left, cuts: &cuts} }
	conformance(t, fixture{
		source: func(t *testing.T, objs map[string][]byte) source.Source {
			dir := filepath.Join(root, uniq("set"))
			require.NoError(t, os.MkdirAll(dir, 0o755))
			for n, b := range objs {
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
			}
			return &source.Local{Path: dir, Roots: []string{root}, ReadFault: fault}
		},
		missing: func(t *testing.T) source.Source {
			return &source.Local{Path: filepath.Join(root, "absent.jsonl"), Roots: []string{root}}
		},
		denied: func(t *testing.T) source.Source {
			if os.Geteuid() == 0 {
				// root reads any file; outside the allowed roots is the
				// local source's denial.
				outside := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(outside, "x.jsonl"), []byte("{}\n"), 0o644))
				return &deniedAs{&source.Local{Path: filepath.Join(outside, "x.jsonl"), Roots: []string{root}}}
			}
			p := filepath.Join(root, uniq("locked")+".jsonl")
			require.NoError(t, os.WriteFile(p, []byte("{}\n"), 0o000))
			return &source.Local{Path: p, Roots: []string{root}}
		},
		cutOnce: func(n int64) { left.Store(n) },
		cuts:    cuts.Load,
	})
}

// deniedAs reports a local confinement refusal as a permission denial (the
// conformance case), keeping the original error in the chain.
type deniedAs struct{ *source.Local }

func (d *deniedAs) List(ctx context.Context) ([]source.Object, error) {
	o, err := d.Local.List(ctx)
	if errors.Is(err, source.ErrNotAllowed) {
		return nil, fmt.Errorf("%w: %w", source.ErrDenied, err)
	}
	return o, err
}

// s3Fixture runs the suite against an S3 endpoint through a cutting proxy.
func s3Fixture(t *testing.T, endpoint, access, secret string) fixture {
	ctx := context.Background()
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
	proxy := remotetest.NewCutProxy(t, host)
	env := func(k string) string {
		return map[string]string{"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "WRONG_SECRET": secret + "x"}[k]
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(access, secret, "")))
	require.NoError(t, err)
	admin := s3.NewFromConfig(ac, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	// The server may outlive test runs: bucket names are unique per run.
	bucket := fmt.Sprintf("conformance-%d-%d", time.Now().UnixNano(), seq.Add(1))
	_, err = admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	require.NoError(t, err)
	build := func(t *testing.T, cfg map[string]string) source.Source {
		cfg["endpoint"] = "http://" + proxy.Addr
		if cfg["access_key_id"] == "" {
			cfg["access_key_id"], cfg["secret_access_key"] = "${AWS_ACCESS_KEY_ID}", "${AWS_SECRET_ACCESS_KEY}"
		}
		src, err := source.New(ctx, events.SourceSpec{Type: "s3", Config: cfg},
			source.Env{AllowPrivateEndpoints: true, Getenv: env, SecretEnv: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "WRONG_SECRET"}, RetryAttempts: 2})
		require.NoError(t, err)
		return src
	}
	return fixture{
		source: func(t *testing.T, objs map[string][]byte) source.Source {
			prefix := uniq("set") + "/"
			for n, b := range objs {
				_, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(prefix + n), Body: bytes.NewReader(b)})
				require.NoError(t, err)
			}
			return build(t, map[string]string{"bucket": bucket, "prefix": prefix})
		},
		missing: func(t *testing.T) source.Source {
			return build(t, map[string]string{"bucket": bucket, "key": "absent.jsonl"})
		},
		denied: func(t *testing.T) source.Source {
			if access == "" || strings.Contains(endpoint, "127.0.0.1") && os.Getenv("DSPIPE_TEST_S3_ENDPOINT") != endpoint {
				// gofakes3 checks no signatures: its forbidden bucket answers 403.
				return build(t, map[string]string{"bucket": remotetest.ForbiddenBucket, "key": "x.jsonl"})
			}
			key := uniq("set") + "/x.jsonl"
			_, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("{}\n")})
			require.NoError(t, err)
			return build(t, map[string]string{"bucket": bucket, "key": key, "access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${WRONG_SECRET}"})
		},
		cutOnce: proxy.CutOnce,
		cuts:    proxy.Cuts,
	}
}

func TestConformanceS3InProcess(t *testing.T) {
	conformance(t, s3Fixture(t, remotetest.StartS3(t), "test-access", "test-secret"))
}

// TestConformanceS3Server runs the suite against a real S3-compatible server
// on loopback (versitygw, started by .ci/run); DSPIPE_TEST_S3_ENDPOINT,
// DSPIPE_TEST_S3_ACCESS_KEY and DSPIPE_TEST_S3_SECRET_KEY name it.
func TestConformanceS3Server(t *testing.T) {
	ep := os.Getenv("DSPIPE_TEST_S3_ENDPOINT")
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("DSPIPE_TEST_S3_ENDPOINT is unset: .ci/run starts versitygw and sets it")
		}
		t.Skip("SKIPPED: DSPIPE_TEST_S3_ENDPOINT is unset (scripts/s3.sh start runs versitygw)")
	}
	conformance(t, s3Fixture(t, ep, os.Getenv("DSPIPE_TEST_S3_ACCESS_KEY"), os.Getenv("DSPIPE_TEST_S3_SECRET_KEY")))
}

func TestConformanceDrive(t *testing.T) {
	ctx := context.Background()
	d, tokenURL := remotetest.StartDrive(t)
	host := strings.TrimSuffix(strings.TrimPrefix(d.URL, "http://"), "/drive/v3/")
	proxy := remotetest.NewCutProxy(t, host)
	dir := t.TempDir()
	sa := remotetest.ServiceAccountFile(t, dir, tokenURL)
	env := source.Env{DriveEndpoint: "http://" + proxy.Addr + "/drive/v3/", ServiceAccountPath: sa, RetryAttempts: 2}
	build := func(t *testing.T, cfg map[string]string) source.Source {
		src, err := source.New(ctx, events.SourceSpec{Type: "google_drive", Config: cfg}, env)
		require.NoError(t, err)
		return src
	}
	conformance(t, fixture{
		source: func(t *testing.T, objs map[string][]byte) source.Source {
			folder := uniq("folder")
			d.Put(folder, remotetest.DriveFile{Name: folder, MimeType: "application/vnd.google-apps.folder"})
			for n, b := range objs {
				d.Put(uniq("file"), remotetest.DriveFile{Name: n, MimeType: "application/octet-stream", Parent: folder, Data: b})
			}
			return build(t, map[string]string{"folder_id": folder})
		},
		missing: func(t *testing.T) source.Source { return build(t, map[string]string{"file_id": "absent"}) },
		denied: func(t *testing.T) source.Source {
			id := uniq("locked")
			d.Put(id, remotetest.DriveFile{Name: "x.jsonl", MimeType: "application/octet-stream", Data: []byte("{}\n"), Denied: true})
			return build(t, map[string]string{"file_id": id})
		},
		cutOnce: proxy.CutOnce,
		cuts:    proxy.Cuts,
	})
}

func TestConformanceHuggingFace(t *testing.T) {
	ctx := context.Background()
	h := remotetest.StartHub(t)
	proxy := remotetest.NewCutProxy(t, strings.TrimPrefix(h.URL, "http://"))
	env := source.Env{HFEndpoint: "http://" + proxy.Addr, HFToken: h.Token, RetryAttempts: 2}
	build := func(t *testing.T, cfg map[string]string, env source.Env) source.Source {
		src, err := source.New(ctx, events.SourceSpec{Type: "huggingface", Config: cfg}, env)
		require.NoError(t, err)
		return src
	}
	conformance(t, fixture{
		source: func(t *testing.T, objs map[string][]byte) source.Source {
			id := "org/" + uniq("ds")
			files := map[string][]byte{"README.md": []byte("# card\n")}
			for n, b := range objs {
				files["data/"+n] = b
			}
			h.Put(id, remotetest.HubDataset{Files: files})
			return build(t, map[string]string{"dataset": id, "path": "data"}, env)
		},
		missing: func(t *testing.T) source.Source {
			return build(t, map[string]string{"dataset": "org/absent", "path": "data"}, env)
		},
		denied: func(t *testing.T) source.Source {
			id := "org/" + uniq("gated")
			h.Put(id, remotetest.HubDataset{Gated: true, Files: map[string][]byte{"data/x.jsonl": []byte("{}\n")}})
			noToken := env
			noToken.HFToken = ""
			return build(t, map[string]string{"dataset": id, "path": "data"}, noToken)
		},
		cutOnce: proxy.CutOnce,
		cuts:    proxy.Cuts,
	})
}
