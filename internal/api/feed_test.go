package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
)

// TestFeedProgressMovesFromTheStart: while acquisition runs the progress
// message uses the processor's estimate of the total, names acquisition
// as the stage, carries an ETA, and never goes back when the estimate
// grows; reviews go out as their own message type, not zeroed progress.
func TestFeedProgressMovesFromTheStart(t *testing.T) {
	f := &feed{}
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
	send(events.StageStarted{Stage: events.StageAcquisition})
	send(events.StageStarted{Stage: events.StageSafety}) // record stages start together
	m := send(events.StageProgress{Stage: events.StageSafety, Counts: events.Counts{Received: 250}, RatePerSec: 250, EstimatedTotal: 1000})
	require.Equal(t, "dataset_progress", m.EventType)
	require.InDelta(t, 23.75, m.Data["overall_progress"], 1e-9)
	require.Equal(t, events.StageAcquisition, m.Data["current_stage"])
	require.Contains(t, m.Data, "estimated_completion")
	// A second source begins: the estimate doubles, progress holds.
	m = send(events.StageProgress{Stage: events.StageSafety, Counts: events.Counts{Received: 300}, RatePerSec: 150, EstimatedTotal: 2000})
	require.InDelta(t, 23.75, m.Data["overall_progress"], 1e-9)
	// Acquisition ends: the true total takes over.
	send(events.StageCompleted{Stage: events.StageAcquisition, Counts: events.Counts{Received: 2000, Total: 2000}})
	m = send(events.StageProgress{Stage: events.StageBias, Counts: events.Counts{Received: 1600, Total: 2000}, RatePerSec: 200})
	require.InDelta(t, 76, m.Data["overall_progress"], 1e-9)
	require.Equal(t, events.StageBias, m.Data["current_stage"])
	send(events.StageStarted{Stage: events.StageFusion})
	m = send(events.StageProgress{Stage: events.StageBias, Counts: events.Counts{Received: 2000, Total: 2000}, RatePerSec: 200})
	require.Equal(t, events.StageFusion, m.Data["current_stage"], "a dataset stage is named once it starts")

	m = send(events.ReviewOpened{Review: 1, RecordID: "r1", Flags: []string{"crisis_quarantine"}, CrisisLevel: "attempt", Score: 0.9})
	require.Equal(t, "dataset_review", m.EventType)
	require.Equal(t, "open", m.Data["status"])
	require.NotContains(t, m.Data, "overall_progress")
}
