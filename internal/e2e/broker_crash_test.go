package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBrokerCrashTransactionRecovery: a transaction open when the broker
// is SIGKILLed is aborted on restart, and the same producer's transactions
// committed after the restart are all visible to read_committed consumers.
//
// kfake alone fails this: it aborts such a transaction on restart by
// recording the aborted range but writes no abort marker into the log. A
// read_committed consumer (franz-go, like Kafka's Java client) hides every
// transactional batch of an aborted producer ID from the range's first
// offset until it reads an abort marker, and commit markers do not end
// that. A producer that comes back under the same transactional ID keeps
// its producer ID, so its committed records were hidden: this is what lost
// contiguous runs of raw records when the broker was killed during
// acquisition. kafka.StartEmbedded now writes the missing markers after an
// unclean stop, as a real Kafka coordinator does during recovery.
func TestBrokerCrashTransactionRecovery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sameTxID bool
		want     int
	}{
		{"the same transactional ID after the crash", true, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			c := &cluster{t: t, dir: dir, procs: map[string]*proc{}}
			// -sync: what the broker acknowledged is on disk when it is
			// killed, so the open transaction is there to be repaired
			// (without it kfake's buffers may lose the last batches, and the
			// test would depend on timing).
			args := []string{"broker", "-port", strconv.Itoa(port), "-data-dir", filepath.Join(dir, "broker"), "-sync"}
			c.start("broker", args...)
			t.Cleanup(func() { c.stop("broker", syscall.SIGTERM) })
			waitPort(t, port)
			seed := kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(port))
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()

			adm, err := kgo.NewClient(seed)
			require.NoError(t, err)
			_, err = kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, "x")
			require.NoError(t, err)
			adm.Close()

			produce := func(txid string, from int, commit bool) {
				cl, err := kgo.NewClient(seed, kgo.TransactionalID(txid), kgo.DefaultProduceTopic("x"),
					kgo.RecordRetries(100), kgo.RetryTimeout(30*time.Second))
				require.NoError(t, err)
				defer cl.Close()
				require.Eventually(t, func() bool {
					if err := cl.BeginTransaction(); err != nil {
						return false
					}
					for i := from; i < from+10; i++ {
						if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
							_ = cl.EndTransaction(ctx, kgo.TryAbort)
							return false
						}
					}
					if !commit {
						return true
					}
					return cl.EndTransaction(ctx, kgo.TryCommit) == nil
				}, 60*time.Second, 200*time.Millisecond)
			}
			produce("t", 0, true)    // committed before the crash
			produce("t", 100, false) // open when the broker dies
			c.stop("broker", syscall.SIGKILL)
			c.start("broker", args...)
			waitPort(t, port)
			log, err := os.ReadFile(c.procs["broker"].log)
			require.NoError(t, err)
			require.Contains(t, string(log), "closed 1 open transactions with abort markers")
			txid := "t"
			if !tc.sameTxID {
				txid = "t-2"
			}
			produce(txid, 200, true) // committed after the restart

			cons, err := kgo.NewClient(seed, kgo.ConsumeTopics("x"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			require.NoError(t, err)
			defer cons.Close()
			// The log: 0-9 committed, 10 its marker, 11-20 the open
			// transaction, 21 the repair's abort marker, 22-31 committed
			// after the restart, 32 its marker.
			var got []string
			var last int64 = -1
			for last < 31 {
				fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
				fs := cons.PollFetches(fctx)
				fcancel()
				if fctx.Err() != nil && fs.NumRecords() == 0 {
					break
				}
				fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)); last = r.Offset })
			}
			t.Logf("read_committed sees %d records: %v", len(got), got)
			require.Len(t, got, tc.want)
		})
	}
}
