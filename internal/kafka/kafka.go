// Package kafka wires franz-go for every service: topic names and creation
// with kadm, client construction, the embedded kfake broker used when
// KAFKA_BROKERS is unset, and reading a partition up to its last stable
// offset (how the processor and ingest rebuild their state from the log).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/internal/clock"
)

// Topics names every topic the services exchange. All topics are keyed by
// execution id and share one partition count, so partition i of each topic
// holds the same executions: the execution's home, where one processor
// keeps its state and events. Its records alone are spread (Spread): a
// record with sequence number n goes to partition home + n/SpreadChunk of
// the raw and staged topics, so every processor of the group works on
// every execution.
type Topics struct {
	Commands string
	Events   string
	Raw      string
	Staged   string
	// Outcomes carries what the record stages made of each record (sealed,
	// no text) from the processor that ran them to the execution's home.
	Outcomes    string
	Checkpoints string
	// Snapshots holds each processor partition's state, keyed by
	// partition, so a restart replays only the events after the latest.
	Snapshots string
	// Access is the access audit: one hash chain per API instance run,
	// keyed by the chain's id.
	Access string
}

// TopicNames returns the topic names under a prefix ("" for the defaults).
func TopicNames(prefix string) Topics {
	return Topics{
		Commands:    prefix + "dataset.commands",
		Events:      prefix + "dataset.events",
		Raw:         prefix + "dataset.records.raw",
		Staged:      prefix + "dataset.records.staged",
		Outcomes:    prefix + "dataset.records.outcomes",
		Checkpoints: prefix + "dataset.ingest.checkpoints",
		Snapshots:   prefix + "dataset.processor.snapshots",
		Access:      prefix + "dataset.access",
	}
}

// Config is the Kafka part of every binary's configuration.
type Config struct {
	Brokers     []string
	Partitions  int32
	Replication int16
	TopicPrefix string
	// Compression of produced batches: none, snappy (default), lz4 or zstd.
	Compression string
	// RecordRetention is how long the record topics (raw, staged and
	// outcomes, which hold conversation text or what was found in it) keep their records
	// (DSPIPE_RECORD_RETENTION_HOURS, 168); the event and access topics
	// are the audit trail and are kept for ever.
	RecordRetention time.Duration
	// Metrics, when set, collects the client metrics of the clients made
	// with Metered (not from the environment: the service sets it).
	Metrics *ClientMetrics
	// Member, when set, follows the consumer group clients for readiness
	// (set by the service, like Metrics).
	Member *Member
}

// Name prefixes a consumer group or transactional id with TopicPrefix, so
// deployments sharing a cluster under different prefixes never join each
// other's groups or fence each other's transactions.
func (c Config) Name(id string) string { return c.TopicPrefix + id }

// codec returns the producer compression codecs for c.Compression.
func (c Config) codec() kgo.CompressionCodec {
	switch c.Compression {
	case "none":
		return kgo.NoCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.SnappyCompression()
}

// ProducerOpts are the options every producing client shares.
func (c Config) ProducerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerBatchCompression(c.codec(), kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes + 64<<10),
		// Keys hash with murmur2 like Java clients, so partition i of every
		// topic holds the same executions. A snapshot goes to the partition
		// it describes; records of the raw and staged topics are spread.
		kgo.RecordPartitioner(partitioner{keyed: kgo.StickyKeyPartitioner(nil), manual: c.Topics().Snapshots,
			spread: [2]string{c.Topics().Raw, c.Topics().Staged}}),
	}
}

// partitioner hashes keys, except on the topic whose records name their
// partition and on the topics whose records are spread.
type partitioner struct {
	keyed  kgo.Partitioner
	manual string
	spread [2]string
}

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	switch t {
	case p.manual:
		return kgo.ManualPartitioner().ForTopic(t)
	case p.spread[0], p.spread[1]:
		return spreadPartitioner{p.keyed.ForTopic(t)}
	}
	return p.keyed.ForTopic(t)
}

