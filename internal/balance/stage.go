package balance

import (
	"encoding/json"
	"strings"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
)

// Stage is balancing as a dataset stage: each staged record's group is
// read under the request's key, then the records the stages before kept
// are selected (and repeated) toward the target distribution.
type Stage struct{}

// Name is the stage's name in events.
func (Stage) Name() string { return events.StageBalancing }

// Resolve runs the stage when the request asks for it.
func (Stage) Resolve(req events.Request, _ pipeline.Env) pipeline.DatasetRun {
	s, ok, err := ParseRequest(req.Processing["balancing"])
	if err != nil || !ok {
		return nil
	}
	names := make([]string, len(req.Sources))
	for i, src := range req.Sources {
		names[i] = src.DisplayName(i)
	}
	return &run{set: s, sources: names}
}

type run struct {
	set     Settings
	sources []string
	sel     Selection
}

// Reads: a record's group is its source, a metadata value or its bias
// annotation, never its text.
func (b *run) Reads() pipeline.Fields {
	switch {
	case strings.HasPrefix(b.set.Key, "metadata."):
		return pipeline.FieldID | pipeline.FieldMetadata
	case strings.HasPrefix(b.set.Key, "bias."):
		return pipeline.FieldID | pipeline.FieldAnnotations
	}
	return pipeline.FieldID
}

func (b *run) Observe(r *pipeline.StagedRecord) {
	b.sel.Add(b.set.Seed, r.ID, b.groupOf(r))
}

// groupOf is a record's group under the balancing key.
func (b *run) groupOf(r *pipeline.StagedRecord) string {
	key := b.set.Key
	switch {
	case key == "source":
		if r.Source >= 0 && r.Source < len(b.sources) {
			return b.sources[r.Source]
		}
	case strings.HasPrefix(key, "metadata."):
		if v := r.Metadata[strings.TrimPrefix(key, "metadata.")]; v != "" {
			return v
		}
	case strings.HasPrefix(key, "bias."):
		var ann struct {
			Mentions []struct{ Axis, Group string } `json:"mentions"`
		}
		if json.Unmarshal(r.Annotations["bias"], &ann) == nil {
			axis := strings.TrimPrefix(key, "bias.")
			for _, m := range ann.Mentions {
				if m.Axis == axis {
					return m.Group
				}
			}
		}
	}
	return None
}

// Decide selects (and repeats) the records the stages before kept toward
// the target distribution.
func (b *run) Decide(p *pipeline.Plan) error {
	sum := b.sel.Choose(b.set, p.Copies)
	p.Balancing = &sum
	return nil
}

// Close has nothing to release.
func (*run) Close() error { return nil }

func (b *run) Manifest() (string, any) { return Version, b.set }
