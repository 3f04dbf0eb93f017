package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/api"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
)

// sealed returns one execution's events, chained from seq 1, and their
// encodings.
func sealed(t *testing.T, id string, at time.Time, ps ...events.Payload) ([]events.Envelope, [][]byte) {
	t.Helper()
	var c events.Chain
	var envs []events.Envelope
	var raws [][]byte
	for _, p := range ps {
		e, err := events.New("test", id, at, p)
		require.NoError(t, err)
		c.Seal(&e)
		b, err := events.Encode(e)
		require.NoError(t, err)
		envs, raws = append(envs, e), append(raws, b)
	}
	return envs, raws
}

// TestFeedIsGapFreeWhateverTheProjectorLags runs a real hub on a broker
// while the projector (played by the test) lags far behind it: events that
// were in the topic before the hub started, events the hub has seen but no
// longer holds in memory, and events it still holds must all reach a
// subscriber once, in order, although none of them is projected when the
// client connects; and a late subscriber gets the whole feed again.
func TestFeedIsGapFreeWhateverTheProjectorLags(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	kc, _ := testenv.Kafka(t, 2)
	topic := kc.Topics().Events
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Events are written in transactions, as the processor writes them:
	// each commit leaves a control record in the partition, so the
	// offsets of events are not their positions.
	prod, err := kc.Client(kgo.TransactionalID(kc.Name("ws-test-producer")), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer prod.Close()

	const n = 600 // more than the hub keeps per execution
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	payloads := []events.Payload{events.ExecutionRequested{UserID: "u"}, events.ExecutionStarted{}}
	for i := 3; i < n; i++ {
		payloads = append(payloads, events.ProgressReported{Percent: float64(i) / n * 100})
	}
	envs, raws := sealed(t, "ds_late", at, append(payloads, events.ExecutionCompleted{})...)
	offsets := make([]int64, n)
	produce := func(i, j int) { // events i..j-1 in one transaction
		require.NoError(t, prod.BeginTransaction())
		for k := i; k < j; k++ {
			r, err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("ds_late"), Value: raws[k]}).First()
			require.NoError(t, err)
			offsets[k] = r.Offset
		}
		require.NoError(t, prod.EndTransaction(ctx, kgo.TryCommit))
	}
	gen, _, err := st.Claim(ctx, topic, 0)
	require.NoError(t, err)
	apply := func(i, j int) { // what the projector stores: the offset after the last event applied
		require.NoError(t, st.Apply(ctx, store.Batch{Topic: topic, Partition: 0, Generation: gen, NextOffset: offsets[j-1] + 1,
			Events: envs[i:j], Raw: raws[i:j]}))
	}
	// Before the hub starts: the request is projected (the API can find
	// the execution), two more events are in the topic only.
	produce(0, 3)
	apply(0, 1)

	// Another execution, finished and wholly projected before the hub
	// starts, alone on the other partition: it ends with a transaction's
	// control record, past the projector's last applied event.
	quietEnvs, quiet := sealed(t, "ds_quiet", at, events.ExecutionRequested{UserID: "u"}, events.ExecutionStarted{}, events.ExecutionCompleted{})
	require.NoError(t, prod.BeginTransaction())
	var lastQuiet int64
	for _, b := range quiet {
		r, err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 1, Key: []byte("ds_quiet"), Value: b}).First()
		require.NoError(t, err)
		lastQuiet = r.Offset
	}
	require.NoError(t, prod.EndTransaction(ctx, kgo.TryCommit))
	gen1, _, err := st.Claim(ctx, topic, 1)
	require.NoError(t, err)
	require.NoError(t, st.Apply(ctx, store.Batch{Topic: topic, Partition: 1, Generation: gen1, NextOffset: lastQuiet + 1, Events: quietEnvs, Raw: quiet}))

	tokens, err := api.ParseTokens("test-token-123:u:admin")
	require.NoError(t, err)
	hub := api.NewHub(kc, st, 0, testenv.Logger(t))
	go func() { _ = hub.Run(ctx) }()
	srv := api.NewServer(api.Config{Store: st, Topics: kc.Topics(), Tokens: tokens, Hub: hub, Log: testenv.Logger(t)})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close()

	watch := func(id string) chan []uint64 {
		got := make(chan []uint64, 1)
		go func() {
			var seqs []uint64
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			_ = client.New(hs.URL, "test-token-123").Watch(wctx, id, 0, func(m client.Message) error {
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
	select {
	case seqs := <-watch("ds_quiet"):
		require.Equal(t, []uint64{1, 2, 3}, seqs, "a finished execution's feed is served at once")
	case <-time.After(30 * time.Second):
		t.Fatal("the feed of a finished execution never ended")
	}
	first := watch("ds_late")
	require.Eventually(t, func() bool { return hub.Subscribers("ds_late") == 1 }, 20*time.Second, 10*time.Millisecond)
	// Live: the hub sees the rest long before the projector applies it.
	produce(3, n/3)
	produce(n/3, n)
	apply(1, n/2)
	apply(n/2, n)
	select {
	case seqs := <-first:
		require.Equal(t, want, seqs)
	case <-time.After(70 * time.Second):
		t.Fatal("the feed never delivered every event")
	}
	select {
	case seqs := <-watch("ds_late"):
		require.Equal(t, want, seqs, "a late subscriber gets the whole feed")
	case <-time.After(70 * time.Second):
		t.Fatal("the late feed never ended")
	}
}

// TestFeedsBeyondTheCapAreRefusedWith429 holds one user's only allowed
// feed open and checks the next is refused with a 429 that says what to
// do, while another user still connects.
func TestFeedsBeyondTheCapAreRefusedWith429(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	ctx := context.Background()
	envs, raws := sealed(t, "ds_capped", time.Now(), events.ExecutionRequested{UserID: "u"})
	gen, _, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	require.NoError(t, st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen, NextOffset: 1, Events: envs, Raw: raws}))
	tokens, err := api.ParseTokens("alice-token-1:alice:admin,bobby-token-1:bobby:admin")
	require.NoError(t, err)
	hub := api.NewHub(kafka.Config{}, nil, 1, testenv.Logger(t)) // fed by hand: nothing live
	srv := api.NewServer(api.Config{Store: st, Topics: kafka.TopicNames(""), Tokens: tokens, Hub: hub, Log: testenv.Logger(t)})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close()

	first, err := client.New(hs.URL, "alice-token-1").Dial(ctx, "ds_capped", 0)
	require.NoError(t, err)
	defer first.CloseNow()
	require.Eventually(t, func() bool { return hub.Subscribers("ds_capped") == 1 }, 10*time.Second, 10*time.Millisecond)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/api/v1/datasets/ws/ds_capped", nil)
	req.Header.Set("Authorization", "Bearer alice-token-1")
	req.Header.Set("Upgrade", "websocket")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, string(body), "close a feed")
	other, err := client.New(hs.URL, "bobby-token-1").Dial(ctx, "ds_capped", 0)
	require.NoError(t, err, "the cap is per user")
	other.CloseNow()
}
