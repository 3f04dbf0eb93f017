package processor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/wire"
)

// TestGatheredRecordsComeBackInSourceOrder: records of two sources spread
// over three partitions in runs, each partition's file in its own order,
// come back source by source and within a source by sequence number, with
// kind, position, offset and value intact, on every pass.
func TestGatheredRecordsComeBackInSourceOrder(t *testing.T) {
	g := &gathered{dir: t.TempDir(), files: make([][]*gatherFile, 3)}
	for s := range g.files {
		g.files[s] = make([]*gatherFile, 3)
	}
	// Source s's record n sits in partition (n-1)/2 % 3: runs of two.
	var want []string
	for s := 0; s < 2; s++ {
		for n := int64(1); n <= 13; n++ {
			want = append(want, fmt.Sprintf("%d/%d", s, n))
		}
	}
	put := func(s int, n int64) {
		q := int((n - 1) / 2 % 3)
		f, err := g.file(s, q)
		require.NoError(t, err)
		kind := wire.KindStaged
		if n%5 == 0 {
			kind = wire.KindRejected
		}
		m := wire.Meta{Kind: kind, Source: s, Position: 100 + n, Seq: n}
		prep := []kgo.RecordHeader{{Key: "k", Value: []byte("x")}, {Key: preparedHeader + "fusion", Value: []byte(fmt.Sprintf("sig %d/%d", s, n))}}
		_, err = f.w.Write(appendFrame(nil, byte(kindCode(kind)), m, 1000*int64(s)+n, []byte(fmt.Sprintf("%d/%d", s, n)), prep))
		require.NoError(t, err)
	}
	// Written source 1 first and interleaved, as partitions hold them.
	for n := int64(1); n <= 13; n++ {
		put(1, n)
		put(0, n)
	}
	for _, fs := range g.files {
		for _, f := range fs {
			if f != nil {
				require.NoError(t, f.w.Flush())
			}
		}
	}
	defer g.remove()
	for pass := 0; pass < 2; pass++ {
		var got []string
		require.NoError(t, g.each(func(r *gatheredRecord) error {
			got = append(got, string(r.value))
			require.Equal(t, 100+r.m.Seq, r.m.Position)
			require.Equal(t, 1000*int64(r.m.Source)+r.m.Seq, r.offset)
			require.Equal(t, r.m.Seq%5 == 0, r.m.Kind == wire.KindRejected)
			require.Equal(t, "sig "+string(r.value), string(preparedIn(r.prepared, "fusion")), "the prepared value travels with its record")
			require.Nil(t, preparedIn(r.prepared, "balancing"))
			return nil
		}))
		require.Equal(t, want, got, "pass %d", pass)
	}
}

// TestGatherRemovesACrashedAttemptsFiles: the files a killed output stage
// left for its execution are removed by the next attempt, whether or not it
// gets further, and another execution's are left alone.
func TestGatherRemovesACrashedAttemptsFiles(t *testing.T) {
	root := t.TempDir()
	x := testExec(events.Request{Sources: []events.SourceSpec{{Type: "local"}}})
	mine, other := filepath.Join(root, ".gather-"+x.id+"-1"), filepath.Join(root, ".gather-ds_other-1")
	for _, d := range []string{mine, other} {
		require.NoError(t, os.MkdirAll(d, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(d, "part-1"), []byte("sealed"), 0o600))
	}
	p := &Processor{cfg: Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the attempt fails at once, reading the topic
	_, err := p.gather(ctx, x, root, 1)
	require.Error(t, err)
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, ents, 1, "only the other execution's files are left")
	require.Equal(t, filepath.Base(other), ents[0].Name())
}
