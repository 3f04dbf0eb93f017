package processor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/wire"
)

// TestApplyRebuildsTheState: the state a replay of the events gives is the
// state the processor had: status through its life, counts and summaries
// from the cumulative progress, the acquisition total, reviews, the
// output's place.
func TestApplyRebuildsTheState(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	x := newExec("ds_t", 3)
	apply := func(p events.Payload) {
		t.Helper()
		e, err := events.New("test", "ds_t", at, p)
		require.NoError(t, err)
		x.apply(&e, p)
		at = at.Add(time.Second)
	}
	apply(&events.ExecutionRequested{UserID: "u", Request: events.Request{Sources: []events.SourceSpec{{Type: "local"}, {Type: "local"}}}})
	require.Equal(t, statusRequested, x.status)
	apply(&events.ExecutionQueued{})
	require.Equal(t, statusQueued, x.status)
	apply(&events.ExecutionStarted{StagedOffset: 42})
	require.Equal(t, statusRunning, x.status)
	require.EqualValues(t, 42, x.stagedFrom)
	apply(&events.StageProgress{Counts: events.Counts{Received: 10, Valid: 9, Rejected: 1}, PerSource: []int64{6, 3}, NoConsent: []int64{0, 1},
		Safety: &events.SafetySummary{Quarantined: 2}})
	require.Equal(t, events.Counts{Received: 10, Valid: 9, Rejected: 1}, x.counts)
	require.Equal(t, []int64{6, 3}, x.perSource)
	require.EqualValues(t, 2, x.Safety.Quarantined)
	apply(&events.StageCompleted{Stage: events.StageAcquisition, Counts: events.Counts{Total: 10}})
	require.EqualValues(t, 10, x.counts.Total)
	apply(&events.ReviewOpened{Review: 1})
	apply(&events.ReviewAcknowledged{Review: 1})
	require.Equal(t, reviewAcknowledged, x.reviews[1])
	apply(&events.StageStarted{Stage: events.StageOutput})
	require.Equal(t, statusFinalizing, x.status)
	apply(&events.ExecutionCompleted{OutputDir: "out/ds_t"})
	require.Equal(t, statusDone, x.status)
	require.Equal(t, "out/ds_t", x.outputDir)
	apply(&events.OutputRewritten{OutputDir: "out/ds_t.v2"})
	require.Equal(t, "out/ds_t.v2", x.outputDir)
}

// TestS3ErrorsAreClassified: throttling, server errors and lost
// connections are tried again; a refusal or a destination taken is not.
func TestS3ErrorsAreClassified(t *testing.T) {
	status := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("api error")}}
	}
	for _, c := range []struct {
		err       error
		retryable bool
	}{
		{status(503), true},
		{status(500), true},
		{status(429), true},
		{status(403), false},
		{status(404), false},
		{fmt.Errorf("upload: %w", &netError{}), true},
		{fmt.Errorf("%w: s3://b/p", sink.ErrTaken), false},
		{context.Canceled, false},
	} {
		var oe *outputError
		require.ErrorAs(t, s3Error("upload the output", c.err), &oe)
		require.Equal(t, c.retryable, oe.retryable, "%v", c.err)
		require.Contains(t, oe.Error(), "upload the output: ")
	}
}

// netError is a connection reset, as the net package reports one.
type netError struct{}

func (*netError) Error() string {
	return "read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"
}
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return true }

// TestAnOutcomeCountsOnce: a record's outcome delivered twice is counted
// once, per source and sequence number; records of an earlier version
// (no sequence number) are not tracked.
func TestAnOutcomeCountsOnce(t *testing.T) {
	x := testExec(events.Request{Sources: []events.SourceSpec{{Type: "local"}, {Type: "local"}}})
	for _, m := range []wire.Meta{{Source: 0, Seq: 1}, {Source: 1, Seq: 1}, {Source: 0, Seq: 64}, {Source: 0, Seq: 65}, {Source: 0, Seq: 100000}, {Source: 7, Seq: 3}} {
		require.True(t, x.countOnce(m), "%+v first", m)
		require.False(t, x.countOnce(m), "%+v again", m)
	}
	require.True(t, x.countOnce(wire.Meta{Source: 0, Seq: 2}))
	require.True(t, x.countOnce(wire.Meta{Source: 0}))
	require.True(t, x.countOnce(wire.Meta{Source: 0}), "no sequence number: not tracked")
}
