package api

import (
	"bytes"
	"context"
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

// costs is how long the dataset stages take as a share of the record
// stages' time: withFusion when fusion or balancing runs (fusionShare of
// it being fusion itself), outputOnly when only output does. The API
// learns them from this deployment's latest completed executions
// (store.DatasetCosts, refreshed every minute); until there are enough,
// these defaults, from `make bench` and 300k-record runs on 2 cores
// (1M generated conversations: record stages 89 s, fusion 33 s, output
// 42 s; 300k: 26.9 s, 8.6 s and 3.1 s, as fusion removed 63%).
type costs struct {
	withFusion, fusionShare, outputOnly float64
}

var defaultCosts = costs{withFusion: 0.6, fusionShare: 0.6, outputOnly: 0.3}

// learned fills what the store measured into the defaults.
func learned(d store.DatasetCosts) costs {
	c := defaultCosts
	if d.WithFusion > 0 {
		c.withFusion = min(max(d.WithFusion, 0.02), 5)
		if d.FusionShare > 0 {
			c.fusionShare = d.FusionShare
		}
	}
	if d.OutputOnly > 0 {
		c.outputOnly = min(max(d.OutputOnly, 0.02), 5)
	}
	return c
}

// progress is what progress is computed from.
type progress struct {
	received, total, estimate int64
	rate                      float64   // records per second now
	at                        time.Time // when the counts were true
	started                   time.Time // the record stages' start (zero: not yet)
	datasetStart              time.Time // the dataset stages' start (zero: records still stream)
	fusion                    bool      // fusion or balancing runs (or, before the dataset stages, will)
	costs                     costs
}

// progressOf reads an execution row (the lists and status); stages, when
// given, date the dataset stages' start and say whether fusion runs.
func progressOf(x store.Execution, stages []store.StageRun, c costs) progress {
	p := progress{received: x.Received, total: x.Total, estimate: x.EstimatedTotal, rate: x.RatePerSec, at: x.UpdatedAt, costs: c}
	if x.StartedAt != nil {
		p.started = *x.StartedAt
	}
	if !datasetStage(x.CurrentStage) || len(stages) == 0 {
		p.fusion = fusionRequested(x.Request)
	}
	if datasetStage(x.CurrentStage) {
		// Nothing updates the row while the dataset stages run: its last
		// change is their start.
		p.datasetStart = x.UpdatedAt
		for _, st := range stages {
			if datasetStage(st.Stage) {
				if st.StartedAt.Before(p.datasetStart) {
					p.datasetStart = st.StartedAt
				}
				p.fusion = p.fusion || st.Stage != events.StageOutput
			}
		}
	}
	return p
}

// fusionRequested reports whether the request leaves fusion on (it is on
// by default).
func fusionRequested(req json.RawMessage) bool {
	if !bytes.Contains(req, []byte(`"fusion"`)) {
		return true // the common case, without decoding the request
	}
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
		return p.costs.withFusion
	}
	return p.costs.outputOnly
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
	if p.datasetFraction(now) < p.costs.fusionShare {
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
	if p.started.IsZero() || t <= 0 || p.received <= 0 {
		return time.Time{}, false
	}
	rate := p.rate
	if rate <= 0 { // no rate reported yet: the average so far
		if el := p.at.Sub(p.started).Seconds(); el > 0 {
			rate = float64(p.received) / el
		}
	}
	if rate <= 0 {
		return time.Time{}, false
	}
	recordsEnd := p.at
	if t > p.received {
		recordsEnd = p.at.Add(time.Duration(float64(t-p.received) / rate * float64(time.Second)))
	}
	return recordsEnd.Add(time.Duration(float64(recordsEnd.Sub(p.started)) * p.datasetCost())), true
}

// figures are an execution's overall_progress, the stage a user would
// name and, while it runs, its ETA, at now: 100 once completed, the
// reported percent for executions driven through POST /progress.
func figures(x store.Execution, stages []store.StageRun, c costs, now time.Time) (float64, string, *time.Time) {
	if x.Status == "completed" {
		return 100, x.CurrentStage, nil
	}
	if !(x.Total > 0 || x.EstimatedTotal > 0 || datasetStage(x.CurrentStage)) {
		if x.ReportedPercent != nil {
			return *x.ReportedPercent, x.CurrentStage, nil
		}
		return 0, x.CurrentStage, nil
	}
	p := progressOf(x, stages, c)
	if x.Status != "running" {
		return p.percent(now), x.CurrentStage, nil
	}
	var eta *time.Time
	if e, ok := p.eta(now); ok {
		eta = &e
	}
	return p.percent(now), p.stage(now, x.CurrentStage), eta
}

// costs is what the latest completed executions measured, read again at
// most once a minute in the background (a request never waits for it).
func (s *Server) costs() costs {
	if c := s.learnedCosts.Load(); c != nil {
		if time.Since(c.at) > time.Minute && s.costsRefresh.TryLock() {
			go s.refreshCosts()
		}
		return c.costs
	}
	if s.costsRefresh.TryLock() {
		go s.refreshCosts()
	}
	return defaultCosts
}

type learnedCosts struct {
	costs costs
	at    time.Time
}

func (s *Server) refreshCosts() {
	defer s.costsRefresh.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := s.store.DatasetCosts(ctx)
	if err != nil {
		s.log.Warn("api: dataset stage costs (the defaults stand)", "err", err)
		d = store.DatasetCosts{}
	}
	s.learnedCosts.Store(&learnedCosts{costs: learned(d), at: time.Now()})
}