// SpreadChunk is how many consecutive records of a source go to one
// partition before the next: runs long enough to batch well, short enough
// that a large execution's records share out evenly.
const SpreadChunk = 128

// SeqHeader is the record header holding a record's sequence number within
// its source (decimal). On the raw and staged topics a record carrying it
// goes to its key's partition plus Spread of it; one without it (a
// marker) stays at its key's partition. The partition follows from the
// record alone, so a retried produce lands where the first attempt did.
const SeqHeader = "n"

// Spread is the partition offset, from the execution's home partition, of
// a source's record with sequence number seq (1-based).
func Spread(seq int64, n int) int {
	if seq < 1 || n < 1 {
		return 0
	}
	return int(((seq - 1) / SpreadChunk) % int64(n))
}

// spreadPartitioner places a record at its key's partition plus the
// Spread of its sequence number.
type spreadPartitioner struct{ keyed kgo.TopicPartitioner }

func (s spreadPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (s spreadPartitioner) Partition(r *kgo.Record, n int) int {
	home := s.keyed.Partition(r, n)
	for _, h := range r.Headers {
		if h.Key == SeqHeader {
			seq, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return home
			}
			return (home + Spread(seq, n)) % n
		}
	}
	return home
}

// HomePartition is the partition an execution's keyed records go to among
// n: its commands, events, outcomes and markers.
func HomePartition(id string, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: []byte(id)}, n))
}

// DefaultPartitions is the partition count of the topics the services
// create: a multiple of 1, 2, 3 and 6, so that many processor instances
// share one execution's records evenly (range assignment).
const DefaultPartitions = 6

// ConfigFromEnv reads KAFKA_BROKERS, KAFKA_PARTITIONS, KAFKA_REPLICATION and
// KAFKA_TOPIC_PREFIX.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Partitions: DefaultPartitions, Replication: 1, TopicPrefix: getenv("KAFKA_TOPIC_PREFIX"), Compression: getenv("KAFKA_COMPRESSION"),
		RecordRetention: 7 * 24 * time.Hour}
	var errs []error
	if v := getenv("DSPIPE_RECORD_RETENTION_HOURS"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 24*365 {
			errs = append(errs, fmt.Errorf("DSPIPE_RECORD_RETENTION_HOURS must be an integer between 1 and 8760, got %q", v))
		} else {
			c.RecordRetention = time.Duration(n) * time.Hour
		}
	}
	switch c.Compression {
	case "", "none", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("KAFKA_COMPRESSION must be none, snappy, lz4 or zstd, got %q", c.Compression))
	}
	if b := strings.TrimSpace(getenv("KAFKA_BROKERS")); b != "" {
		for _, s := range strings.Split(b, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.Brokers = append(c.Brokers, s)
			}
		}
	}
	if v := getenv("KAFKA_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 1024 {
			errs = append(errs, fmt.Errorf("KAFKA_PARTITIONS must be an integer between 1 and 1024, got %q", v))
		} else {
			c.Partitions = int32(n)
		}
	}
	if v := getenv("KAFKA_REPLICATION"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 32 {
			errs = append(errs, fmt.Errorf("KAFKA_REPLICATION must be an integer between 1 and 32, got %q", v))
		} else {
			c.Replication = int16(n)
		}
	}
	return c, errors.Join(errs...)
}

// Topics returns this configuration's topic names.
func (c Config) Topics() Topics { return TopicNames(c.TopicPrefix) }

// MaxRecordBytes bounds one Kafka record; larger input records are rejected
// at acquisition with a reason instead of being sent.
const MaxRecordBytes = 4 << 20

