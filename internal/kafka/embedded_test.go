package kafka

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEmbeddedBrokerFilesArePrivate: the embedded broker's data directory
// is 0700 and every file in it 0600, also when the directory existed
// with looser modes (issue 12: the log was world-readable).
func TestEmbeddedBrokerFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "broker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := StartEmbedded(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kc := Config{Brokers: b.Addrs(), Partitions: 1, Replication: 1}
	if err := kc.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kc.Topics().Raw, Value: []byte("payload")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()
	files := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if info.Mode().Perm()&^want != 0 {
			t.Errorf("%s has mode %v; want at most %v", p, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Fatalf("the broker wrote %d files; the test saw nothing", files)
	}
}

// TestTopicRetention: the record topics, which hold conversation text,
// expire (DSPIPE_RECORD_RETENTION_HOURS, 7 days by default); the event and
// access topics, the audit trail, never do.
func TestTopicRetention(t *testing.T) {
	b, err := StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kc, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"DSPIPE_RECORD_RETENTION_HOURS": "48", "KAFKA_PARTITIONS": "1"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	kc.Brokers = b.Addrs()
	if err := kc.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tp := kc.Topics()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, tp.Raw, tp.Staged, tp.Events, tp.Access)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{tp.Raw: "172800000", tp.Staged: "172800000", tp.Events: "-1", tp.Access: "-1"}
	for _, rc := range rcs {
		got := ""
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.Value != nil {
				got = *c.Value
			}
		}
		if got != want[rc.Name] {
			t.Errorf("%s: retention.ms %q, want %q", rc.Name, got, want[rc.Name])
		}
	}
}
