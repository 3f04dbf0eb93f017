package crisis

import (
	"strings"
	"testing"
	"time"
)

// TestLongRepetitiveLinesStayLinear: 1 MB lines of one repeated phrase or
// character finish quickly; a quadratic matcher would not finish at all.
func TestLongRepetitiveLinesStayLinear(t *testing.T) {
	for _, unit := range []string{"a", " ", "i want to kill myself ", "kill myself", "not ", "pills ", "you ", "."} {
		text := strings.Repeat(unit, (1<<20)/len(unit))
		done := make(chan Result, 1)
		start := time.Now()
		go func() { done <- Assess([]string{text}) }()
		select {
		case r := <-done:
			t.Logf("%q: %s in %s", unit, r.Level, time.Since(start).Round(time.Millisecond))
		case <-time.After(60 * time.Second):
			t.Fatalf("Assess on 1 MB of %q did not finish in 60 s: super-linear", unit)
		}
	}
}
