package api

import (
	"net/http"
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
		served = append(served, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	require.NoError(t, err)
	require.Len(t, served, 11, "the seed's eight endpoints, the audit trail and the review queue's two")
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)
}
