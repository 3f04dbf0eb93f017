package api

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/testenv"
)

// TestSlowSubscriberLagsWithoutBlockingOthers fills one subscriber's
// buffer and checks publish neither blocks nor starves the other, and that
// the slow one is told it lagged (its feed catches up from Postgres)
// instead of being dropped.
func TestSlowSubscriberLagsWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	h := NewHub(kafka.Config{}, nil, 0, testenv.Logger(t))
	slow := sub(t, h, "ds_1")
	fast := sub(t, h, "ds_1")
	other := sub(t, h, "ds_2")
	// Were publish to wait for the slow subscriber, this loop would never
	// end: the fast one reads each event only after publish returns.
	got := 0
	for i := 1; i <= subscriberBuffer*3; i++ {
		h.publish(hubEvent{env: events.Envelope{Subject: "ds_1", Seq: uint64(i)}})
		// The fast subscriber keeps up; the slow one never reads.
		ev := <-fast.ch
		require.Equal(t, uint64(i), ev.env.Seq)
		got++
	}
	select {
	case <-slow.lagged:
	default:
		t.Fatal("the slow subscriber was not told it lagged")
	}
	select {
	case <-slow.dropped:
		t.Fatal("a slow subscriber is not dropped")
	default:
	}
	require.Len(t, slow.ch, subscriberBuffer, "it holds the events that fit")
	require.Equal(t, uint64(subscriberBuffer*3), h.Head("ds_1"))
	require.Equal(t, subscriberBuffer*3, got, "the fast subscriber got every event")
	require.Empty(t, other.ch, "events go only to their execution's subscribers")
	select {
	case <-fast.dropped:
		t.Fatal("the fast subscriber was dropped")
	default:
	}
}

func sub(t *testing.T, h *Hub, id string) *subscriber {
	t.Helper()
	s, _, _, err := h.subscribe(id, "u")
	require.NoError(t, err)
	return s
}

// TestFeedsPerUserAreCapped opens feeds up to the cap, checks the next is
// refused for that user only, and that closing one frees its place.
func TestFeedsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	h := NewHub(kafka.Config{}, nil, 3, testenv.Logger(t))
	var subs []*subscriber
	for i := 0; i < 3; i++ {
		s, _, _, err := h.subscribe("ds_1", "alice")
		require.NoError(t, err)
		subs = append(subs, s)
	}
	_, _, _, err := h.subscribe("ds_2", "alice")
	require.ErrorIs(t, err, ErrTooManyFeeds)
	_, _, _, err = h.subscribe("ds_1", "bobby")
	require.NoError(t, err, "the cap is per user")
	h.unsubscribe("ds_1", subs[0])
	h.unsubscribe("ds_1", subs[0]) // twice: counted once
	_, _, _, err = h.subscribe("ds_2", "alice")
	require.NoError(t, err)
	_, _, _, err = h.subscribe("ds_2", "alice")
	require.ErrorIs(t, err, ErrTooManyFeeds)

	// A lagging subscriber keeps its place until its feed closes.
	for i := 1; i <= subscriberBuffer+1; i++ {
		h.publish(hubEvent{env: events.Envelope{Subject: "ds_1", Seq: uint64(i)}})
	}
	_, _, _, err = h.subscribe("ds_3", "alice")
	require.ErrorIs(t, err, ErrTooManyFeeds)
	h.unsubscribe("ds_1", subs[1])
	_, _, _, err = h.subscribe("ds_3", "alice")
	require.NoError(t, err)
}

// TestHubRemembersRecentEventsWithinBounds checks a late subscriber gets
// the latest events and the head seq, that the memory per execution and
// the number of executions remembered stay bounded, and that an execution
// being watched is never forgotten.
func TestHubRemembersRecentEventsWithinBounds(t *testing.T) {
	t.Parallel()
	h := NewHub(kafka.Config{}, nil, 0, testenv.Logger(t))
	watched, _, _, err := h.subscribe("ds_watched", "u")
	require.NoError(t, err)
	for i := 1; i <= recentEvents+40; i++ {
		h.publish(hubEvent{env: events.Envelope{Subject: "ds_1", Seq: uint64(i)}})
	}
	h.publish(hubEvent{env: events.Envelope{Subject: "ds_1", Seq: 7}}) // a replayed seq changes nothing
	_, recent, head, err := h.subscribe("ds_1", "u")
	require.NoError(t, err)
	require.Equal(t, uint64(recentEvents+40), head)
	require.Len(t, recent, recentEvents)
	require.Equal(t, uint64(41), recent[0].env.Seq)
	require.Equal(t, head, recent[len(recent)-1].env.Seq)

	for i := 0; i < maxTails*3; i++ {
		h.publish(hubEvent{env: events.Envelope{Subject: fmt.Sprintf("ds_x%d", i), Seq: 1}})
	}
	h.mu.Lock()
	n := len(h.tails)
	_, keptWatched := h.tails["ds_watched"]
	_, keptOne := h.tails["ds_1"]
	h.mu.Unlock()
	require.LessOrEqual(t, n, maxTails)
	require.True(t, keptWatched && keptOne, "executions with subscribers are never forgotten")
	h.publish(hubEvent{env: events.Envelope{Subject: "ds_watched", Seq: 1}})
	require.Len(t, watched.ch, 1)
}