// Client builds a franz-go client for the configured brokers.
func (c Config) Client(opts ...kgo.Opt) (*kgo.Client, error) {
	base := append(c.ProducerOpts(),
		kgo.SeedBrokers(c.Brokers...),
		// Bounded buffers keep every client's memory small whatever the
		// dataset size: fetches and unacknowledged produces are capped.
		kgo.FetchMaxBytes(8<<20),
		kgo.FetchMaxPartitionBytes(4<<20),
		kgo.MaxBufferedBytes(16<<20),
		kgo.MaxConcurrentFetches(2),
	)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client: %w", err)
	}
	return cl, nil
}

// EnsureTopics creates the topics if they do not exist; the checkpoint topic
// is compacted. It waits until the brokers answer.
func (c Config) EnsureTopics(ctx context.Context) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := c.Topics()
	// Batches may reach MaxRecordBytes plus overhead; brokers default to
	// 1 MB per batch, which would refuse incompressible large records.
	maxMsg := strconv.Itoa(TopicMaxMessageBytes)
	plain := map[string]*string{"max.message.bytes": &maxMsg}
	// The compacted topics roll a segment every hour: the log cleaner never
	// touches the active segment, and with the default week-long segment a
	// reader of the latest value per key would read every value written.
	policy, roll := "compact", strconv.FormatInt(time.Hour.Milliseconds(), 10)
	compact := map[string]*string{"max.message.bytes": &maxMsg, "cleanup.policy": &policy, "segment.ms": &roll}
	// The event log and the access log are the audit trail: never deleted
	// by age or size (Kafka's default would drop them after 7 days).
	never := "-1"
	forever := map[string]*string{"max.message.bytes": &maxMsg, "retention.ms": &never, "retention.bytes": &never}
	retention := c.RecordRetention
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	recMS := strconv.FormatInt(retention.Milliseconds(), 10)
	records := map[string]*string{"max.message.bytes": &maxMsg, "retention.ms": &recMS}
	var resps kadm.CreateTopicResponses
	var err2 error
	for attempt := 0; ; attempt++ {
		resps, err2 = adm.CreateTopics(ctx, c.Partitions, c.Replication, plain, t.Commands)
		if err2 == nil {
			break
		}
		if ctx.Err() != nil || attempt > 50 {
			return fmt.Errorf("kafka: create topics: %w", err2)
		}
		if err := clock.Sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("kafka: create topics: %w", err)
		}
	}
	cresps, err := adm.CreateTopics(ctx, c.Partitions, c.Replication, compact, t.Checkpoints, t.Snapshots)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	fresps, err := adm.CreateTopics(ctx, c.Partitions, c.Replication, forever, t.Events, t.Access)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	rresps, err := adm.CreateTopics(ctx, c.Partitions, c.Replication, records, t.Raw, t.Staged, t.Outcomes)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	for _, rs := range []kadm.CreateTopicResponses{resps, cresps, fresps, rresps} {
		for _, r := range rs {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("kafka: create topic %s: %w", r.Topic, r.Err)
			}
		}
	}
	// Topics created by an older version get the limit too.
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &maxMsg}}
	if _, err := adm.AlterTopicConfigs(ctx, alter, t.Commands, t.Events, t.Raw, t.Staged, t.Outcomes, t.Checkpoints, t.Snapshots, t.Access); err != nil {
		return fmt.Errorf("kafka: set max.message.bytes: %w", err)
	}
	rolling := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: &roll}}
	if _, err := adm.AlterTopicConfigs(ctx, rolling, t.Checkpoints, t.Snapshots); err != nil {
		return fmt.Errorf("kafka: set the compacted topics' segment.ms: %w", err)
	}
	keep := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &never}, {Op: kadm.SetConfig, Name: "retention.bytes", Value: &never}}
	if _, err := adm.AlterTopicConfigs(ctx, keep, t.Events, t.Access); err != nil {
		return fmt.Errorf("kafka: keep the audit topics for ever: %w", err)
	}
	expire := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &recMS}}
	if _, err := adm.AlterTopicConfigs(ctx, expire, t.Raw, t.Staged, t.Outcomes); err != nil {
		return fmt.Errorf("kafka: set the record topics' retention: %w", err)
	}
	return nil
}

