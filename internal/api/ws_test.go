package api_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/api"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
)

// TestFeedIsGapFreeWhateverTheProjectorLags runs a real hub on a broker
// while the projector (played by the test) lags far behind it: events that
// were in the topic before the hub started, events the hub has seen but no
// longer holds in memory, and events it still holds must all reach a
// subscriber once, in order, although none of them is projected when the
// client connects; and a late subscriber gets the whole feed again.
func TestFeedIsGapFreeWhateverTheProjectorLags(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	kc, _ := testenv.Kafka(t, 1)
	topic := kc.Topics().Events
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod, err := kc.Client()
	require.NoError(t, err)
	defer prod.Close()

	const n = 600 // more than the hub keeps per execution
	var c events.Chain
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var envs []events.Envelope
	var raws [][]byte
	for i := 1; i <= n; i++ {
		var p events.Payload = events.ProgressReported{Percent: float64(i) / n * 100}
		switch i {
		case 1:
			p = events.ExecutionRequested{UserID: "u"}
		case 2:
			p = events.ExecutionStarted{}
		case n:
			p = events.ExecutionCompleted{}
		}
		e, err := events.New("test", "ds_late", at, p)
		require.NoError(t, err)
		c.Seal(&e)
		b, err := events.Encode(e)
		require.NoError(t, err)
		envs, raws = append(envs, e), append(raws, b)
	}
	produce := func(i, j int) {
		for _, b := range raws[i:j] {
			require.NoError(t, prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("ds_late"), Value: b}).FirstErr())
		}
	}
	gen, _, err := st.Claim(ctx, topic, 0)
	require.NoError(t, err)
	apply := func(i, j int) { // events i..j-1 sit at offsets i..j-1
		require.NoError(t, st.Apply(ctx, store.Batch{Topic: topic, Partition: 0, Generation: gen, NextOffset: int64(j),
			Events: envs[i:j], Raw: raws[i:j]}))
	}
	// Before the hub starts: the request is projected (the API can find
	// the execution), two more events are in the topic only.
	produce(0, 3)
	apply(0, 1)

	tokens, err := api.ParseTokens("test-token-123:u:admin")
	require.NoError(t, err)
	hub := api.NewHub(kc, st, 0, testenv.Logger(t))
	go func() { _ = hub.Run(ctx) }()
	srv := api.NewServer(api.Config{Store: st, Topics: kc.Topics(), Tokens: tokens, Hub: hub, Log: testenv.Logger(t)})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close()

	watch := func() chan []uint64 {
		got := make(chan []uint64, 1)
		go func() {
			var seqs []uint64
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			_ = client.New(hs.URL, "test-token-123").Watch(wctx, "ds_late", 0, func(m client.Message) error {
				seqs = append(seqs, m.Seq)
				return nil
			})
			got <- seqs
		}()
		return got
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	first := watch()
	require.Eventually(t, func() bool { return hub.Subscribers("ds_late") == 1 }, 20*time.Second, 10*time.Millisecond)
	// Live: the hub sees the rest long before the projector applies it.
	produce(3, n)
	apply(1, n/2)
	apply(n/2, n)
	select {
	case seqs := <-first:
		require.Equal(t, want, seqs)
	case <-time.After(70 * time.Second):
		t.Fatal("the feed never delivered every event")
	}
	select {
	case seqs := <-watch():
		require.Equal(t, want, seqs, "a late subscriber gets the whole feed")
	case <-time.After(70 * time.Second):
		t.Fatal("the late feed never ended")
	}
}
