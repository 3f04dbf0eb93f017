package fusion

import (
	"os"
	"sort"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
)

// Stage is fusion as a dataset stage: every staged record is indexed
// (exact hash and MinHash bands); then one record of each cluster of
// exact and near duplicates is kept, the best ranked (source priority,
// then order), and the ids it absorbed are recorded.
type Stage struct{}

// Name is the stage's name in events.
func (Stage) Name() string { return events.StageFusion }

// Resolve runs the stage when the server allows it and the request asks.
func (Stage) Resolve(req events.Request, env pipeline.Env) pipeline.DatasetRun {
	s, ok := Resolve(req.Fusion)
	if !ok || !env.FusionEnabled {
		return nil
	}
	r := &run{set: s, sources: len(req.Sources)}
	r.idx.SpillBeyond(os.TempDir(), InMemory)
	return r
}

// InMemory is how many records' signatures the stage keeps in memory
// before the rest spill to disk: 12.8 MB.
const InMemory = 100_000

type run struct {
	set     Settings
	sources int
	idx     Index
	// ids holds every record's id end to end (idEnd[i] is where record
	// i's ends): about 36 bytes a record, where a string each takes 64.
	ids   []byte
	idEnd []uint32
	srcOf []int32
	buf   []uint64
}

func (f *run) id(i int) string {
	start := uint32(0)
	if i > 0 {
		start = f.idEnd[i-1]
	}
	return string(f.ids[start:f.idEnd[i]])
}

func (f *run) Observe(r *pipeline.StagedRecord) {
	var ft Features
	ft, f.buf = Compute(r.Messages, f.buf)
	f.idx.Add(&ft, Rank{Priority: r.Priority, Source: r.Source, Position: r.Position})
	f.ids = append(f.ids, r.ID...)
	f.idEnd = append(f.idEnd, uint32(len(f.ids)))
	f.srcOf = append(f.srcOf, int32(r.Source))
}

// Decide keeps one record of each duplicate cluster and records what it
// merged.
func (f *run) Decide(p *pipeline.Plan) error {
	res, err := f.idx.Resolve(f.set.NearThreshold)
	if err != nil {
		return err
	}
	sum := &events.FusionSummary{Records: int64(len(p.Copies)), Clusters: int64(res.Clusters), RemovedExact: int64(res.RemovedExact),
		RemovedNear: int64(res.RemovedNear), NearThreshold: f.set.NearThreshold, KeptPerSource: make([]int64, f.sources)}
	for i, k := range res.Keeper {
		if k != int32(i) {
			p.Copies[i] = 0
			p.Merged[k] = append(p.Merged[k], f.id(i))
			continue
		}
		sum.Kept++
		if s := f.srcOf[i]; s >= 0 && int(s) < len(sum.KeptPerSource) {
			sum.KeptPerSource[s]++
		}
	}
	for _, m := range p.Merged {
		sort.Strings(m)
	}
	p.Fusion = sum
	return nil
}

// Close removes the index's spill file.
func (f *run) Close() error { return f.idx.Close() }

func (f *run) Manifest() (string, any) { return Version, f.set }