// TopicMaxMessageBytes is the batch size limit set on every topic.
const TopicMaxMessageBytes = 8 << 20

// EndOffset returns the last stable offset of one partition: every record
// below it is committed or aborted.
func EndOffset(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	offs, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: list offsets %s: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("kafka: list offsets %s[%d]: partition not found", topic, partition)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("kafka: list offsets %s[%d]: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// EndOffsets returns the last stable offset of every partition of a topic,
// by partition number.
func EndOffsets(ctx context.Context, cl *kgo.Client, topic string) ([]int64, error) {
	offs, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: list offsets %s: %w", topic, err)
	}
	ps := offs[topic]
	out := make([]int64, len(ps))
	for part, o := range ps {
		if o.Err != nil {
			return nil, fmt.Errorf("kafka: list offsets %s[%d]: %w", topic, part, o.Err)
		}
		if int(part) >= len(out) {
			return nil, fmt.Errorf("kafka: list offsets %s: partition %d of %d", topic, part, len(out))
		}
		out[part] = o.Offset
	}
	return out, nil
}

// ReadPartition calls fn for every committed record of one partition from
// offset from up to the partition's last stable offset at the time of the
// call. Control records are kept internally so the end is detected even when
// the log ends with a transaction marker.
func (c Config) ReadPartition(ctx context.Context, topic string, partition int32, from int64, fn func(*kgo.Record) error) error {
	_, err := c.ReadPartitionUpTo(ctx, topic, partition, from, fn)
	return err
}

// ReadPartitionUpTo is ReadPartition that also returns the offset it read
// up to, where a later read goes on.
func (c Config) ReadPartitionUpTo(ctx context.Context, topic string, partition int32, from int64, fn func(*kgo.Record) error) (int64, error) {
	end, err := c.readRange(ctx, topic, partition, kgo.NewOffset().At(from), func(int64) int64 { return from }, fn)
	return max(end, from), err
}

// readRange reads one partition from start up to the last stable offset
// it finds when it begins, which it returns, and calls fn for every
// committed record. first gives, from that end, the offset start stands
// for, so an empty range returns at once instead of waiting for records.
func (c Config) readRange(ctx context.Context, topic string, partition int32, start kgo.Offset, first func(end int64) int64,
	fn func(*kgo.Record) error) (int64, error) {
	cl, err := c.Client(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: start}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	end, err := EndOffset(ctx, cl, topic, partition)
	if err != nil || first(end) >= end {
		return end, err
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return end, err
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return end, fmt.Errorf("kafka: read %s[%d]: %w", topic, partition, fetchErr)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if r.Offset >= end {
				return end, nil
			}
			if !r.Attrs.IsControl() {
				if err := fn(r); err != nil {
					return end, err
				}
			}
			if r.Offset >= end-1 {
				return end, nil
			}
		}
	}
}

// ReadLast returns the last committed record of one partition, or nil when
// it has none. It reads back from the end in a growing window, so its cost
// follows the size of the latest records, not the partition's history.
func (c Config) ReadLast(ctx context.Context, topic string, partition int32) (*kgo.Record, error) {
	for back := int64(16); ; back *= 8 {
		last, whole, err := c.readTail(ctx, topic, partition, back)
		if err != nil || last != nil || whole {
			return last, err
		}
	}
}

// readTail reads the last back offsets of a partition and returns the
// last committed record among them, and whether they were the whole
// partition.
func (c Config) readTail(ctx context.Context, topic string, partition int32, back int64) (*kgo.Record, bool, error) {
	var last *kgo.Record
	end, err := c.readRange(ctx, topic, partition, kgo.NewOffset().AtEnd().Relative(-back),
		func(end int64) int64 { return max(end-back, 0) }, func(r *kgo.Record) error { last = r; return nil })
	return last, end <= back, err
}
