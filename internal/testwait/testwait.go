// Package testwait is how tests wait: on a condition, checked on a ticker,
// never on a guess of how long something takes.
package testwait

import (
	"context"
	"testing"
	"time"
)

// For checks cond every tick until it holds, and fails t with what when
// it has not held within the given time. Unlike require.Eventually it runs
// cond on the test's own goroutine, so cond may call require.
func For(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case <-deadline.C:
			if !cond() {
				t.Fatalf("waited %s: %s", within, what)
			}
			return
		case <-tick.C:
			if cond() {
				return
			}
		}
	}
}

// Poll checks cond every interval until it holds (true) or within passes
// or ctx ends (false): for waits whose failure the caller reports itself,
// or that must notice a condition promptly (a fault injected at a point).
func Poll(ctx context.Context, every, within time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return cond()
		case <-tick.C:
			if cond() {
				return true
			}
		}
	}
}
