package safety

import (
	"testing"

	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/stage"
)

// BenchmarkSafetyStage runs the whole stage (PII masking, crisis grading,
// content safety) on generated conversations; MB/s is message text.
func BenchmarkSafetyStage(b *testing.B) {
	g := gen.New(11)
	var recs []stage.Record
	var size int64
	for i := 0; i < 200; i++ {
		c := g.Next()
		r := stage.Record{ID: "r", Source: stage.Provenance{URI: "file:///data/x.jsonl"}}
		for _, t := range c.Turns {
			r.Messages = append(r.Messages, stage.Message{Role: t.Role, Content: t.Content})
			size += int64(len(t.Content))
		}
		recs = append(recs, r)
	}
	s := Settings{Enabled: true, PIIMasking: "pseudonym", CrisisThreshold: 0.7, MaxQuarantineRate: 1}
	salt := []byte("bench-salt")
	b.SetBytes(size / int64(len(recs)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		r.Messages = append([]stage.Message(nil), r.Messages...)
		Apply(&r, s, salt)
	}
}
