package app

import (
	"math"
	"runtime/debug"
	"testing"
)

// The binaries set the memory limit and, under it, a lazier collector;
// what the operator sets in the environment wins.
func TestSetMemoryLimitAndGCTarget(t *testing.T) {
	limit, pct := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	t.Cleanup(func() { debug.SetMemoryLimit(limit); debug.SetGCPercent(pct) })
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	SetMemoryLimit(env(nil))
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit {
		t.Fatalf("memory limit %d, want %d", got, DefaultMemoryLimit)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GC percent %d, want %d", got, DefaultGCPercent)
	}

	// GOGC set: left as the runtime read it.
	SetMemoryLimit(env(map[string]string{"GOGC": "100"}))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set, GC percent %d, want 100", got)
	}
	// No limit (GOMEMLIMIT=off): the percentage is the only bound, so it stays.
	debug.SetMemoryLimit(math.MaxInt64)
	SetMemoryLimit(env(map[string]string{"GOMEMLIMIT": "off"}))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("no memory limit, GC percent %d, want 100", got)
	}
}
