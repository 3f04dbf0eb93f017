package codeshape

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The limits of the house style for the service's packages: a function a
// reader sees whole (80 lines) and follows without keeping a stack of their
// own (4 levels of nesting). A function may go beyond them when its doc
// comment says why ("Long because" or "Deep because").
const (
	maxLines = 80
	maxDepth = 4
)

var checked = []string{"internal/processor", "internal/ingest", "internal/api"}

func TestFunctionsStaySmall(t *testing.T) {
	var bad []string
	for _, dir := range checked {
		fs, err := Measure(filepath.Join("..", "..", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Lines > maxLines && !strings.Contains(f.Doc, "Long because") {
				bad = append(bad, fmt.Sprintf("%s %s: %d lines", f.Pos, f.Name, f.Lines))
			}
			if f.Depth > maxDepth && !strings.Contains(f.Doc, "Deep because") {
				bad = append(bad, fmt.Sprintf("%s %s: nested %d deep", f.Pos, f.Name, f.Depth))
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d functions over the limits (%d lines, %d levels) without a comment saying why:\n%s", len(bad), maxLines, maxDepth, strings.Join(bad, "\n"))
	}
}

// TestMeasure checks the measure itself on code whose shape is known.
func TestMeasure(t *testing.T) {
	fs, err := Measure("testdata")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for _, f := range fs {
		got[f.Name] = [2]int{f.Lines, f.Depth}
	}
	want := map[string][2]int{"flat": {3, 0}, "elseIfChain": {11, 1}, "nested": {14, 4}, "T.lit": {7, 2}}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got lines, depth %v, want %v", name, got[name], w)
		}
	}
}
