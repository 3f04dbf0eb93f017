package stage

import (
	"testing"

	json "github.com/goccy/go-json"

	"github.com/dspipe/dspipe/internal/gen"
)

// BenchmarkValidateStandardize measures the per-record stages on generated
// conversations, from raw bytes to the encoded canonical record.
func BenchmarkValidateStandardize(b *testing.B) {
	g := gen.New(1)
	var raws [][]byte
	var total int
	for i := 0; i < 1000; i++ {
		c := g.Next()
		msgs := make([]Message, len(c.Turns))
		for j, t := range c.Turns {
			msgs[j] = Message{Role: t.Role, Content: t.Content}
		}
		raw, _ := json.Marshal(map[string]any{"messages": msgs, "topic": c.Topic})
		raws = append(raws, raw)
		total += len(raw)
	}
	b.SetBytes(int64(total / len(raws)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in, err := Validate(raws[i%len(raws)], DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		rec, err := Standardize(in, Provenance{Name: "s"}, []byte("bench-key"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(rec); err != nil {
			b.Fatal(err)
		}
	}
}
