package quality

import (
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
)

// Stage is quality assessment as a pipeline stage: every record is scored
// and annotated; one below the request's min_score is rejected unless a
// later stage holds it for review.
type Stage struct{}

// Name is the stage's name in events.
func (Stage) Name() string { return events.StageQuality }

// Key is the stage's settings under processing.
func (Stage) Key() string { return "quality" }

// Validate checks processing.quality.
func (Stage) Validate(req events.Request) error {
	_, err := ParseRequest(req.Processing["quality"])
	return err
}

// Resolve runs the stage unless the server or the request switches it off.
func (Stage) Resolve(req events.Request, env pipeline.Env) pipeline.RecordRun {
	if !env.QualityEnabled {
		return nil
	}
	s, ok := Resolve(req.Processing["quality"])
	if !ok {
		return nil
	}
	return run{s}
}

type run struct{ set Settings }

// annotation is what the stage writes into annotations.quality.
type annotation struct {
	Score    float64            `json:"score"`
	Signals  map[string]float64 `json:"signals"`
	Failed   []string           `json:"failed"`
	Language string             `json:"language"`
}

func (q run) Apply(r *pipeline.Record) (pipeline.Verdict, pipeline.Finding) {
	res := Assess(r.Messages, r.EmptyDropped)
	r.Annotate("quality", annotation{res.Score, res.Signals, res.Failed, res.Language})
	r.Lineage = append(r.Lineage, stage.Lineage{Stage: events.StageQuality, Version: Version})
	if res.Score < q.set.MinScore {
		return pipeline.Verdict{Action: pipeline.Reject, Yield: true,
			Reason: fmt.Sprintf("quality score %.2f is below min_score %.2f: %s", res.Score, q.set.MinScore, strings.Join(res.Failed, ", "))}, &res
	}
	return pipeline.Verdict{}, &res
}

func (q run) Count(s *pipeline.Summaries, f pipeline.Finding, fate pipeline.Fate, _ pipeline.Where) []events.Payload {
	res := f.(*Result)
	if s.Quality == nil {
		s.Quality = &events.QualitySummary{MinScore: q.set.MinScore}
	}
	s.Quality.Add(res.Score, res.Failed, fate.Action == pipeline.Reject && fate.Stage == events.StageQuality)
	return nil
}

// EncodeFinding carries the score and the failed rules (what Count reads).
func (run) EncodeFinding(f pipeline.Finding) ([]byte, error) {
	res := f.(*Result)
	return gojson.Marshal(Result{Score: res.Score, Failed: res.Failed})
}

func (run) DecodeFinding(b []byte) (pipeline.Finding, error) {
	var res Result
	if err := gojson.Unmarshal(b, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (run) Close(s *pipeline.Summaries, sc *events.StageCompleted, _ events.Counts) pipeline.Gate {
	sc.Quality = s.Quality.Clone()
	return pipeline.Gate{}
}

func (q run) Manifest() (string, any) { return Version, q.set }
