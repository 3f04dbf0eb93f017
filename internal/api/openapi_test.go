package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/kafka"
)

// TestOpenAPIListsEveryRoute keeps docs/openapi.yaml and the router in step:
// every route is documented and every documented operation is served.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	spec, err := os.ReadFile("../../docs/openapi.yaml")
	require.NoError(t, err)
	var documented []string
	path := ""
	for _, line := range strings.Split(string(spec), "\n") {
		if m := regexp.MustCompile(`^  (/\S*):$`).FindStringSubmatch(line); m != nil {
			path = m[1]
			continue
		}
		if m := regexp.MustCompile(`^    (get|post|put|delete|patch):`).FindStringSubmatch(line); m != nil && path != "" {
			documented = append(documented, strings.ToUpper(m[1])+" /api/v1"+path)
		}
	}
	srv := NewServer(Config{Topics: kafka.TopicNames("")})
	var served []string
	err = chi.Walk(srv.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		// The dashboard's / and /assets/* and the description itself are
		// not operations of the API.
		if strings.HasPrefix(route, "/api/") && !strings.HasPrefix(route, "/api/v1/openapi.") {
			served = append(served, method+" "+strings.TrimSuffix(route, "/"))
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, served, 17, "the seed's eight endpoints, the audit trail, the review queue's two, the audit key and access audit's three, data deletion, erasures and the recent executions")
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)
}

// TestMethodNotAllowedListsTheRoutesMethods: a 405's Allow header names the
// methods the route serves, also under mounted sub-routers (schemathesis
// found OPTIONS /reviews answering "GET, POST, PUT, PATCH, DELETE").
func TestMethodNotAllowedListsTheRoutesMethods(t *testing.T) {
	t.Parallel()
	tokens, err := ParseTokens("test-token-123:u:admin")
	require.NoError(t, err)
	h := NewServer(Config{Topics: kafka.TopicNames(""), Tokens: tokens}).Handler()
	for path, want := range map[string]string{
		"/api/v1/reviews":                    "GET",
		"/api/v1/reviews/ds_1/2/acknowledge": "POST",
		"/api/v1/datasets/status/ds_1":       "GET",
		"/api/v1/datasets/process":           "POST",
		"/api/v1/audit/access":               "GET",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodOptions, path, nil)
		req.Header.Set("Authorization", "Bearer test-token-123")
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, path)
		require.Equal(t, want, rec.Header().Get("Allow"), path)
	}
}

// TestOpenAPIIsServed: the API serves its description as written and as
// JSON, without a token.
func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	h := NewServer(Config{Topics: kafka.TopicNames("")}).Handler()
	spec, err := os.ReadFile("../../docs/openapi.yaml")
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, string(spec), rec.Body.String())
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	require.Contains(t, doc.Paths, "/datasets/process")
}
