package app_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func rawDo(t *testing.T, method, url, token string, body io.Reader, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// TestRequestEdgesAnswerWithTheRightStatus is finding 8: a token in the
// query string works on the WebSocket route only; an execution id with a
// NUL byte is a 400, not a 503; bodies over the limit are 413; data after
// the JSON body is refused; a plain GET of the WebSocket route says how
// to connect.
func TestRequestEdgesAnswerWithTheRightStatus(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{tokens: twoUsers})
	base := s.client.Base + "/api/v1/datasets"
	valid := `{"sources":[{"type":"local","config":{"path":"` + s.data + `/none.jsonl"}}]}`

	code, body := rawDo(t, "GET", base+"/active?token=alice-token-1", "", nil, nil)
	require.Equal(t, 401, code, body)
	require.Contains(t, body, "only accepted by the WebSocket endpoint")
	code, _ = rawDo(t, "GET", base+"/active", "alice-token-1", nil, nil)
	require.Equal(t, 200, code)
	code, _ = rawDo(t, "GET", base+"/active", "", nil, map[string]string{"Authorization": "Basic alice-token-1"})
	require.Equal(t, 401, code, "only the Bearer scheme")

	for _, path := range []string{"/status/ds%00x", "/statistics/ds%00x", "/ds%00x/events", "/status/" + strings.Repeat("a", 300)} {
		code, body = rawDo(t, "GET", base+path, "alice-token-1", nil, nil)
		require.Equal(t, 400, code, "%s: %s", path, body)
		require.Contains(t, body, "not a valid execution id")
	}
	code, _ = rawDo(t, "POST", base+"/ds%00x/cancel", "alice-token-1", nil, nil)
	require.Equal(t, 400, code)

	for _, n := range []int{10 << 20, 100 << 20} {
		big := bytes.Repeat([]byte(" "), n)
		code, body = rawDo(t, "POST", base+"/process", "alice-token-1", bytes.NewReader(append(big, valid...)), nil)
		require.Equal(t, 413, code, body)
	}
	code, body = rawDo(t, "POST", base+"/process", "alice-token-1", strings.NewReader(valid+`{"more":1}`), nil)
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "data after the JSON object")
	code, body = rawDo(t, "POST", base+"/process", "alice-token-1", strings.NewReader(valid+"\n"), nil)
	require.Equal(t, 202, code, "white space after the object is fine: %s", body)

	code, body = rawDo(t, "GET", base+"/ws/ds_1_0", "alice-token-1", nil, nil)
	require.Contains(t, []int{404, 426}, code, body)
}
