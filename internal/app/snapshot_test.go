package app_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/processor"
)

// TestRestartReplaysOnlyTheEventsAfterTheSnapshot: a partition rebuilt
// from its latest snapshot and the events after it equals the partition
// replayed from offset 0, and the events a restart replays stay bounded
// while the log grows; a new processor on the same log then runs an
// execution to the end.
func TestRestartReplaysOnlyTheEventsAfterTheSnapshot(t *testing.T) {
	t.Parallel()
	const partitions, every = 2, 30
	s := startStack(t, stackOpts{partitions: partitions, env: map[string]string{"DSPIPE_SNAPSHOT_EVERY": "30"}})
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(s.data, "in"), Records: 300, Sources: 1, Format: "chatml", Seed: 3})
	require.NoError(t, err)
	ctx := context.Background()

	// rebuild compares both rebuilds of every partition and returns the
	// events in the log and the events a restart replays.
	rebuild := func() (logged, replayed int) {
		for p := int32(0); p < partitions; p++ {
			full, n, err := processor.Recover(ctx, s.cfg.Kafka, p, false)
			require.NoError(t, err)
			snap, m, err := processor.Recover(ctx, s.cfg.Kafka, p, true)
			require.NoError(t, err)
			a, _ := json.Marshal(full)
			b, _ := json.Marshal(snap)
			require.JSONEq(t, string(a), string(b), "partition %d: the snapshot and the events after it say what the whole log says", p)
			logged, replayed = logged+n, replayed+m
			// At most the events of the transactions since the last
			// snapshot: under the limit, plus one transaction's events.
			require.Less(t, m, every+64, "partition %d replays %d events", p, m)
		}
		return logged, replayed
	}

	var ids []string
	for range 3 {
		id, _ := s.run(t, localRequest(sum.Files...))
		ids = append(ids, id)
	}
	logged1, replayed1 := rebuild()
	for range 9 {
		id, _ := s.run(t, localRequest(sum.Files...))
		ids = append(ids, id)
	}
	logged2, replayed2 := rebuild()
	t.Logf("after 3 executions: %d events, a restart replays %d; after 12: %d events, %d replayed", logged1, replayed1, logged2, replayed2)
	require.Greater(t, logged2, 3*logged1, "the log grew")
	require.Less(t, replayed2, partitions*(every+64), "what a restart replays did not grow with the log")
	for _, id := range ids {
		s.waitStatus(t, id, "completed")
	}

	// A new deployment of the services on the same topics starts from the
	// snapshots and runs an execution through.
	s.stop(t)
	again := startStack(t, stackOpts{shared: s, partitions: partitions, env: map[string]string{"DSPIPE_SNAPSHOT_EVERY": "30"}})
	more, err := gen.Write(gen.Options{Dir: filepath.Join(again.data, "in"), Records: 300, Sources: 1, Format: "chatml", Seed: 4})
	require.NoError(t, err)
	id, _ := again.run(t, localRequest(more.Files...))
	x := again.waitStatus(t, id, "completed")
	require.EqualValues(t, 300, x.Valid)
}
