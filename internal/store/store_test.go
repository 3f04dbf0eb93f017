package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/testenv"
)

func chain(t *testing.T, id string, ps ...events.Payload) ([]events.Envelope, [][]byte) {
	var c events.Chain
	var envs []events.Envelope
	var raws [][]byte
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, p := range ps {
		e, err := events.New("test", id, at.Add(time.Duration(i)*time.Second), p)
		require.NoError(t, err)
		c.Seal(&e)
		b, err := events.Encode(e)
		require.NoError(t, err)
		envs = append(envs, e)
		raws = append(raws, b)
	}
	return envs, raws
}

func TestApplyIsIdempotentAndFencesStaleWriters(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	ctx := context.Background()
	envs, raws := chain(t, "ds_a",
		events.ExecutionRequested{UserID: "u", Request: events.Request{Sources: []events.SourceSpec{{Type: "local"}}}},
		events.ExecutionStarted{},
		events.StageStarted{Stage: events.StageValidation},
		events.StageProgress{Stage: events.StageValidation, Counts: events.Counts{Received: 5, Valid: 4, Rejected: 1}},
	)
	gen1, next, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	require.Zero(t, next)
	require.NoError(t, st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen1, NextOffset: 4, Events: envs, Raw: raws}))
	// Replaying the same events changes nothing.
	before, err := st.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen1, NextOffset: 4, Events: envs, Raw: raws}))
	after, err := st.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	x, err := st.Execution(ctx, "ds_a")
	require.NoError(t, err)
	require.Equal(t, "running", x.Status)
	require.EqualValues(t, 4, x.Valid)

	// A new owner claims the partition; the old one is fenced.
	gen2, next, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	require.Greater(t, gen2, gen1)
	require.EqualValues(t, 4, next)
	more, moreRaw := chain(t, "ds_b", events.ExecutionRequested{UserID: "u"})
	err = st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen1, NextOffset: 5, Events: more, Raw: moreRaw})
	require.ErrorIs(t, err, store.ErrFenced)
	_, err = st.Execution(ctx, "ds_b")
	require.ErrorIs(t, err, store.ErrNotFound, "a fenced write leaves nothing behind")
}

func TestApplyRejectsABrokenChain(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	ctx := context.Background()
	envs, raws := chain(t, "ds_c", events.ExecutionRequested{UserID: "u"}, events.ExecutionStarted{})
	envs[1].Data = []byte(`{"staged_offset":99}`) // tampered after hashing
	gen, _, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	err = st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen, NextOffset: 2, Events: envs, Raw: raws})
	require.ErrorIs(t, err, events.ErrBrokenChain)
}

// TestRequestWithNULIsProjected: jsonb refuses NUL characters; an event whose
// request holds one is still projected (with U+FFFD) instead of stalling
// every projection behind it.
func TestRequestWithNULIsProjected(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	ctx := context.Background()
	envs, raws := chain(t, "ds_nul", events.ExecutionRequested{UserID: "u", Request: events.Request{
		Sources: []events.SourceSpec{{Type: "local", Config: map[string]string{"path": "a", "\x00k": "v\x00"}}}}})
	gen, _, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	require.NoError(t, st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen, NextOffset: 1, Events: envs, Raw: raws}))
	x, err := st.Execution(ctx, "ds_nul")
	require.NoError(t, err)
	require.Contains(t, string(x.Request), "\ufffd", "the NUL became U+FFFD")
}

// TestDatasetCostsAreMeasuredFromCompletedExecutions: the dataset stages'
// time as a share of the record stages', the median of the latest
// completed executions, with and without fusion; nothing until three
// executions give a figure.
func TestDatasetCostsAreMeasuredFromCompletedExecutions(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Schema(t)
	ctx := context.Background()
	gen, _, err := st.Claim(ctx, "ev", 0)
	require.NoError(t, err)
	var offset int64
	run := func(id string, fusion bool, records, dataset, fusionPart time.Duration) {
		t.Helper()
		var c events.Chain
		var envs []events.Envelope
		var raws [][]byte
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		add := func(d time.Duration, p events.Payload) {
			e, err := events.New("test", id, at.Add(d), p)
			require.NoError(t, err)
			c.Seal(&e)
			b, err := events.Encode(e)
			require.NoError(t, err)
			envs, raws = append(envs, e), append(raws, b)
		}
		add(0, events.ExecutionRequested{UserID: "u", Request: events.Request{Sources: []events.SourceSpec{{Type: "local"}}}})
		add(0, events.ExecutionStarted{})
		add(0, events.StageStarted{Stage: events.StageAcquisition})
		add(records, events.StageCompleted{Stage: events.StageAcquisition, DurationMS: records.Milliseconds()})
		if fusion {
			add(records, events.StageStarted{Stage: events.StageFusion})
		}
		add(records, events.StageStarted{Stage: events.StageOutput})
		if fusion {
			add(records+dataset, events.StageCompleted{Stage: events.StageFusion, DurationMS: fusionPart.Milliseconds()})
		}
		add(records+dataset, events.StageCompleted{Stage: events.StageOutput, DurationMS: dataset.Milliseconds()})
		add(records+dataset, events.ExecutionCompleted{})
		offset += int64(len(envs))
		require.NoError(t, st.Apply(ctx, store.Batch{Topic: "ev", Partition: 0, Generation: gen, NextOffset: offset, Events: envs, Raw: raws}))
	}
	run("ds_f1", true, 10*time.Second, 6*time.Second, 3*time.Second)
	run("ds_f2", true, 20*time.Second, 10*time.Second, 4*time.Second)
	run("ds_o1", false, 10*time.Second, 3*time.Second, 0)
	c, err := st.DatasetCosts(ctx)
	require.NoError(t, err)
	require.Equal(t, store.DatasetCosts{}, c, "two executions are not enough to say")
	run("ds_f3", true, 10*time.Second, 9*time.Second, 6*time.Second)
	run("ds_o2", false, 10*time.Second, 2*time.Second, 0)
	run("ds_o3", false, 100*time.Second, 40*time.Second, 0)
	c, err = st.DatasetCosts(ctx)
	require.NoError(t, err)
	require.InDelta(t, 0.6, c.WithFusion, 1e-9)  // 0.6, 0.5, 0.9
	require.InDelta(t, 0.5, c.FusionShare, 1e-9) // 0.5, 0.4, 0.667
	require.InDelta(t, 0.3, c.OutputOnly, 1e-9)  // 0.3, 0.2, 0.4
}

// TestReadsOutliveAConnectionTheDatabaseEnded: the pool pings only
// connections idle for more than a second, so right after the database
// ends its backends (pg_terminate_backend, a restart) it hands out a dead
// one. The API's reads (an execution, its events) then take a fresh
// connection instead of failing: a feed's dial must not be refused for as
// long as connections keep being ended.
func TestReadsOutliveAConnectionTheDatabaseEnded(t *testing.T) {
	t.Parallel()
	st, schema := testenv.Schema(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, testenv.DatabaseURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	for range 5 {
		// Fill the pool with idle connections, then end them all.
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = st.EventsSince(ctx, "ds_none", 0, 10) }()
		}
		wg.Wait()
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
			"dspipe-"+schema).Scan(&n))
		require.Positive(t, n)
		time.Sleep(20 * time.Millisecond)
		_, err := st.Execution(ctx, "ds_none")
		require.ErrorIs(t, err, store.ErrNotFound, "a read on an ended connection is read again on a live one")
		_, err = st.EventsSince(ctx, "ds_none", 0, 10)
		require.NoError(t, err)
	}
}
