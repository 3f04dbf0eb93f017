package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOnlyWebSocketHandshakesSkipTheRequestTimeout is finding 8's Upgrade
// header: any request carrying "Upgrade:" used to skip the timeout.
func TestOnlyWebSocketHandshakesSkipTheRequestTimeout(t *testing.T) {
	t.Parallel()
	var got string
	direct := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = "direct" })
	timed := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = "timed" })
	h := wsBypass(direct, timed)
	for _, tc := range []struct {
		method, path, upgrade, want string
	}{
		{"GET", "/api/v1/datasets/ws/ds_1", "websocket", "direct"},
		{"GET", "/api/v1/datasets/status/ds_1", "websocket", "timed"},
		{"POST", "/api/v1/datasets/process", "h2c", "timed"},
		{"GET", "/api/v1/datasets/ws/ds_1", "", "timed"},
		{"POST", "/api/v1/datasets/ws/ds_1", "websocket", "timed"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.upgrade != "" {
			r.Header.Set("Upgrade", tc.upgrade)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		require.Equal(t, tc.want, got, "%s %s Upgrade: %s", tc.method, tc.path, tc.upgrade)
	}
}
