package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts the API's requests by route pattern (never the path:
// ids stay out of metrics) and answer class, with a latency histogram.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer, hub *Hub) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dspipe_api_requests_total",
			Help: "API requests by method, route pattern and status class."}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dspipe_api_request_duration_seconds",
			Help:    "API request latency by method and route pattern (WebSocket feeds excluded).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	if hub != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dspipe_api_websocket_feeds",
			Help: "Open WebSocket feeds."}, func() float64 { return float64(hub.Feeds()) }))
	}
	return m
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		code := ww.Status()
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(code/100)+"xx").Inc()
		if route != "/api/v1/datasets/ws/{id}" {
			m.latency.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
		}
	})
}
