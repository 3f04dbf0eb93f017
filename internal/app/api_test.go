package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
)

func rawPost(t *testing.T, c *client.Client, token, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.Base+"/api/v1/datasets"+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

// TestBadRequestsGetMessagesThatSayWhatToFix checks every validation path
// answers 4xx with a JSON error naming the field to fix.
func TestBadRequestsGetMessagesThatSayWhatToFix(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: "alice-token-1:alice:submitter,bobby-token-1:bob:submitter,viewer-token:vic:viewer,admin-token-1:root:admin"})
	cases := []struct{ body, want string }{
		{``, "empty"},
		{`{"sources":[`, "not valid JSON"},
		{`{"sources":[],"output":{}}`, "at least one source"},
		{`{"sources":[{"type":"ftp","config":{}}]}`, "sources[0].type"},
		{`{"sources":[{"type":"s3","config":{"bucket":"bkt"}}]}`, "sources[0].config.key"},
		{`{"sources":[{"type":"s3","config":{"bucket":"bkt","key":"k","secret_access_key":"AKIAxyz"}}]}`, "never a literal credential"},
		{`{"sources":[{"type":"s3","config":{"bucket":"bkt","key":"k","endpoint":"ftp://x"}}]}`, "config.endpoint"},
		{`{"sources":[{"type":"s3","config":{"bucket":"bkt","key":"k","endpoint":"https://s3.evil.example"}}]}`, "must name its own credentials"},
		{`{"sources":[{"type":"s3","config":{"bucket":"bkt","key":"k","colour":"red"}}]}`, "not a setting of s3 sources"},
		{`{"sources":[{"type":"huggingface","config":{}}]}`, "config.dataset"},
		{`{"sources":[{"type":"google_drive","config":{"file_id":"a","folder_id":"b"}}]}`, "not both"},
		{`{"sources":[{"type":"local","config":{"path":"a"},"on_failure":"ignore"}]}`, "on_failure"},
		{`{"sources":[{"type":"local","config":{"path":"a","format":"xml"}}]}`, "config.format"},
		{`{"sources":[{"type":"local","config":{}}]}`, "sources[0].config.path"},
		{`{"sources":[{"type":"local","config":{"path":"../x"}}]}`, "'..'"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"output":{"compression":"rar"}}`, "output.compression"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"output":{"destination":"/etc"}}`, "output.destination"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"colour":"red"}`, "unknown field"},
		{`{"sources":[{"type":"local","config":{"path":"a"}, "priority":"high"}]}`, "priority"},
		{`{"sources":[{"type":"local","config":{"path":"a"}, "priority":99999999999}]}`, "priority"},
		{`{"sources":[{"type":"local","config":{"path":"a","\u0000":"x"}}]}`, "NUL"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"processing":{"x":"\u0000"}}`, "NUL"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"processing":{"dedupe":{}}}`, "processing takes quality, bias, balancing and require_consent"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"processing":{"require_consent":true}}`, "names no consent_field"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"processing":{"quality":{"min_score":2}}}`, "processing.quality.min_score"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"processing":{"bias":{"mode":"shout"}}}`, "processing.bias.mode"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"processing":{"bias":{"axes":["height"]}}}`, "unknown axis"},
		{`{"sources":[{"type":"local","config":{"path":"a\nb"}}]}`, "control characters"},
		{`{"sources":[{"type":"local","config":{"path":"a"}}],"output":{"destination":"run\f1"}}`, "output.destination"},
	}
	for _, c := range cases {
		code, body := rawPost(t, s.client, "alice-token-1", "/process", c.body)
		require.Equal(t, http.StatusBadRequest, code, c.body)
		require.Contains(t, body, c.want, c.body)
		require.Contains(t, body, `"error"`)
	}
	code, body := rawPost(t, s.client, "", "/process", `{}`)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "Bearer")
	code, body = rawPost(t, s.client, "viewer-token", "/process", `{}`)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, "submitter")

	// Users see their own executions only; an admin sees all.
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 5, Format: "chatml", Seed: 1})
	require.NoError(t, err)
	alice := client.New(s.client.Base, "alice-token-1")
	s.client = alice
	id, _ := s.run(t, localRequest(sum.Files...))
	_, err = client.New(s.client.Base, "bobby-token-1").Status(context.Background(), id)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusNotFound, ae.Status, "another user's execution does not exist for bob")
	st, err := client.New(s.client.Base, "admin-token-1").Status(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "alice", st["user_id"])
	code, _ = rawPost(t, s.client, "alice-token-1", "/"+id+"/progress", `{"stage":"x","percent":50}`)
	require.Equal(t, http.StatusForbidden, code, "progress is for the service role")
}
