package kafka

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRecordsSpreadFromTheirHome: on the raw and staged topics a record
// with a sequence number goes to its key's partition plus the spread of
// the number, runs of SpreadChunk to a partition, and lands there again
// when the same record is produced a second time (a retried chunk); a
// record without one (a marker), and every record of the other topics,
// goes to its key's partition.
func TestRecordsSpreadFromTheirHome(t *testing.T) {
	const parts = 4
	ctx, kc := withTopics(t, parts)
	cl, err := kc.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const id = "ds_1_abc"
	home := int(HomePartition(id, parts))
	seqRecord := func(topic string, seq int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(id), Headers: []kgo.RecordHeader{{Key: SeqHeader, Value: strconv.AppendInt(nil, seq, 10)}}}
	}
	for _, topic := range []string{kc.Topics().Raw, kc.Topics().Staged} {
		var recs []*kgo.Record
		for _, seq := range []int64{1, SpreadChunk, SpreadChunk + 1, 2*SpreadChunk + 1, 4*SpreadChunk + 1} {
			recs = append(recs, seqRecord(topic, seq))
		}
		for round := 0; round < 2; round++ { // the second round produces the same records again
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want := []int{home, home, (home + 1) % parts, (home + 2) % parts, home}
			for i, r := range recs {
				if int(r.Partition) != want[i] {
					t.Fatalf("%s round %d: record %d went to partition %d, want %d", topic, round, i, r.Partition, want[i])
				}
			}
		}
		marker := &kgo.Record{Topic: topic, Key: []byte(id)}
		if err := cl.ProduceSync(ctx, marker).FirstErr(); err != nil || int(marker.Partition) != home {
			t.Fatalf("%s: a marker went to %d (%v), want the home partition %d", topic, marker.Partition, err, home)
		}
	}
	other := seqRecord(kc.Topics().Events, 3*SpreadChunk)
	if err := cl.ProduceSync(ctx, other).FirstErr(); err != nil || int(other.Partition) != home {
		t.Fatalf("an event went to %d (%v), want the home partition %d", other.Partition, err, home)
	}
}
