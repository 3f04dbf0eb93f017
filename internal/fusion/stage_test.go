package fusion

import (
	"fmt"
	"testing"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
)

// TestPreparedRecordsDecideAlike: records whose features were prepared
// (on any core, as the output stage does), prepared on another processor
// and carried encoded, or computed by the stage itself give the same plan.
func TestPreparedRecordsDecideAlike(t *testing.T) {
	convs := [][]stage.Message{
		{{Role: "user", Content: "I keep waking up at four and cannot get back to sleep before work."}, {Role: "assistant", Content: "That sounds draining. What goes through your mind then?"}},
		{{Role: "user", Content: "My sister and I stopped talking after the wedding and I miss her."}, {Role: "assistant", Content: "Missing her says a lot about what she means to you."}},
		{{Role: "user", Content: "Exams are in two weeks and my chest gets tight whenever I open a book."}, {Role: "assistant", Content: "Let us look at what happens right before the tightness."}},
	}
	// prepare: 0 observes computing its own; 1 prepared here; 2 prepared
	// elsewhere, encoded and decoded (as it travels with a staged record).
	plan := func(prepare int) *pipeline.Plan {
		run := Stage{}.Resolve(events.Request{Sources: make([]events.SourceSpec, 2)}, pipeline.Env{FusionEnabled: true})
		defer run.Close()
		const n = 60
		for i := range n {
			msgs := convs[i%len(convs)]
			if i%2 == 1 { // every other record is a conversation of its own
				msgs = append([]stage.Message{{Role: "user", Content: fmt.Sprintf("note %d: something else entirely, number %d", i, i*7)}}, msgs[1:]...)
			}
			r := pipeline.StagedRecord{Index: i, ID: fmt.Sprintf("%032x", i), Source: i % 2, Position: int64(i), Messages: msgs}
			switch prepare {
			case 1:
				r.Prepared = run.(pipeline.Preparer).Prepare(&r)
			case 2:
				c := run.(pipeline.PreparedCodec)
				v, err := c.DecodePrepared(c.EncodePrepared(c.Prepare(&r)))
				if err != nil {
					t.Fatal(err)
				}
				r.Prepared = v
			}
			run.Observe(&r)
		}
		p := pipeline.NewPlan(n)
		if err := run.Decide(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c := plan(1), plan(0), plan(2)
	if a.Fusion.RemovedExact+a.Fusion.RemovedNear == 0 {
		t.Fatal("nothing removed: the records were meant to repeat")
	}
	if fmt.Sprint(a.Copies, a.Merged.All(), *a.Fusion) != fmt.Sprint(b.Copies, b.Merged.All(), *b.Fusion) {
		t.Fatalf("prepared and computed records decided differently:\n%v %v\n%v %v", a.Copies, a.Merged.All(), b.Copies, b.Merged.All())
	}
	if fmt.Sprint(c.Copies, c.Merged.All(), *c.Fusion) != fmt.Sprint(b.Copies, b.Merged.All(), *b.Fusion) {
		t.Fatalf("records prepared elsewhere decided differently:\n%v %v\n%v %v", c.Copies, c.Merged.All(), b.Copies, b.Merged.All())
	}
}

// Work packed before the id travelled with it does not decode, so the
// output's first pass decodes and prepares that record again.
func TestPreparedWithoutAnIDDoesNotDecode(t *testing.T) {
	run := Stage{}.Resolve(events.Request{Sources: make([]events.SourceSpec, 1)}, pipeline.Env{FusionEnabled: true})
	defer run.Close()
	c := run.(pipeline.PreparedCodec)
	if _, err := c.DecodePrepared(make([]byte, preparedSize)); err == nil {
		t.Fatal("features without an id decoded")
	}
	r := pipeline.StagedRecord{ID: "abc", Messages: []stage.Message{{Role: "user", Content: "hello there"}}}
	v, err := c.DecodePrepared(c.EncodePrepared(c.Prepare(&r)))
	if err != nil || v.(*prepared).id != "abc" {
		t.Fatalf("round trip: %v %v", v, err)
	}
}
