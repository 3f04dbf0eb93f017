package processor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
)

func testExec(req events.Request) *execState {
	x := newExec("ds_test", 0)
	x.req = req
	return x
}

// TestSafetyGate: over the request's max_quarantine_rate the stage fails
// and says how many of how many; under it, the stage completes with its
// summary, and quarantines beyond the live alerts are summed in one alert.
func TestSafetyGate(t *testing.T) {
	p := &Processor{cfg: Config{SafetyEnabled: true, CrisisThreshold: 0.5}}
	for _, c := range []struct {
		name                  string
		received, quarantined int64
		failure               string
		alerts                int
	}{
		{"under the rate, few", 1000, 5, "", 0},
		{"under the rate, more than the live alerts", 1000, 150, "", 1},
		{"over the rate", 1000, 201, "201 of 1000 records were quarantined for crisis review, over the allowed share of 0.20", 0},
		{"at the rate", 1000, 200, "", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := testExec(events.Request{Safety: json.RawMessage(`{"max_quarantine_rate":0.2}`)})
			x.counts.Received = c.received
			x.Safety = &events.SafetySummary{Quarantined: c.quarantined}
			sc := events.StageCompleted{Stage: events.StageSafety}
			g := p.gate(x, &sc)
			require.Equal(t, c.failure, g.Failure)
			require.Len(t, g.Alerts, c.alerts)
			if c.failure == "" {
				require.Equal(t, c.quarantined, sc.Safety.Quarantined, "the summary goes on the completed stage")
			}
			if c.alerts > 0 {
				require.Equal(t, "crisis_quarantine", g.Alerts[0].Code)
				require.Contains(t, g.Alerts[0].Message, "more records were quarantined")
			}
		})
	}
}

// TestBiasGate: a clear skew fails the stage (mode fail) or only warns
// (mode warn), the alert naming the axis; a balanced dataset passes; too
// few mentions never trip the gate.
func TestBiasGate(t *testing.T) {
	p := &Processor{cfg: Config{BiasEnabled: true, BiasThreshold: 0.3}}
	skewed := map[string]map[string]int64{"gender": {"woman": 2000, "man": 20}}
	balanced := map[string]map[string]int64{"gender": {"woman": 1000, "man": 1000}}
	few := map[string]map[string]int64{"gender": {"woman": 3}}
	for _, c := range []struct {
		name     string
		groups   map[string]map[string]int64
		settings string
		fails    bool
		severity string
	}{
		{"skewed, fail", skewed, `{}`, true, "critical"},
		{"skewed, warn", skewed, `{"mode":"warn"}`, false, "warning"},
		{"balanced", balanced, `{}`, false, ""},
		{"few mentions", few, `{}`, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := testExec(events.Request{Processing: map[string]json.RawMessage{"bias": json.RawMessage(c.settings)}})
			var n int64
			for _, g := range c.groups["gender"] {
				n += g
			}
			x.Bias = &events.BiasSummary{Records: n, Groups: c.groups}
			sc := events.StageCompleted{Stage: events.StageBias}
			g := p.gate(x, &sc)
			require.Equal(t, c.fails, g.Failure != "", g.Failure)
			require.NotNil(t, sc.Bias, "the summary goes on the completed stage")
			if c.severity == "" {
				require.Empty(t, g.Alerts)
				return
			}
			require.Len(t, g.Alerts, 1)
			require.Equal(t, c.severity, g.Alerts[0].Severity)
			require.Equal(t, "bias_threshold", g.Alerts[0].Code)
			require.Contains(t, g.Alerts[0].Message, "gender")
		})
	}
}

// TestQualityStageCarriesItsSummary: the quality stage has no gate (its
// threshold rejects records one by one); its summary goes on the stage.
func TestQualityStageCarriesItsSummary(t *testing.T) {
	p := &Processor{cfg: Config{QualityEnabled: true}}
	x := testExec(events.Request{})
	x.Quality = &events.QualitySummary{Scored: 10, Mean: 0.7}
	sc := events.StageCompleted{Stage: events.StageQuality}
	require.Equal(t, pipeline.Gate{}, p.gate(x, &sc))
	require.Equal(t, 0.7, sc.Quality.Mean)
}
