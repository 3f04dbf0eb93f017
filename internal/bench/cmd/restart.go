package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/processor"
)

// restartPoint is what a processor restart replays after a number of
// executions of one size.
type restartPoint struct {
	Executions       int
	Logged, Replayed int // events in the log; events replayed after the snapshots
	FromSnapshot     time.Duration
	FromStart        time.Duration
}

// restartCost runs executions of one size (records conversations each) on
// the spine's services and, after 10 and after 100 of them, times the
// rebuild of every partition's state as a restarted processor does it
// (latest snapshot and the events after it; the median of five) and as it
// did before snapshots (the whole log).
func restartCost(ctx context.Context, dir string, c *client.Client, kc kafka.Config, records int) ([]restartPoint, error) {
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(dir, "restart"), Records: records, Sources: 1, Format: "chatml", Seed: 5})
	if err != nil {
		return nil, err
	}
	var out []restartPoint
	done := 0
	for _, upTo := range []int{10, 100} {
		for done < upTo {
			wave := min(5, upTo-done)
			var wg sync.WaitGroup
			errs := make([]error, wave)
			for i := range wave {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, final, _, err := runExecution(ctx, c, sum.Files)
					if err == nil && final.Data["status"] != "completed" {
						err = fmt.Errorf("execution ended %v", final.Data["status"])
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					return nil, err
				}
			}
			done += wave
		}
		pt := restartPoint{Executions: done}
		var times []time.Duration
		for try := range 5 {
			began := time.Now()
			for p := int32(0); p < kc.Partitions; p++ {
				_, n, err := processor.Recover(ctx, kc, p, true)
				if err != nil {
					return nil, err
				}
				if try == 0 {
					pt.Replayed += n
				}
			}
			times = append(times, time.Since(began))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		pt.FromSnapshot = times[len(times)/2]
		began := time.Now()
		for p := int32(0); p < kc.Partitions; p++ {
			_, n, err := processor.Recover(ctx, kc, p, false)
			if err != nil {
				return nil, err
			}
			pt.Logged += n
		}
		pt.FromStart = time.Since(began)
		out = append(out, pt)
	}
	return out, nil
}

func writeRestart(b *strings.Builder, pts []restartPoint, records int) {
	if len(pts) != 2 {
		return
	}
	fmt.Fprintf(b, "\n## Restart cost as the event log grows\n\nExecutions of %d conversations each on the spine's services; "+
		"after 10 and after 100 of them, the state of every partition is rebuilt as a restarted processor rebuilds it "+
		"(its latest snapshot and the events after it, `DSPIPE_SNAPSHOT_EVERY` at its default; median of five) and, for comparison, "+
		"from the whole event log as before snapshots.\n\n", records)
	b.WriteString("| executions | events in the log | events replayed after the snapshots | rebuild from the snapshots | rebuild from offset 0 |\n|---|---|---|---|---|\n")
	for _, p := range pts {
		fmt.Fprintf(b, "| %d | %d | %d | %s | %s |\n", p.Executions, p.Logged, p.Replayed,
			p.FromSnapshot.Round(100*time.Microsecond), p.FromStart.Round(100*time.Microsecond))
	}
	ratio := float64(pts[1].FromSnapshot) / float64(pts[0].FromSnapshot)
	fmt.Fprintf(b, "\nRestart after 100 executions / after 10: %.2f× (target < 2× %s); from offset 0 it would be %.2f×.\n",
		ratio, mark(ratio < 2), float64(pts[1].FromStart)/float64(pts[0].FromStart))
}

// restartOnlyRun runs only the restart measure, on a broker and spine
// services of its own, and prints its section.
func restartOnlyRun() error {
	return onlySection(func(ctx context.Context, dir, dbURL string, b *strings.Builder) error {
		o, err := startOwnServices(ctx, dir, dbURL, "restart", spineEnv...)
		if err != nil {
			return err
		}
		defer o.stop()
		pts, err := restartCost(ctx, dir, o.c, o.kc, restartRecords)
		if err == nil {
			writeRestart(b, pts, restartRecords)
		}
		return err
	})
}
