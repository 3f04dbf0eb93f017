package processor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dspipe/dspipe/events"
)

// procMetrics are the processor's Prometheus figures: records by the stage
// that decided them and how, and stage durations. Counted as processed,
// so a transaction that aborts and runs again counts its records twice;
// the statistics and the event log are the exact figures.
type procMetrics struct {
	records   *prometheus.CounterVec
	stages    *prometheus.HistogramVec
	replayed  prometheus.Counter
	snapshots prometheus.Counter
	worked    *prometheus.CounterVec
	dups      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *procMetrics {
	if reg == nil {
		return nil
	}
	m := &procMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dspipe_records_total",
			Help: "Records processed, by the stage that decided them and the outcome (kept, rejected, quarantined)."}, []string{"stage", "outcome"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dspipe_stage_duration_seconds",
			Help:    "Durations of completed stages of executions.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 12)}, []string{"stage"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "dspipe_processor_replayed_events_total",
			Help: "Events replayed to rebuild partitions' state after the latest snapshot (at start, rebalance or abort)."}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: "dspipe_processor_snapshots_total",
			Help: "Partition state snapshots written (committed or not)."}),
	}
	m.worked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dspipe_processor_records_worked_total",
		Help: "Raw records this processor ran the record stages on, by whether the execution's home partition is this instance's (own) or another's (shared)."}, []string{"home"})
	m.dups = prometheus.NewCounter(prometheus.CounterOpts{Name: "dspipe_processor_outcomes_redelivered_total",
		Help: "Record outcomes delivered again to an execution's home and not counted again (should stay 0; a broker anomaly)."})
	reg.MustRegister(m.records, m.stages, m.replayed, m.snapshots, m.worked, m.dups)
	return m
}

func (m *procMetrics) recovered(events int) {
	if m != nil {
		m.replayed.Add(float64(events))
	}
}

func (m *procMetrics) snapshot() {
	if m != nil {
		m.snapshots.Inc()
	}
}

func (m *procMetrics) work(own bool) {
	if m == nil {
		return
	}
	home := "shared"
	if own {
		home = "own"
	}
	m.worked.WithLabelValues(home).Inc()
}

func (m *procMetrics) duplicate() {
	if m != nil {
		m.dups.Inc()
	}
}

func (m *procMetrics) record(stage, outcome string) {
	if m != nil {
		m.records.WithLabelValues(stage, outcome).Inc()
	}
}

func (m *procMetrics) event(p events.Payload) {
	if m == nil {
		return
	}
	if sc, ok := p.(events.StageCompleted); ok {
		m.stages.WithLabelValues(sc.Stage).Observe(float64(sc.DurationMS) / 1000)
	}
}
