package source_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/source"
)

// TestServerCredentialsNeverGoToARequestsEndpoint is finding 4: an S3
// source naming its own endpoint must bring its own credentials; the
// server's AWS credential chain (and the AWS_* variables it reads) are
// used only for AWS and for the endpoints the operator lists.
func TestServerCredentialsNeverGoToARequestsEndpoint(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASERVERCANARY0001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "server-secret-canary")
	t.Setenv("AWS_SESSION_TOKEN", "server-session-canary")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("TENANT_KEY", "AKIATENANT0000000001")
	t.Setenv("TENANT_SECRET", "tenant-secret")
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+r.Header.Get("X-Amz-Security-Token"))
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	heard := func() string {
		mu.Lock()
		defer mu.Unlock()
		s := strings.Join(seen, "\n")
		seen = nil
		return s
	}
	ctx := context.Background()
	spec := func(extra map[string]string) events.SourceSpec {
		c := map[string]string{"bucket": "b", "key": "k.jsonl", "endpoint": srv.URL}
		for k, v := range extra {
			c[k] = v
		}
		return events.SourceSpec{Type: "s3", Config: c}
	}
	try := func(env source.Env, extra map[string]string) error {
		env.AllowPrivateEndpoints = true
		src, err := source.New(ctx, spec(extra), env)
		if err != nil {
			return err
		}
		_, err = src.List(ctx)
		return err
	}
	serverRefs := map[string]string{"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}"}

	require.ErrorIs(t, try(source.Env{}, nil), source.ErrEndpointCredentials, "no keys: the default chain is not used")
	require.ErrorIs(t, try(source.Env{}, serverRefs), source.ErrEndpointCredentials, "the server's own variables, by default")
	require.Empty(t, heard(), "nothing reached the endpoint")

	tenant := source.Env{SecretEnv: []string{"TENANT_KEY", "TENANT_SECRET"}}
	require.ErrorIs(t, try(tenant, map[string]string{"access_key_id": "${TENANT_KEY}", "secret_access_key": "${TENANT_SECRET}"}), source.ErrNotFound)
	got := heard()
	require.Contains(t, got, "AKIATENANT0000000001", "the request's own credentials are used")
	require.NotContains(t, got, "AKIASERVERCANARY0001")
	require.NotContains(t, got, "server-session-canary")

	trusted := source.Env{TrustedS3Endpoints: []string{strings.ToUpper(srv.URL[:4]) + srv.URL[4:] + "/"}}
	require.ErrorIs(t, try(trusted, nil), source.ErrNotFound, "an endpoint the operator lists may use the server's chain")
	require.Contains(t, heard(), "AKIASERVERCANARY0001")
}
