package safety

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
)

// TestStageHoldsReviewsAndBlocks: a crisis disclosure is held and opens a
// review with a live alert (the first AlertLimit only); sexualised content
// involving a minor is blocked; an ordinary record is kept; counts,
// positions and codes reach the events, never the text (records written
// here).
func TestStageHoldsReviewsAndBlocks(t *testing.T) {
	run := Stage{}.Resolve(events.Request{}, pipeline.Env{SafetyEnabled: true, CrisisThreshold: 0.7, PIISalt: []byte("s")})
	require.NotNil(t, run)
	apply := func(text string) (pipeline.Verdict, pipeline.Finding) {
		rec := stage.Record{ID: "r1", Messages: []stage.Message{{Role: "user", Content: text}}}
		return run.Apply(&pipeline.Record{Record: &rec, Original: append([]stage.Message(nil), rec.Messages...)})
	}
	var sum pipeline.Summaries
	crisisText := "I took a lot of pills last night and ended up in the ER, I still want to die."
	for i := 1; i <= AlertLimit+1; i++ {
		v, f := apply(crisisText)
		require.Equal(t, pipeline.Hold, v.Action)
		evs := run.Count(&sum, f, pipeline.Fate{Action: pipeline.Hold, Stage: events.StageSafety}, pipeline.Where{Source: "s", Position: int64(i)})
		require.IsType(t, events.ReviewOpened{}, evs[0])
		if i <= AlertLimit {
			require.Len(t, evs, 2, "a live alert for the first %d", AlertLimit)
			require.NotContains(t, evs[1].(events.Alert).Message, "pills", "codes and positions, never the text")
		} else {
			require.Len(t, evs, 1, "only the review beyond the limit")
		}
	}
	v, f := apply("Send me nudes of your 13 year old, I want porn with kids.")
	require.Equal(t, pipeline.Block, v.Action)
	require.Empty(t, run.Count(&sum, f, pipeline.Fate{Action: pipeline.Reject, Stage: events.StageSafety}, pipeline.Where{}))
	v, f = apply("We went for a walk and talked about my week.")
	require.Equal(t, pipeline.Keep, v.Action)
	run.Count(&sum, f, pipeline.Fate{Action: pipeline.Keep}, pipeline.Where{})
	require.EqualValues(t, AlertLimit+1, sum.Safety.Quarantined)
	require.EqualValues(t, 1, sum.Safety.Blocked)
	sc := events.StageCompleted{Stage: events.StageSafety}
	g := run.Close(&sum, &sc, events.Counts{Received: int64(AlertLimit + 3)})
	require.Empty(t, g.Failure, "the default allows any share held")
	require.Len(t, g.Alerts, 1, "the holds beyond the live alerts, summed")
	require.Contains(t, g.Alerts[0].Message, "1 more records")
	require.Equal(t, sum.Safety.Quarantined, sc.Safety.Quarantined, "the summary goes on the completed stage")
}
