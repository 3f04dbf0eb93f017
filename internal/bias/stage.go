package bias

import (
	"fmt"

	gojson "github.com/goccy/go-json"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
)

// Stage is bias detection as a pipeline stage: demographic mentions are
// found in each record's text as written (before masking), listed in
// annotations.bias, and counted over the kept records; the gate fails the
// execution (or warns) when the dataset is skewed.
type Stage struct{}

// Name is the stage's name in events.
func (Stage) Name() string { return events.StageBias }

// Key is the stage's settings under processing.
func (Stage) Key() string { return "bias" }

// Validate checks processing.bias.
func (Stage) Validate(req events.Request) error {
	_, err := ParseRequest(req.Processing["bias"])
	return err
}

// Resolve runs the stage unless the server or the request switches it off.
func (Stage) Resolve(req events.Request, env pipeline.Env) pipeline.RecordRun {
	if !env.BiasEnabled {
		return nil
	}
	s, ok := Resolve(req.Processing["bias"], env.BiasThreshold)
	if !ok {
		return nil
	}
	return run{s}
}

type run struct{ set Settings }

// listed is a mention as annotations.bias lists it: which message, never
// offsets (masking moves them) or text.
type listed struct {
	Message  int    `json:"message"`
	Axis     string `json:"axis"`
	Group    string `json:"group"`
	Negative bool   `json:"negative,omitempty"`
}

// found is the stage's finding: a record's mentions.
type found struct{ mentions []Mention }

func (run) Apply(r *pipeline.Record) (pipeline.Verdict, pipeline.Finding) {
	f := &found{}
	list := []listed{}
	for i, msg := range r.Original {
		for _, m := range Detect(msg.Content) {
			f.mentions = append(f.mentions, m)
			list = append(list, listed{i, m.Axis, m.Group, m.Negative})
		}
	}
	r.Annotate("bias", struct {
		Mentions []listed `json:"mentions"`
	}{list})
	r.Lineage = append(r.Lineage, stage.Lineage{Stage: events.StageBias, Version: Version})
	return pipeline.Verdict{}, f
}

// Count adds the mentions of kept records: the dataset's balance is the
// balance of what is published.
func (run) Count(s *pipeline.Summaries, f pipeline.Finding, fate pipeline.Fate, _ pipeline.Where) []events.Payload {
	if fate.Action != pipeline.Keep {
		return nil
	}
	if s.Bias == nil {
		s.Bias = &events.BiasSummary{}
	}
	Add(s.Bias, f.(*found).mentions)
	return nil
}

// EncodeFinding carries each mention's axis, group and polarity.
func (run) EncodeFinding(f pipeline.Finding) ([]byte, error) {
	ms := f.(*found).mentions
	out := make([]Mention, len(ms))
	for i, m := range ms {
		out[i] = Mention{Axis: m.Axis, Group: m.Group, Negative: m.Negative}
	}
	return gojson.Marshal(out)
}

func (run) DecodeFinding(b []byte) (pipeline.Finding, error) {
	var ms []Mention
	if err := gojson.Unmarshal(b, &ms); err != nil {
		return nil, err
	}
	return &found{mentions: ms}, nil
}

// Refresh brings the summary's score up to date.
func (b run) Refresh(s *pipeline.Summaries) {
	if s.Bias != nil {
		Update(s.Bias, b.set)
	}
}

// Close fails the stage when the dataset is skewed, or only warns when the
// request says so; the alert names the axis and the over-represented
// groups. It compares the low end of the 95% interval, so a skew must be
// clear, not an accident of few mentions.
func (b run) Close(s *pipeline.Summaries, sc *events.StageCompleted, _ events.Counts) pipeline.Gate {
	if s.Bias == nil {
		s.Bias = &events.BiasSummary{}
	}
	score := Update(s.Bias, b.set)
	sc.Bias = s.Bias.Clone()
	if score.Gate <= b.set.Threshold {
		return pipeline.Gate{}
	}
	reason := fmt.Sprintf("bias is above the threshold %.2f with 95%% confidence (bias score %.2f): %s", b.set.Threshold, score.Score, score.Describe())
	if b.set.Mode == "warn" {
		return pipeline.Gate{Alerts: []events.Alert{{Severity: "warning", Code: "bias_threshold", Stage: sc.Stage, Message: reason}}}
	}
	return pipeline.Gate{Alerts: []events.Alert{{Severity: "critical", Code: "bias_threshold", Stage: sc.Stage, Message: reason}}, Failure: reason}
}

func (b run) Manifest() (string, any) { return Version, b.set }
