package kafka

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Embedded is the in-process kfake broker used when KAFKA_BROKERS is unset.
type Embedded struct {
	cluster *kfake.Cluster
	dataDir string
	// Repaired is how many open transactions were closed with an abort
	// marker because the previous broker stopped uncleanly.
	Repaired int
}

// cleanMark is written into the data directory when the broker stops
// cleanly and removed when it starts, so a start without it after data was
// written means the previous broker died (SIGKILL, power loss).
const cleanMark = "dspipe-clean-shutdown"

// StartEmbedded starts a single-node kfake cluster persisting to dataDir and
// listening on 127.0.0.1:port (0 picks a free port).
//
// After an unclean stop it first repairs the log (see RepairOpenTransactions)
// on a private port, so no client sees the log before the repair.
func StartEmbedded(dataDir string, port int) (*Embedded, error) {
	return StartEmbeddedSync(dataDir, port, false)
}

// StartEmbeddedSync is StartEmbedded with sync set: every produced batch
// is written and fsynced before it is acknowledged, so a SIGKILL loses
// nothing acknowledged (slower; dsctl broker -sync). Without it kfake
// writes through its own buffers, and the last acknowledged batches can be
// lost when the process is killed.
func StartEmbeddedSync(dataDir string, port int, sync bool) (*Embedded, error) {
	repaired := 0
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("kafka: embedded data dir: %w", err)
		}
		// The log holds record payloads: only this user may read it. kfake
		// creates its files with the process umask, so the process's
		// files are private from here on (outputs included), and files of
		// an older run are made so too.
		syscall.Umask(0o077)
		if err := privatise(dataDir); err != nil {
			return nil, fmt.Errorf("kafka: embedded data dir: %w", err)
		}
		_, metaErr := os.Stat(filepath.Join(dataDir, "meta.json"))
		_, cleanErr := os.Stat(filepath.Join(dataDir, cleanMark))
		if metaErr == nil && errors.Is(cleanErr, os.ErrNotExist) {
			var err error
			if repaired, err = repairDataDir(dataDir); err != nil {
				return nil, err
			}
		}
	}
	c, err := newCluster(dataDir, port, sync)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		if err := os.Remove(filepath.Join(dataDir, cleanMark)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.Close()
			return nil, fmt.Errorf("kafka: embedded data dir: %w", err)
		}
	}
	return &Embedded{cluster: c, dataDir: dataDir, Repaired: repaired}, nil
}

func newCluster(dataDir string, port int, sync bool) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.ClusterID("dspipe")}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
		if sync {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	return c, nil
}

func repairDataDir(dataDir string) (int, error) {
	c, err := newCluster(dataDir, 0, false)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := RepairOpenTransactions(ctx, c.ListenAddrs())
	if err != nil {
		return 0, fmt.Errorf("kafka: repair the embedded broker's log after an unclean stop: %w", err)
	}
	return n, nil
}

// privatise makes dir and everything below it readable by its owner only.
func privatise(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		return os.Chmod(p, mode)
	})
}

// Addrs are the broker addresses to give clients.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Cluster exposes the kfake cluster for fault injection in tests.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker, flushing its data directory, and marks the stop
// as clean.
func (e *Embedded) Close() {
	e.cluster.Close()
	if e.dataDir != "" {
		_ = os.WriteFile(filepath.Join(e.dataDir, cleanMark), nil, 0o600)
	}
}

// RepairOpenTransactions writes an abort marker for every transaction that
// has data in a partition but no commit or abort marker after it, and
// returns how many it wrote. It must run before any client produces.
//
// Why: when kfake restarts after a crash it treats such transactions as
// aborted but writes no marker. A read_committed consumer (franz-go, like
// Kafka's Java client) hides every transactional batch of an aborted
// producer ID from the aborted range's start until it reads an abort
// marker, and commit markers do not end that. A producer that comes back
// under the same transactional ID keeps its producer ID, so its next
// committed transactions would be hidden: records lost although their
// transaction committed. A real Kafka coordinator writes that marker while
// recovering; this does the same.
func RepairOpenTransactions(ctx context.Context, brokers []string) (int, error) {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return 0, err
	}
	type open struct {
		epoch int16
		open  bool
	}
	type tp struct {
		topic string
		part  int32
	}
	want := map[string]map[int32]kgo.Offset{}
	end := map[tp]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset <= 0 {
			return
		}
		if want[o.Topic] == nil {
			want[o.Topic] = map[int32]kgo.Offset{}
		}
		want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		end[tp{o.Topic, o.Partition}] = o.Offset
	})
	if err := ends.Error(); err != nil {
		return 0, err
	}
	if len(want) == 0 {
		return 0, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(want),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	state := map[tp]map[int64]*open{}
	done := map[tp]bool{}
	for len(done) < len(end) {
		// A compacted partition may not hold its last offset any more; a
		// poll that stays empty means everything has been read.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			break
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return 0, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			e, ok := end[k]
			if !ok || r.Offset >= e {
				return
			}
			if r.Attrs.IsTransactional() || r.Attrs.IsControl() {
				if state[k] == nil {
					state[k] = map[int64]*open{}
				}
				s := state[k][r.ProducerID]
				if s == nil {
					s = &open{}
					state[k][r.ProducerID] = s
				}
				s.open = !r.Attrs.IsControl()
				s.epoch = r.ProducerEpoch
			}
			if r.Offset >= e-1 {
				done[k] = true
			}
		})
	}
	var markers []kmsg.WriteTxnMarkersRequestMarker
	for k, pids := range state {
		for pid, s := range pids {
			if !s.open {
				continue
			}
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed = pid, s.epoch, false
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic, t.Partitions = k.topic, []int32{k.part}
			m.Topics = append(m.Topics, t)
			markers = append(markers, m)
		}
	}
	if len(markers) == 0 {
		return 0, nil
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Markers = markers
	resp, err := req.RequestWith(ctx, admCl)
	if err != nil {
		return 0, err
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return 0, fmt.Errorf("abort marker for %s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	}
	return len(markers), nil
}
