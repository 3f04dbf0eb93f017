package source_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/remotetest"
	"github.com/dspipe/dspipe/internal/source"
)

// TestDriveRateLimitIsRetryableAndSheetsExportAsCSV: a 403
// userRateLimitExceeded is a transient failure (ingest retries it), unlike
// other 403s; a Google Sheet in a folder is exported as CSV; sub-folders are
// skipped; listing pages through the folder.
func TestDriveRateLimitIsRetryableAndSheetsExportAsCSV(t *testing.T) {
	ctx := context.Background()
	d, tokenURL := remotetest.StartDrive(t)
	sa := remotetest.ServiceAccountFile(t, t.TempDir(), tokenURL)
	d.Put("f", remotetest.DriveFile{Name: "f", MimeType: "application/vnd.google-apps.folder"})
	d.Put("sub", remotetest.DriveFile{Name: "sub", MimeType: "application/vnd.google-apps.folder", Parent: "f"})
	d.Put("doc", remotetest.DriveFile{Name: "notes", MimeType: "application/vnd.google-apps.document", Parent: "f"})
	d.Put("sheet", remotetest.DriveFile{Name: "answers", MimeType: "application/vnd.google-apps.spreadsheet", Parent: "f",
		Data: []byte("question,answer\nHow do I sleep better?,Keep a routine.\nWhy am I anxious?,Many reasons; let's talk.\n")})
	d.Put("j1", remotetest.DriveFile{Name: "a.jsonl", MimeType: "application/json", Parent: "f", Data: jsonl(rows("a", 3))})
	d.Put("j2", remotetest.DriveFile{Name: "b.jsonl", MimeType: "application/json", Parent: "f", Data: jsonl(rows("b", 2))})
	src, err := source.New(ctx, events.SourceSpec{Type: "google_drive", Config: map[string]string{"folder_id": "f"}},
		source.Env{DriveEndpoint: d.URL, ServiceAccountPath: sa})
	require.NoError(t, err)

	d.RateLimited = 1
	_, err = src.List(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "rate limit")
	require.False(t, source.Permanent(err), "a rate limit is retried")

	objs, err := src.List(ctx)
	require.NoError(t, err)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	require.Equal(t, []string{"a.jsonl", "answers", "b.jsonl"}, names, "data files in name order; folders and Docs skipped")
	ids, rej, err := readAll(ctx, src)
	require.NoError(t, err)
	require.Empty(t, rej)
	require.Len(t, ids, 3+2+2, "the Sheet's two rows are read as CSV")
}

// TestHubGatedDatasetSaysWhatToDo: without HF_TOKEN a gated dataset's
// error names the fix; with it, the Parquet conversion is found through the
// default config and split.
func TestHubGatedDatasetSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	h := remotetest.StartHub(t)
	h.Put("org/gated", remotetest.HubDataset{Gated: true, Parquet: map[string]map[string]map[string][]byte{
		"default": {"train": {"0000.parquet": parquetFile(t, rows("p", 30))}, "test": {"0000.parquet": parquetFile(t, rows("q", 5))}}}})
	open := func(token string, cfg map[string]string) source.Source {
		src, err := source.New(ctx, events.SourceSpec{Type: "huggingface", Config: cfg}, source.Env{HFEndpoint: h.URL, HFToken: token})
		require.NoError(t, err)
		return src
	}
	_, err := open("", map[string]string{"dataset": "org/gated"}).List(ctx)
	require.ErrorIs(t, err, source.ErrDenied)
	require.Contains(t, err.Error(), "set HF_TOKEN")
	_, err = open("hf_wrong", map[string]string{"dataset": "org/gated"}).List(ctx)
	require.ErrorIs(t, err, source.ErrDenied)
	require.Contains(t, err.Error(), "HF_TOKEN has no access")

	ids, _, err := readAll(ctx, open(h.Token, map[string]string{"dataset": "org/gated"}))
	require.NoError(t, err)
	require.Equal(t, idsOf(rows("p", 30)), ids, "default config, train split")
	ids, _, err = readAll(ctx, open(h.Token, map[string]string{"dataset": "org/gated", "split": "test"}))
	require.NoError(t, err)
	require.Len(t, ids, 5)
	_, err = open(h.Token, map[string]string{"dataset": "org/gated", "split": "validation"}).List(ctx)
	require.ErrorIs(t, err, source.ErrNotFound)
}

// TestSecretsAreReferencesFromTheAllowList: literal credentials and
// variables outside DSPIPE_SOURCE_SECRETS are refused, with messages that
// never contain the value.
func TestSecretsAreReferencesFromTheAllowList(t *testing.T) {
	env := source.Env{Getenv: func(k string) string {
		return map[string]string{"AWS_SECRET_ACCESS_KEY": "s3cr3t", "DATABASE_URL": "postgres://x"}[k]
	}}
	v, err := env.Secret("secret_access_key", "${AWS_SECRET_ACCESS_KEY}")
	require.NoError(t, err)
	require.Equal(t, "s3cr3t", v)
	_, err = env.Secret("secret_access_key", "AKIAliteral")
	require.ErrorContains(t, err, "must be a ${ENV_VAR} reference")
	require.NotContains(t, err.Error(), "AKIAliteral")
	_, err = env.Secret("access_key_id", "${DATABASE_URL}")
	require.ErrorContains(t, err, "not in DSPIPE_SOURCE_SECRETS")
	require.NotContains(t, err.Error(), "postgres://")
}

// TestPrivateEndpointsAreRefusedUnlessAllowed: a request's S3 endpoint on
// loopback is refused at connect time by default.
func TestPrivateEndpointsAreRefusedUnlessAllowed(t *testing.T) {
	ctx := context.Background()
	ep := remotetest.StartS3(t)
	env := source.Env{Getenv: func(k string) string { return "x" }, SecretEnv: source.DefaultSecretEnv}
	src, err := source.New(ctx, events.SourceSpec{Type: "s3", Config: map[string]string{"bucket": "b", "key": "k", "endpoint": ep,
		"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}"}}, env)
	require.NoError(t, err)
	_, err = src.List(ctx)
	require.ErrorIs(t, err, source.ErrPrivateAddress)
	require.NotContains(t, err.Error(), "local roots", "the refusal names the endpoint, not local paths")
	require.True(t, source.Permanent(err))
}

// TestRenameMapsTopLevelFields covers the request's field mapping on JSON.
func TestRenameMapsTopLevelFields(t *testing.T) {
	out := source.Rename([]byte(`{"prompt":"q?","response":"a.","keep":1}`), map[string]string{"prompt": "question", "response": "answer"})
	require.JSONEq(t, `{"question":"q?","answer":"a.","keep":1}`, string(out))
	require.Equal(t, `not json`, string(source.Rename([]byte(`not json`), map[string]string{"a": "b"})))
}
