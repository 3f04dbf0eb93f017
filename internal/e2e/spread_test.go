package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/gen"
)

// TestOneExecutionSharedByProcessors runs one execution with every stage on
// by one processor, then the same request with two processors as separate
// processes, one of them killed with SIGKILL mid-run and started again:
// both processors worked on the second execution's records (the one that
// is not its home logs doing so), and its output equals the
// single-processor output byte for byte. On the embedded broker, and on
// Apache Kafka when DSPIPE_TEST_KAFKA_BROKERS is set.
func TestOneExecutionSharedByProcessors(t *testing.T) {
	onEachBroker(t, sharedByProcessors)
}

func sharedByProcessors(t *testing.T, external bool) {
	const n = 12000
	c := startClusterWith(t, external, clusterOpts{instances: 2, env: []string{"KAFKA_PARTITIONS=4",
		"ENABLE_SAFETY_VALIDATION=true", "ENABLE_QUALITY_ASSESSMENT=true", "ENABLE_BIAS_DETECTION=true", "ENABLE_FUSION=true"}})
	ctx := context.Background()
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(c.dir, "shared"), Records: n, Sources: 2, Format: "mixed", Seed: 47,
		DupRate: 0.05, NearDupRate: 0.05})
	require.NoError(t, err)
	req := request(sum.Files)

	c.stop("processor-1", syscall.SIGTERM)
	id, err := c.client.Submit(ctx, req)
	require.NoError(t, err)
	one := c.finish(ctx, t, id)
	require.Equal(t, "completed", one.status, one.reason)
	want := digestOutput(t, one.outputDir)
	require.Contains(t, want, "data.jsonl.zst")

	c.start("processor-1")
	id2, err := c.client.Submit(ctx, req)
	require.NoError(t, err)
	c.waitProgress(ctx, id2, 0.4*n)
	c.inject(t, "kill processor", 1)
	two := c.finish(ctx, t, id2)
	require.NoError(t, two.feedErr, "the feed had no gap and no duplicate")
	require.Equal(t, "completed", two.status, two.reason)
	require.Equal(t, one.valid, two.valid)
	require.Empty(t, diffDigests(want, digestOutput(t, two.outputDir)), "two processors write the one processor's output byte for byte")
	require.Empty(t, c.checkTrailAndReadModels(t, id2, 1))

	// The processor whose partitions are not the execution's home worked on
	// its records; in the single-processor run every record was worked at
	// home.
	shared := 0
	for _, name := range []string{"processor", "processor-1"} {
		b, err := os.ReadFile(filepath.Join(c.dir, name+".log"))
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "homed on another instance") {
				require.NotContains(t, line, id, "one processor: every record was worked at home")
				if strings.Contains(line, id2) {
					shared++
				}
			}
		}
	}
	require.Positive(t, shared, "the second execution's records were shared between the processors")
}
