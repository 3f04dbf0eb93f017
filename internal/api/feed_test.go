package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/store"
)

// testCosts are the 1M-record bench's figures: the dataset stages take
// 0.84 of the record stages' time, fusion 0.44 of that; output alone 0.47.
var testCosts = costs{withFusion: 0.84, fusionShare: 0.44, outputOnly: 0.47}

// TestFeedProgressMovesFromTheStart: while acquisition runs the progress
// message uses the processor's estimate of the total, names acquisition
// as the stage, carries an ETA, and never goes back when the estimate
// grows; reviews go out as their own message type, not zeroed progress.
func TestFeedProgressMovesFromTheStart(t *testing.T) {
	f := newFeed(store.Execution{}, testCosts) // fusion on, the default
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	send := func(p events.Payload) Message {
		t.Helper()
		at = at.Add(time.Second)
		e, err := events.New("test", "ds_1", at, p)
		require.NoError(t, err)
		m, err := f.message(e)
		require.NoError(t, err)
		return m
	}
	send(events.ExecutionStarted{})
	send(events.StageStarted{Stage: events.StageAcquisition})
	send(events.StageStarted{Stage: events.StageSafety}) // record stages start together
	m := send(events.StageProgress{Stage: events.StageSafety, Counts: events.Counts{Received: 250}, RatePerSec: 250, EstimatedTotal: 1000})
	require.Equal(t, "dataset_progress", m.EventType)
	// A quarter of the records, which are 1/1.84 of the work (the
	// dataset stages cost 0.84 of them).
	require.InDelta(t, 25/1.84, m.Data["overall_progress"], 1e-9)
	require.Equal(t, events.StageAcquisition, m.Data["current_stage"])
	// 750 records to go at 250/s: the records end 3 s after this event
	// (6 s after the start), the dataset stages take 0.84 of that.
	require.Equal(t, at.Add(3*time.Second+time.Duration(0.84*6*float64(time.Second))), m.Data["estimated_completion"])
	// A second source begins: the estimate doubles, progress holds.
	m = send(events.StageProgress{Stage: events.StageSafety, Counts: events.Counts{Received: 300}, RatePerSec: 150, EstimatedTotal: 2000})
	require.InDelta(t, 25/1.84, m.Data["overall_progress"], 1e-9)
	// Acquisition ends: the true total takes over.
	send(events.StageCompleted{Stage: events.StageAcquisition, Counts: events.Counts{Received: 2000, Total: 2000}})
	m = send(events.StageProgress{Stage: events.StageBias, Counts: events.Counts{Received: 1600, Total: 2000}, RatePerSec: 200})
	require.InDelta(t, 80/1.84, m.Data["overall_progress"], 1e-9)
	require.Equal(t, events.StageBias, m.Data["current_stage"])
	m = send(events.StageStarted{Stage: events.StageFusion})
	require.Equal(t, events.StageFusion, m.Data["current_stage"], "a dataset stage is named once it starts")
	require.InDelta(t, 100/1.84, m.Data["overall_progress"], 1e-9, "the record stages' share is done")
	// The record stages ran 7 s: fusion and output should take 0.84 of it.
	require.Equal(t, at.Add(time.Duration(0.84*7*float64(time.Second))), m.Data["estimated_completion"])
	m = send(events.StageStarted{Stage: events.StageOutput})
	require.Equal(t, events.StageFusion, m.Data["current_stage"], "output starts with fusion but runs after it")
	require.Greater(t, m.Data["overall_progress"], 100/1.84)

	m = send(events.ReviewOpened{Review: 1, RecordID: "r1", Flags: []string{"crisis_quarantine"}, CrisisLevel: "attempt", Score: 0.9})
	require.Equal(t, "dataset_review", m.EventType)
	require.Equal(t, "open", m.Data["status"])
	require.NotContains(t, m.Data, "overall_progress")
}

// TestStatusProgressIsTimedThroughTheDatasetStages: fusion and output send
// nothing until they finish, so status times them against the record
// stages' duration: progress rises smoothly from the records' share, the
// stage turns from fusion to output, the ETA holds, and nothing reaches 100
// before the execution completes.
func TestStatusProgressIsTimedThroughTheDatasetStages(t *testing.T) {
	start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	ds := start.Add(100 * time.Second)
	x := store.Execution{Status: "running", CurrentStage: events.StageOutput, Received: 5000, Total: 5000, StartedAt: &start, UpdatedAt: ds}
	stages := []store.StageRun{{Stage: events.StageFusion, StartedAt: ds}, {Stage: events.StageOutput, StartedAt: ds}}
	p := progressOf(x, stages, testCosts)
	eta, ok := p.eta(ds)
	require.True(t, ok)
	require.Equal(t, ds.Add(84*time.Second), eta)
	prev := 0.0
	for s := 0; s <= 300; s += 5 {
		now := ds.Add(time.Duration(s) * time.Second)
		pct := progressAt(x, stages, now)
		require.GreaterOrEqual(t, pct, prev, "at %d s", s)
		require.Less(t, pct, 100.0)
		prev = pct
		want := events.StageFusion
		if s >= 37 {
			want = events.StageOutput
		}
		require.Equal(t, want, p.stage(now, x.CurrentStage), "at %d s", s)
		if e, _ := p.eta(now); s > 84 {
			require.True(t, e.After(now), "an overdue estimate moves on")
		} else {
			require.Equal(t, eta, e)
		}
	}
	require.InDelta(t, 100/1.84, progressAt(x, stages, ds), 1e-9)
	require.InDelta(t, 100*(1+0.84*0.5)/1.84, progressAt(x, stages, ds.Add(42*time.Second)), 1e-9)
	x.Status = "completed"
	require.Equal(t, 100.0, progressAt(x, stages, ds))
	// Without fusion the output alone is timed.
	x.Status, x.Request = "running", []byte(`{"fusion":{"enabled":false}}`)
	p = progressOf(x, stages[1:], testCosts)
	require.False(t, p.fusion)
	require.Equal(t, events.StageOutput, p.stage(ds, x.CurrentStage))
	eta, _ = p.eta(ds)
	require.Equal(t, ds.Add(47*time.Second), eta)
}

func TestLearnedCostsReplaceTheDefaultsWithinBounds(t *testing.T) {
	require.Equal(t, defaultCosts, learned(store.DatasetCosts{}))
	c := learned(store.DatasetCosts{WithFusion: 0.43, FusionShare: 0.73, OutputOnly: 100})
	require.Equal(t, costs{withFusion: 0.43, fusionShare: 0.73, outputOnly: 5}, c)
}

func progressAt(x store.Execution, stages []store.StageRun, now time.Time) float64 {
	pct, _, _ := figures(x, stages, testCosts, now)
	return pct
}
