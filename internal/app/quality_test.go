package app_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/gen"
)

// TestQualityAndBiasStages runs generated conversations, some planted with
// low-quality defects (repetition, empty turns, copied turns, gibberish)
// and some with demographic mentions, through the pipeline with the
// quality and bias stages on: the planted records are rejected with the
// rule they fail and their position, the others are kept with
// annotations.quality and annotations.bias, and statistics, the live feed
// and the manifest carry the quality histogram and the per-axis figures.
func TestQualityAndBiasStages(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_QUALITY_ASSESSMENT": "true", "ENABLE_BIAS_DETECTION": "true"}})
	const n = 2000
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: n, Sources: 1, Format: "chatml", Seed: 31})
	require.NoError(t, err)
	planted := map[int64]string{}
	tf, err := os.Open(sum.Truth)
	require.NoError(t, err)
	sc := bufio.NewScanner(tf)
	for sc.Scan() {
		var tr gen.Truth
		require.NoError(t, json.Unmarshal(sc.Bytes(), &tr))
		if tr.LowQuality != "" {
			planted[tr.Position] = tr.LowQuality
		}
	}
	tf.Close()
	require.NotEmpty(t, planted)

	// The generator's planted mentions follow the default population
	// reference: the gate lets them through.
	req := localRequest(sum.Files...)
	id, msgs := s.run(t, req)
	final := msgs[len(msgs)-1]
	require.Equal(t, "completed", final.Data["status"], "a dataset with balanced mentions passes the bias gate: %v", final.Data)
	x := waitProjected(t, s, id, msgs)

	rejected := readLines(t, filepath.Join(x.OutputDir, "rejected.jsonl"))
	byQuality := map[int64]string{}
	for _, r := range rejected {
		if r["stage"] == "quality_assessment" {
			byQuality[int64(r["position"].(float64))] = r["reason"].(string)
		}
	}
	for pos, kind := range planted {
		reason, ok := byQuality[pos]
		require.True(t, ok, "planted %s at position %d is rejected", kind, pos)
		require.Contains(t, reason, "below min_score 0.50")
	}
	extra := len(byQuality) - len(planted)
	require.LessOrEqual(t, extra, n/100, "at most 1%% of the good records are rejected for quality (%d)", extra)

	data := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	require.EqualValues(t, n, int64(len(data))+x.Rejected)
	mentions := 0
	for _, rec := range data {
		ann := rec["annotations"].(map[string]any)
		q := ann["quality"].(map[string]any)
		require.GreaterOrEqual(t, q["score"].(float64), 0.5)
		mentions += len(ann["bias"].(map[string]any)["mentions"].([]any))
		var stages []string
		for _, l := range rec["lineage"].([]any) {
			stages = append(stages, l.(map[string]any)["stage"].(string))
		}
		require.Equal(t, []string{"validation", "standardization", "quality_assessment", "bias_detection"}, stages)
	}
	require.Greater(t, mentions, 0)

	var stats struct {
		QualityScore *float64 `json:"quality_score"`
		BiasScore    *float64 `json:"bias_score"`
		Quality      struct {
			Histogram []int64          `json:"histogram"`
			Rejected  int64            `json:"rejected"`
			Failed    map[string]int64 `json:"failed"`
		} `json:"quality"`
		Bias struct {
			Groups map[string]map[string]int64 `json:"groups"`
		} `json:"bias"`
	}
	require.NoError(t, s.client.Do(t.Context(), "GET", "/statistics/"+id, nil, &stats))
	require.NotNil(t, stats.QualityScore)
	require.NotNil(t, stats.BiasScore)
	require.Less(t, *stats.BiasScore, 0.3)
	var binned int64
	for _, v := range stats.Quality.Histogram {
		binned += v
	}
	require.EqualValues(t, n, binned, "every record is in the quality histogram")
	require.EqualValues(t, len(byQuality), stats.Quality.Rejected)
	require.NotEmpty(t, stats.Bias.Groups["gender"])

	live := false
	for _, m := range msgs {
		if m.EventType == "dataset_progress" && m.Data["quality_score"] != nil && m.Data["bias_score"] != nil {
			live = true
		}
	}
	require.True(t, live, "dataset_progress carries quality_score and bias_score")

	var manifest struct {
		Stages []struct{ Name string } `json:"stages"`
		Bias   struct {
			Score float64 `json:"score"`
		} `json:"bias"`
	}
	b, err := os.ReadFile(filepath.Join(x.OutputDir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	var names []string
	for _, st := range manifest.Stages {
		names = append(names, st.Name)
	}
	require.Contains(t, names, "quality_assessment")
	require.Contains(t, names, "bias_detection")
	require.InDelta(t, *stats.BiasScore, manifest.Bias.Score, 1e-9)
}

// TestBiasGateTripsOnASkewedDataset: every demographic mention is a
// woman's; the bias stage fails with safety_violation and the alert names
// the gender axis. With mode warn the same data completes after a warning.
func TestBiasGateTripsOnASkewedDataset(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_BIAS_DETECTION": "true"}})
	sum, err := gen.Write(gen.Options{Dir: s.data, Records: 1500, Sources: 1, Format: "chatml", Seed: 32, Skew: "woman"})
	require.NoError(t, err)

	id, msgs := s.run(t, localRequest(sum.Files...))
	final := msgs[len(msgs)-1]
	require.Equal(t, "failed", final.Data["status"], "%v", final.Data)
	require.Equal(t, "bias_detection", final.Data["stage"])
	require.Equal(t, "safety_violation", final.Data["error_category"])
	require.Contains(t, final.Data["error"], "gender")
	alerted := false
	for _, m := range msgs {
		if m.EventType == "dataset_alert" && m.Data["code"] == "bias_threshold" {
			alerted = true
			require.Equal(t, "critical", m.Data["severity"])
			require.True(t, strings.Contains(m.Data["message"].(string), "gender") && strings.Contains(m.Data["message"].(string), "woman"), m.Data["message"])
		}
	}
	require.True(t, alerted)
	x := waitProjected(t, s, id, msgs)
	require.Equal(t, "failed", x.Status)

	req := localRequest(sum.Files...)
	req.Processing = map[string]json.RawMessage{"bias": json.RawMessage(`{"mode":"warn"}`)}
	_, msgs = s.run(t, req)
	final = msgs[len(msgs)-1]
	require.Equal(t, "completed", final.Data["status"], "mode warn only alerts: %v", final.Data)
	warned := false
	for _, m := range msgs {
		if m.EventType == "dataset_alert" && m.Data["code"] == "bias_threshold" {
			warned = m.Data["severity"] == "warning"
		}
	}
	require.True(t, warned)
}
