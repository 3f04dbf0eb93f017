package safety

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/pipeline"
)

// AlertLimit bounds the live alerts for held records per execution; the
// rest are summed in one alert when the stage completes.
const AlertLimit = 20

// Stage is safety validation as a pipeline stage: identifiers are masked,
// crisis and content are judged, and a record is kept, held for a
// reviewer, or blocked (sexual content involving minors).
type Stage struct{}

// Name is the stage's name in events.
func (Stage) Name() string { return events.StageSafety }

// Key is empty: the settings are the request's top-level "safety".
func (Stage) Key() string { return "" }

// Validate checks the request's safety object.
func (Stage) Validate(req events.Request) error {
	_, err := ParseRequest(req.Safety)
	return err
}

// Resolve runs the stage unless the server or the request switches it off.
func (Stage) Resolve(req events.Request, env pipeline.Env) pipeline.RecordRun {
	s := Resolve(req.Safety, env.SafetyEnabled, env.CrisisThreshold)
	if !s.Enabled {
		return nil
	}
	return &Run{Settings: s, salt: env.PIISalt}
}

// Run is the stage resolved for one execution.
type Run struct {
	Settings
	salt []byte
}

// Apply masks the record and judges it.
func (s *Run) Apply(r *pipeline.Record) (pipeline.Verdict, pipeline.Finding) {
	o := apply(r.Record, r.Original, s.Settings, s.salt)
	switch {
	case o.Blocked != "":
		return pipeline.Verdict{Action: pipeline.Block, Reason: o.Blocked}, &o
	case o.Quarantined:
		return pipeline.Verdict{Action: pipeline.Hold}, &o
	}
	return pipeline.Verdict{}, &o
}

// Count adds one record's outcome to the summary, and opens a review
// (with a live alert for the first AlertLimit) when it is held: counts,
// ids and positions only.
func (s *Run) Count(sum *pipeline.Summaries, f pipeline.Finding, _ pipeline.Fate, w pipeline.Where) []events.Payload {
	o := f.(*Outcome)
	if sum.Safety == nil {
		sum.Safety = &events.SafetySummary{PII: map[string]int64{}, Crisis: map[string]int64{}}
	}
	x := sum.Safety
	found := false
	for t, n := range o.PII {
		x.PII[t] += int64(n)
		found = found || n > 0
	}
	if found {
		x.RecordsWithPII++
	}
	x.Crisis[o.Crisis.Level]++
	for _, fl := range o.Flags {
		if x.Flags == nil {
			x.Flags = map[string]int64{}
		}
		x.Flags[fl]++
	}
	for c, v := range o.Content {
		if v >= content.FlagThreshold {
			if x.Content == nil {
				x.Content = map[string]int64{}
			}
			x.Content[c]++
		}
	}
	if o.Blocked != "" {
		x.Blocked++
		return nil
	}
	if !o.Quarantined {
		return nil
	}
	x.Quarantined++
	out := []events.Payload{events.ReviewOpened{Review: int(x.Quarantined), RecordID: o.RecordID, Source: w.Source, Position: w.Position,
		Flags: o.Flags, CrisisLevel: o.Crisis.Level, Score: o.Crisis.Score}}
	if x.Quarantined > AlertLimit {
		return out
	}
	// A crisis is critical; a record held for another reason (content for
	// a reviewer's judgement) is a warning, and says nothing of crisis.
	if slices.Contains(o.Flags, FlagCrisis) {
		return append(out, events.Alert{Severity: "critical", Code: "crisis_quarantine", Stage: events.StageSafety,
			Message: fmt.Sprintf("record %d of source %q was quarantined for review (%s): crisis level %s (score %.2f)", w.Position, w.Source,
				strings.Join(o.Flags, ", "), o.Crisis.Level, o.Crisis.Score)})
	}
	return append(out, events.Alert{Severity: "warning", Code: "review_quarantine", Stage: events.StageSafety,
		Message: fmt.Sprintf("record %d of source %q was quarantined for review (%s)", w.Position, w.Source, strings.Join(o.Flags, ", "))})
}

// counted is what Count reads of an outcome: counts, labels, the crisis
// level and score, the content categories flagged, the record id; never
// the evidence, the scores below the flag or any text.
type counted struct {
	PII         map[string]int `json:"pii,omitempty"`
	Level       string         `json:"level"`
	Score       float64        `json:"score"`
	Content     []string       `json:"content,omitempty"` // the categories at or over content.FlagThreshold
	Flags       []string       `json:"flags,omitempty"`
	Quarantined bool           `json:"quarantined,omitempty"`
	Blocked     string         `json:"blocked,omitempty"`
	RecordID    string         `json:"record_id,omitempty"`
}

// EncodeFinding carries what Count reads.
func (*Run) EncodeFinding(f pipeline.Finding) ([]byte, error) {
	o := f.(*Outcome)
	var flagged []string
	for c, v := range o.Content {
		if v >= content.FlagThreshold {
			flagged = append(flagged, c)
		}
	}
	sort.Strings(flagged)
	return gojson.Marshal(counted{PII: o.PII, Level: o.Crisis.Level, Score: o.Crisis.Score, Content: flagged, Flags: o.Flags,
		Quarantined: o.Quarantined, Blocked: o.Blocked, RecordID: o.RecordID})
}

func (*Run) DecodeFinding(b []byte) (pipeline.Finding, error) {
	var c counted
	if err := gojson.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	o := &Outcome{PII: c.PII, Flags: c.Flags, Quarantined: c.Quarantined, Blocked: c.Blocked, RecordID: c.RecordID}
	if len(c.Content) > 0 {
		o.Content = make(map[string]float64, len(c.Content))
		for _, cat := range c.Content {
			o.Content[cat] = content.FlagThreshold
		}
	}
	o.Crisis.Level, o.Crisis.Score = c.Level, c.Score
	return o, nil
}

// Close fails the stage when too many records were held, and sums up the
// holds beyond the live alerts.
func (s *Run) Close(sum *pipeline.Summaries, sc *events.StageCompleted, c events.Counts) pipeline.Gate {
	held := int64(0)
	if sum.Safety != nil {
		held = sum.Safety.Quarantined
	}
	if c.Received > 0 && float64(held)/float64(c.Received) > s.MaxQuarantineRate {
		return pipeline.Gate{Failure: fmt.Sprintf("%d of %d records were quarantined for crisis review, over the allowed share of %.2f",
			held, c.Received, s.MaxQuarantineRate)}
	}
	sc.Safety = sum.Safety.Clone()
	var g pipeline.Gate
	if extra := held - AlertLimit; extra > 0 {
		g.Alerts = append(g.Alerts, events.Alert{Severity: "critical", Code: "crisis_quarantine", Stage: sc.Stage,
			Message: fmt.Sprintf("%d more records were quarantined for crisis review (alerts are sent for the first %d)", extra, AlertLimit)})
	}
	return g
}

// Manifest is the stage's version and settings.
func (s *Run) Manifest() (string, any) { return Version, s.Settings }
