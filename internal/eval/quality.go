package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/stage"
)

// AnalyzeLine is one line of `dsctl analyze` input with messages.
type AnalyzeLine struct {
	ID       string          `json:"id"`
	Messages []stage.Message `json:"messages"`
	// Planted is the generator's low-quality kind ("" for a good one); it
	// is not read by the analyzer.
	Planted string `json:"planted,omitempty"`
}

// QualityRow is one line of `dsctl analyze quality` output.
type QualityRow struct {
	ID      string             `json:"id"`
	Score   float64            `json:"score"`
	Signals map[string]float64 `json:"signals"`
	Reasons []string           `json:"reasons"`
}

// ReadQuality reads analyze quality output.
func ReadQuality(path string) ([]QualityRow, error) { return readJSONLFile[QualityRow](path) }

// WriteLines writes analyze input lines to path.
func WriteLines(path string, lines []AnalyzeLine) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// GeneratedConversations are n conversations from the generator with its
// planted low-quality kind; their text is ours (written for testing).
func GeneratedConversations(n int, seed uint64) []AnalyzeLine {
	g := gen.New(seed)
	out := make([]AnalyzeLine, n)
	for i := range out {
		c := g.Next()
		l := AnalyzeLine{ID: c.Truth.ID, Planted: c.Truth.LowQuality}
		for _, t := range c.Turns {
			l.Messages = append(l.Messages, stage.Message{Role: t.Role, Content: t.Content})
		}
		out[i] = l
	}
	return out
}

// StandardizedFile reads a real data file through the local source and
// standardization (the pipeline's path) and returns its conversations.
func StandardizedFile(path string) ([]AnalyzeLine, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	src := &source.Local{Path: abs, Roots: []string{filepath.Dir(abs)}}
	objs, err := src.List(context.Background())
	if err != nil {
		return nil, err
	}
	var out []AnalyzeLine
	for _, o := range objs {
		err := source.Each(context.Background(), src, o, source.ReadOptions{MaxRecord: 1 << 20, Attempts: 3}, func(it source.Item, _ source.Counter) error {
			if it.Err != "" {
				return nil
			}
			in, err := stage.Validate(it.Data, stage.DefaultLimits)
			if err != nil {
				return nil
			}
			rec, err := stage.Standardize(in, stage.Provenance{Name: "eval", Position: it.Position}, nil)
			if err != nil {
				return nil
			}
			out = append(out, AnalyzeLine{ID: fmt.Sprint(it.Position), Messages: rec.Messages})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// QualityAUC is the probability that a planted low-quality conversation
// scores below a good one (ties count half).
func QualityAUC(lines []AnalyzeLine, rows []QualityRow) float64 {
	var pos, neg []float64
	for i, l := range lines {
		if i >= len(rows) {
			break
		}
		if l.Planted != "" {
			pos = append(pos, 1-rows[i].Score)
		} else {
			neg = append(neg, 1-rows[i].Score)
		}
	}
	return auc(pos, neg)
}
