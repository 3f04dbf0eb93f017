package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/testenv"
)

// TestSlowSubscriberIsDroppedWithoutBlockingOthers fills one subscriber's
// buffer and checks publish neither blocks nor starves the other.
func TestSlowSubscriberIsDroppedWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	h := NewHub(kafka.Config{}, testenv.Logger(t))
	slow := h.subscribe("ds_1")
	fast := h.subscribe("ds_1")
	other := h.subscribe("ds_2")
	got := 0
	start := time.Now()
	for i := 1; i <= subscriberBuffer*3; i++ {
		h.publish(hubEvent{env: events.Envelope{Subject: "ds_1", Seq: uint64(i)}})
		// The fast subscriber keeps up; the slow one never reads.
		ev := <-fast.ch
		require.Equal(t, uint64(i), ev.env.Seq)
		got++
	}
	require.Less(t, time.Since(start), 5*time.Second, "publish never waits for a slow subscriber")
	select {
	case <-slow.dropped:
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	require.Equal(t, subscriberBuffer*3, got, "the fast subscriber got every event")
	require.Empty(t, other.ch, "events go only to their execution's subscribers")
	select {
	case <-fast.dropped:
		t.Fatal("the fast subscriber was dropped")
	default:
	}
}
