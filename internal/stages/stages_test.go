package stages

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
)

func names(req events.Request, env pipeline.Env) []string {
	var out []string
	for _, a := range pipeline.Resolve(Record(), req, env) {
		out = append(out, a.Name)
	}
	return out
}

// TestTheListDecidesWhatRuns: the stages run in the list's order, and a
// stage the server or the request switches off is not in the execution's
// list at all, so nothing reports it.
func TestTheListDecidesWhatRuns(t *testing.T) {
	all := pipeline.Env{QualityEnabled: true, SafetyEnabled: true, BiasEnabled: true, CrisisThreshold: 0.8, BiasThreshold: 0.3}
	require.Equal(t, []string{events.StageQuality, events.StageSafety, events.StageBias}, names(events.Request{}, all))
	require.Empty(t, names(events.Request{}, pipeline.Env{}), "the server switched them all off")
	off := events.Request{
		Processing: map[string]json.RawMessage{"quality": json.RawMessage(`{"enabled":false}`)},
		Safety:     json.RawMessage(`{"enabled":false}`),
	}
	require.Equal(t, []string{events.StageBias}, names(off, all), "the request switched quality and safety off")
	for _, s := range Record() {
		require.NotEmpty(t, s.Name())
	}
}

// TestTheDatasetListDecidesWhatRuns: fusion, when the server allows it and
// the request asks, runs before balancing; balancing runs only when asked.
func TestTheDatasetListDecidesWhatRuns(t *testing.T) {
	dataset := func(req events.Request, env pipeline.Env) []string {
		var out []string
		for _, a := range pipeline.ResolveDataset(Dataset(), req, env) {
			out = append(out, a.Name)
		}
		return out
	}
	both := events.Request{Fusion: json.RawMessage(`{}`),
		Processing: map[string]json.RawMessage{"balancing": json.RawMessage(`{"key":"source","cap":10}`)}}
	require.Equal(t, []string{events.StageFusion, events.StageBalancing}, dataset(both, pipeline.Env{FusionEnabled: true}))
	require.Equal(t, []string{events.StageBalancing}, dataset(both, pipeline.Env{}), "the server switched fusion off")
	require.Equal(t, []string{events.StageFusion}, dataset(events.Request{Fusion: json.RawMessage(`{}`)}, pipeline.Env{FusionEnabled: true}))
}

// TestFindingsCountAliveAfterTheirJourney: every record stage's finding,
// encoded where the stage ran and decoded at the execution's home, counts
// into exactly the summaries and events the finding itself does, on
// generated conversations with identifiers, crisis and demographic
// mentions planted.
func TestFindingsCountAliveAfterTheirJourney(t *testing.T) {
	env := pipeline.Env{QualityEnabled: true, SafetyEnabled: true, BiasEnabled: true, CrisisThreshold: 0.5, BiasThreshold: 0.3, PIISalt: []byte("s")}
	req := events.Request{}
	direct, carried := pipeline.Resolve(Record(), req, env), pipeline.Resolve(Record(), req, env)
	var sumDirect, sumCarried pipeline.Summaries
	var evDirect, evCarried []events.Payload
	g := gen.New(5)
	held := 0
	for i := 0; i < 400; i++ {
		c := g.Next()
		rec := stage.Record{ID: c.Truth.ID}
		for _, turn := range c.Turns {
			rec.Messages = append(rec.Messages, stage.Message{Role: turn.Role, Content: turn.Content})
		}
		res := pipeline.Run(direct, &rec)
		if res.Fate.Action == pipeline.Hold {
			held++
		}
		w := pipeline.Where{Source: "s", Position: int64(i)}
		for k, a := range direct {
			if res.Findings[k] == nil {
				continue
			}
			b, err := a.Run.EncodeFinding(res.Findings[k])
			require.NoError(t, err)
			require.NotContains(t, string(b), rec.Messages[0].Content, "a finding carries no text")
			f, err := carried[k].Run.DecodeFinding(b)
			require.NoError(t, err)
			evDirect = append(evDirect, a.Run.Count(&sumDirect, res.Findings[k], res.Fate, w)...)
			evCarried = append(evCarried, carried[k].Run.Count(&sumCarried, f, res.Fate, w)...)
		}
	}
	require.Positive(t, held, "some records were held for review")
	require.NotNil(t, sumDirect.Safety)
	require.Positive(t, len(sumDirect.Safety.PII))
	require.Equal(t, sumDirect, sumCarried)
	require.Equal(t, evDirect, evCarried)
}
