package api_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/api"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
)

// TestFeedDeliversEventsProjectedAfterTheClientConnected covers events that
// were published before the subscription and projected after the first
// catch-up: with no live event to reveal the gap, the feed must still
// deliver them, including the terminal one.
func TestFeedDeliversEventsProjectedAfterTheClientConnected(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	ctx := context.Background()
	tokens, err := api.ParseTokens("test-token-123:u:admin")
	require.NoError(t, err)
	hub := api.NewHub(kafka.Config{}, testenv.Logger(t)) // never run: no live events at all
	srv := api.NewServer(api.Config{Store: st, Topics: kafka.TopicNames(""), Tokens: tokens, Hub: hub, Log: testenv.Logger(t)})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	var c events.Chain
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(p events.Payload) ([]events.Envelope, [][]byte) {
		e, err := events.New("test", "ds_late", at, p)
		require.NoError(t, err)
		c.Seal(&e)
		b, err := events.Encode(e)
		require.NoError(t, err)
		return []events.Envelope{e}, [][]byte{b}
	}
	gen, _, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	apply := func(p events.Payload, off int64) {
		envs, raws := mk(p)
		require.NoError(t, st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen, NextOffset: off, Events: envs, Raw: raws}))
	}
	apply(events.ExecutionRequested{UserID: "u"}, 1)

	got := make(chan []uint64, 1)
	go func() {
		var seqs []uint64
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_ = client.New(hs.URL, "test-token-123").Watch(wctx, "ds_late", 0, func(m client.Message) error {
			seqs = append(seqs, m.Seq)
			return nil
		})
		got <- seqs
	}()
	time.Sleep(400 * time.Millisecond)
	apply(events.ExecutionStarted{}, 2)
	apply(events.ExecutionCompleted{}, 3)
	select {
	case seqs := <-got:
		require.Equal(t, []uint64{1, 2, 3}, seqs)
	case <-time.After(25 * time.Second):
		t.Fatal("the feed never delivered the late events")
	}
}
