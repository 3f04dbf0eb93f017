package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReadLastFindsTheLatestCommittedRecord: the last committed record of
// a partition, past aborted transactions that follow it and however few or
// many records it has; nil for an empty partition.
func TestReadLastFindsTheLatestCommittedRecord(t *testing.T) {
	ctx, kc := withTopics(t, 2)
	topic := kc.Topics().Snapshots
	if r, err := kc.ReadLast(ctx, topic, 0); err != nil || r != nil {
		t.Fatalf("empty partition: %v, %v", r, err)
	}
	cl, err := kc.Client(kgo.TransactionalID("readlast-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	txn := func(commit bool, values ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	want := func(v string) {
		t.Helper()
		r, err := kc.ReadLast(ctx, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r == nil || string(r.Value) != v {
			t.Fatalf("last record %v, want %q", r, v)
		}
	}
	txn(true, "a")
	want("a")
	txn(true, "b", "c")
	want("c")
	var many []string
	for i := range 300 {
		many = append(many, fmt.Sprint("aborted-", i))
	}
	txn(false, many...)
	want("c")
	txn(true, "d")
	txn(false, "e")
	want("d")
	if r, err := kc.ReadLast(ctx, topic, 1); err != nil || r != nil {
		t.Fatalf("the other partition is empty: %v, %v", r, err)
	}
}

// withTopics starts an embedded broker with the topics, partitions each,
// for the test's length; the context ends with it too (30 s at most).
func withTopics(t *testing.T, partitions int32) (context.Context, Config) {
	t.Helper()
	b, err := StartEmbedded(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	kc := Config{Brokers: b.Addrs(), Partitions: partitions, Replication: 1}
	if err := kc.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, kc
}
