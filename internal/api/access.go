package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/dspipe/dspipe/events"
)

// accessInfo is what the access middleware learns about one request as
// it passes through authentication and the handler.
type accessInfo struct {
	principal Principal
	execution string // set by handlers that create one (POST /process)
}

type accessKey struct{}

// noteAccess lets authentication and handlers add to the request's access
// record.
func noteAccess(ctx context.Context, fn func(*accessInfo)) {
	if a, ok := ctx.Value(accessKey{}).(*accessInfo); ok {
		fn(a)
	}
}

// Access is one API call as the access audit records it: when, and the
// record itself (who, what, from where, with which outcome). Never a body,
// a query string or a token.
type Access struct {
	Time time.Time
	events.Access
}

// AccessRecorder takes the API's access records (the access audit).
type AccessRecorder interface {
	Record(Access)
}

// actions names each audited route.
var actions = map[string]string{
	"POST /api/v1/datasets/process":                  "process",
	"GET /api/v1/datasets/status/{id}":               "status",
	"GET /api/v1/datasets/statistics/{id}":           "statistics",
	"GET /api/v1/datasets/active":                    "active",
	"GET /api/v1/datasets/recent":                    "recent",
	"GET /api/v1/datasets/{id}/events":               "events",
	"POST /api/v1/datasets/{id}/cancel":              "cancel",
	"POST /api/v1/datasets/{id}/progress":            "progress",
	"DELETE /api/v1/datasets/{id}/data":              "delete_data",
	"GET /api/v1/datasets/ws/{id}":                   "subscribe",
	"GET /api/v1/reviews":                            "reviews",
	"POST /api/v1/reviews/{id}/{review}/acknowledge": "acknowledge",
	"POST /api/v1/erasures":                          "erasure",
	"GET /api/v1/audit/access":                       "audit_access",
	"GET /api/v1/audit/public-key":                   "audit_public_key",
	"GET /api/v1/datasets/{id}/output/{file}":        "output",
}

// quietRoutes are logged at debug level only: health and readiness
// probes, metrics scrapes, the dashboard's files and the API's
// description, none of which touches execution data.
var quietRoutes = map[string]bool{"/api/v1/datasets/health": true, "/livez": true, "/readyz": true, "/metrics": true,
	"/assets": true, "/api/v1/openapi.yaml": true, "/api/v1/openapi.json": true}

// accessLog writes one access log line per call and hands every call of
// an audited route (all but /health), denials included, to the access
// audit.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		start := time.Now()
		info := &accessInfo{}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), accessKey{}, info)))
		rc := chi.RouteContext(r.Context())
		route := ""
		if rc != nil {
			route = strings.TrimSuffix(strings.TrimSuffix(rc.RoutePattern(), "/*"), "/")
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		remote, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			remote = r.RemoteAddr
		}
		a := Access{Time: start.UTC(), Access: events.Access{UserID: info.principal.UserID, Role: info.principal.Role, Method: r.Method,
			Route: route, Action: actions[r.Method+" "+route], Remote: remote, Status: status,
			DurationMS: float64(time.Since(start).Microseconds()) / 1000}}
		if rc != nil {
			a.ExecutionID, a.Review = rc.URLParam("id"), rc.URLParam("review")
		}
		if info.execution != "" {
			a.ExecutionID = info.execution
		}
		if !validID(a.ExecutionID) {
			a.ExecutionID = "" // never echo what a caller typed into the trail
		}
		if len(a.Review) > 12 {
			a.Review = ""
		}
		if quietRoutes[route] || r.URL.Path == "/" {
			s.log.Debug("api: access", "method", a.Method, "route", route, "status", status, "duration_ms", a.DurationMS)
			return
		}
		s.log.Info("api: access", "method", a.Method, "route", route, "action", a.Action, "status", status,
			"duration_ms", a.DurationMS, "user", a.UserID, "role", a.Role, "execution_id", a.ExecutionID, "remote", remote)
		// Calls that matched no route touch no execution data.
		if s.access != nil && a.Action != "" {
			s.access.Record(a)
		}
	})
}
