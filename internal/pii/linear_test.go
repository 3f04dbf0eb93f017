package pii

import (
	"strings"
	"testing"
	"time"
)

// TestLongRepetitiveLinesStayLinear runs the detector on 1 MB lines of one
// repeated character or short pattern. A scanner that rescans from every
// position would take hours on these; a linear one takes milliseconds, so
// the generous deadline only catches the quadratic case.
func TestLongRepetitiveLinesStayLinear(t *testing.T) {
	for _, unit := range []string{"a", "1", " ", ".", "@", "A ", "a.", "1-", "1 ", "Ab ", "I ", "x@y.", "Mr. ", "12 Main Street ", "é", "\n"} {
		text := strings.Repeat(unit, (1<<20)/len(unit))
		done := make(chan []Span, 1)
		start := time.Now()
		go func() { done <- Detect(text) }()
		select {
		case spans := <-done:
			_ = NewMasker(MaskPseudonym, nil).Mask(text, spans)
			t.Logf("%q x %d: %d spans in %s", unit, len(text)/len(unit), len(spans), time.Since(start).Round(time.Millisecond))
		case <-time.After(60 * time.Second):
			t.Fatalf("Detect on 1 MB of %q did not finish in 60 s: super-linear", unit)
		}
	}
}
