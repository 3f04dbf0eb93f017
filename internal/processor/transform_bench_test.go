package processor

import (
	"encoding/json"
	"testing"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/stages"
	"github.com/dspipe/dspipe/internal/wire"
)

// BenchmarkTransform runs every record stage (validation, standardization,
// quality, bias, safety) on generated conversations, as one processor
// core does: records per second and bytes per second of input.
func BenchmarkTransform(b *testing.B) {
	g := gen.New(42)
	var raws [][]byte
	var size int64
	for i := 0; i < 2000; i++ {
		c := g.Next()
		var msgs []map[string]string
		for _, t := range c.Turns {
			msgs = append(msgs, map[string]string{"role": t.Role, "content": t.Content})
		}
		raw, _ := json.Marshal(map[string]any{"id": c.Truth.ID, "messages": msgs, "topic": c.Topic})
		raws = append(raws, raw)
		size += int64(len(raw))
	}
	env := pipeline.Env{QualityEnabled: true, SafetyEnabled: true, BiasEnabled: true, CrisisThreshold: 0.8, BiasThreshold: 0.3}
	run := &stageRun{stages: pipeline.Resolve(stages.Record(), events.Request{}, env)}
	spec := events.SourceSpec{Type: "local", Name: "s1"}
	b.SetBytes(size / int64(len(raws)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o := transform(raws[i%len(raws)], stage.DefaultLimits, []byte("k"), spec, wire.Meta{Kind: wire.KindRecord}, "ds_b", run, nil)
		if !o.ready {
			b.Fatal("not transformed")
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
