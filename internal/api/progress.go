package api

import (
	"encoding/json"
	"math"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/store"
)

// The progress figures the status endpoint, the lists and the live feed
// all give. An execution has two phases: the record stages, while records
// stream (measured by records processed against the total, or while
// acquisition runs the processor's estimate from the sources' bytes), and
// the dataset stages after them (fusion and balancing in one pass over the
// staged records, then output), which send no events until they finish and
// are timed instead. overall_progress weights the phases by their measured
// cost, so the bar moves at one speed from start to end.

// Per record, the dataset stages cost this much of what the record stages
// cost, as `make bench` measured them with every stage on (1M generated
// conversations: record stages 89 s, fusion and balancing 33 s, output
// 42 s; 3M: 272, 114, 148 s).
const (
	costFusion = 0.37
	costOutput = 0.47
)

// progress is what progress is computed from.
type progress struct {
	received, total, estimate int64
	rate                      float64   // records per second now
	at                        time.Time // when the counts were true
	started                   time.Time // the record stages' start (zero: not yet)
	datasetStart              time.Time // the dataset stages' start (zero: records still stream)
	fusion                    bool      // fusion or balancing runs (or, before the dataset stages, will)
}

// progressOf reads an execution row (the lists and status); stages, when
// given, date the dataset stages' start.
func progressOf(x store.Execution, stages []store.StageRun) progress {
	p := progress{received: x.Received, total: x.Total, estimate: x.EstimatedTotal, rate: x.RatePerSec, at: x.UpdatedAt,
		fusion: fusionRequested(x.Request)}
	if x.StartedAt != nil {
		p.started = *x.StartedAt
	}
	if datasetStage(x.CurrentStage) {
		// Nothing updates the row while the dataset stages run: its last
		// change is their start.
		p.datasetStart, p.fusion = x.UpdatedAt, false
		for _, st := range stages {
			if datasetStage(st.Stage) {
				if p.datasetStart.IsZero() || st.StartedAt.Before(p.datasetStart) {
					p.datasetStart = st.StartedAt
				}
				p.fusion = p.fusion || st.Stage != events.StageOutput
			}
		}
		if len(stages) == 0 {
			p.fusion = fusionRequested(x.Request)
		}
	}
	return p
}

// fusionRequested reports whether the request leaves fusion on (it is on
// by default).
func fusionRequested(req json.RawMessage) bool {
	var r struct {
		Fusion struct {
			Enabled *bool `json:"enabled"`
		} `json:"fusion"`
	}
	if json.Unmarshal(req, &r) != nil || r.Fusion.Enabled == nil {
		return true
	}
	return *r.Fusion.Enabled
}

func datasetStage(s string) bool {
	return s == events.StageFusion || s == events.StageBalancing || s == events.StageOutput
}

// datasetCost is the dataset stages' cost per record relative to the
// record stages'.
func (p progress) datasetCost() float64 {
	if p.fusion {
		return costFusion + costOutput
	}
	return costOutput
}

// totalRecords is the total to measure against: the records acquisition
// produced, or while it runs the estimate (0: neither known).
func (p progress) totalRecords() int64 {
	if p.total > 0 {
		return p.total
	}
	return p.estimate
}

// datasetExpected is how long the dataset stages should take: the record
// stages' duration scaled by their relative cost.
func (p progress) datasetExpected() time.Duration {
	if p.started.IsZero() || !p.datasetStart.After(p.started) {
		return 0
	}
	return time.Duration(float64(p.datasetStart.Sub(p.started)) * p.datasetCost())
}

// datasetFraction is how far the dataset stages are at now: linear in time
// to 90% of the expected duration, then approaching (never reaching) 1.
func (p progress) datasetFraction(now time.Time) float64 {
	exp := p.datasetExpected()
	if exp <= 0 {
		return 0
	}
	r := float64(now.Sub(p.datasetStart)) / float64(exp)
	switch {
	case r <= 0:
		return 0
	case r <= 0.9:
		return r
	}
	return 0.9 + 0.1*(1-math.Exp(-(r-0.9)/0.1))
}

// percent is overall_progress at now, below 100 until the execution
// completes.
func (p progress) percent(now time.Time) float64 {
	d := p.datasetCost()
	if !p.datasetStart.IsZero() {
		return math.Min(100*(1+d*p.datasetFraction(now))/(1+d), 99.9)
	}
	t := p.totalRecords()
	if t <= 0 {
		return 0
	}
	f := math.Min(float64(p.received)/float64(t), 1)
	if p.total == 0 {
		f = math.Min(f, 0.99) // an estimate is never the end
	}
	return 100 * f / (1 + d)
}

// stage is the stage a user would name at now: while the dataset stages
// run, fusion (or balancing) for their share of the expected time and
// output after it.
func (p progress) stage(now time.Time, current string) string {
	if p.datasetStart.IsZero() || !p.fusion {
		return current
	}
	if p.datasetFraction(now) < costFusion/(costFusion+costOutput) {
		return events.StageFusion
	}
	return events.StageOutput
}

// eta is when the execution should complete; false when it cannot be
// said yet.
func (p progress) eta(now time.Time) (time.Time, bool) {
	if !p.datasetStart.IsZero() {
		exp := p.datasetExpected()
		if exp <= 0 {
			return time.Time{}, false
		}
		end := p.datasetStart.Add(exp)
		if !end.After(now) {
			end = now.Add(exp / 10) // running over: a tenth of the estimate more
		}
		return end, true
	}
	t := p.totalRecords()
	if p.rate <= 0 || t <= p.received || p.started.IsZero() {
		return time.Time{}, false
	}
	recordsEnd := p.at.Add(time.Duration(float64(t-p.received) / p.rate * float64(time.Second)))
	return recordsEnd.Add(time.Duration(float64(recordsEnd.Sub(p.started)) * p.datasetCost())), true
}

// overallProgress is an execution's overall_progress: 100 once completed,
// the reported percent for executions driven through POST /progress.
func overallProgress(x store.Execution, stages []store.StageRun, now time.Time) float64 {
	switch {
	case x.Status == "completed":
		return 100
	case x.Total > 0 || x.EstimatedTotal > 0 || datasetStage(x.CurrentStage):
		return progressOf(x, stages).percent(now)
	case x.ReportedPercent != nil:
		return *x.ReportedPercent
	}
	return 0
}

// shownStage is the stage a list shows for an execution.
func shownStage(x store.Execution) string {
	if x.Status != "running" {
		return x.CurrentStage
	}
	return progressOf(x, nil).stage(time.Now(), x.CurrentStage)
}
