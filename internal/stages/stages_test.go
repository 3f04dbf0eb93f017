package stages

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
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
