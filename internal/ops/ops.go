// Package ops serves what operators ask of every service: /livez (the
// process answers), /readyz (it can do its work: the broker and Postgres
// answer and Postgres holds this build's migrations) and /metrics
// (Prometheus text format: Go runtime and process figures, the Postgres
// pool, executions by status and the review queue's depth where the
// process has the store, and whatever the service registers).
package ops

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/store"
)

// Check is one readiness check: nil when ready.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Ops holds a process's registry and readiness checks.
type Ops struct {
	Registry *prometheus.Registry
	mu       sync.Mutex
	checks   []Check
}

// New makes the registry with the Go runtime and process collectors.
func New() *Ops {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Ops{Registry: r}
}

// AddCheck adds a readiness check.
func (o *Ops) AddCheck(name string, fn func(ctx context.Context) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks = append(o.checks, Check{name, fn})
}

// AddStore registers the Postgres checks and metrics of a process that has
// the store.
func (o *Ops) AddStore(st *store.Store) {
	o.AddCheck("postgres", st.Ping)
	o.AddCheck("migrations", st.Ready)
	o.Registry.MustRegister(&storeCollector{st: st})
}

// Handle mounts /livez, /readyz and /metrics on mux.
func (o *Ops) Handle(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	mux.Handle("/livez", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"live"}` + "\n"))
	}))
	mux.Handle("/readyz", http.HandlerFunc(o.ready))
	mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
}

// ready runs every check (2 s each, in parallel) and answers 200 when all
// pass, 503 with the failures otherwise. Error texts name the component,
// never data.
func (o *Ops) ready(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	checks := append([]Check(nil), o.checks...)
	o.mu.Unlock()
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			res := "ok"
			if err := c.Fn(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.Name] = res
			if res != "ok" {
				ok = false
			}
		}()
	}
	wg.Wait()
	code, status := http.StatusOK, "ready"
	if !ok {
		code, status = http.StatusServiceUnavailable, "not ready"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": results})
}

// storeCollector reports the pool's state and, from the read models,
// executions by status and open reviews, at scrape time.
type storeCollector struct{ st *store.Store }

var (
	descPool = map[string]*prometheus.Desc{
		"acquired": prometheus.NewDesc("dspipe_pg_pool_acquired_conns", "Postgres connections in use.", nil, nil),
		"idle":     prometheus.NewDesc("dspipe_pg_pool_idle_conns", "Idle Postgres connections.", nil, nil),
		"total":    prometheus.NewDesc("dspipe_pg_pool_total_conns", "Postgres connections open.", nil, nil),
		"max":      prometheus.NewDesc("dspipe_pg_pool_max_conns", "Most Postgres connections allowed.", nil, nil),
	}
	descAcquires   = prometheus.NewDesc("dspipe_pg_pool_acquires_total", "Connections taken from the pool.", nil, nil)
	descWait       = prometheus.NewDesc("dspipe_pg_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
	descExecutions = prometheus.NewDesc("dspipe_executions", "Executions in the read model by status.", []string{"status"}, nil)
	descReviews    = prometheus.NewDesc("dspipe_review_queue_depth", "Records held for a reviewer, not yet acknowledged.", nil, nil)
	descScrapeErr  = prometheus.NewDesc("dspipe_read_model_scrape_errors", "1 when the read models could not be read for this scrape.", nil, nil)
	descFailures   = prometheus.NewDesc("dspipe_execution_failures", "Failed executions by error category (safety_violation: the safety or bias gate stopped it).", []string{"category"}, nil)
	descAlerts     = prometheus.NewDesc("dspipe_alerts", "Alerts raised by executions, by severity and code.", []string{"severity", "code"}, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descPool {
		ch <- d
	}
	ch <- descAcquires
	ch <- descWait
	ch <- descExecutions
	ch <- descReviews
	ch <- descScrapeErr
	ch <- descFailures
	ch <- descAlerts
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.PoolStat()
	ch <- prometheus.MustNewConstMetric(descPool["acquired"], prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(descPool["idle"], prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(descPool["total"], prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(descPool["max"], prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(descAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(descWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	byStatus, open, err := c.st.StatusCounts(ctx)
	var failures map[string]int64
	var alerts map[[2]string]int64
	if err == nil {
		failures, err = c.st.Failures(ctx)
	}
	if err == nil {
		alerts, err = c.st.AlertCounts(ctx)
	}
	failed := 0.0
	if err != nil {
		failed = 1
	} else {
		for _, st := range []string{"requested", "queued", "running", "completed", "failed", "cancelled"} {
			ch <- prometheus.MustNewConstMetric(descExecutions, prometheus.GaugeValue, float64(byStatus[st]), st)
		}
		ch <- prometheus.MustNewConstMetric(descReviews, prometheus.GaugeValue, float64(open))
		for _, cat := range []string{events.CategoryValidation, events.CategoryIntegration, events.CategorySafety, events.CategoryProcessing,
			events.CategoryStorage, events.CategoryTimeout} {
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(failures[cat]), cat)
		}
		for k, n := range alerts {
			ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, failed)
}
