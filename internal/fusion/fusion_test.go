package fusion

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/stage"
)

func msgs(turns ...string) []stage.Message {
	var out []stage.Message
	for i, t := range turns {
		role := stage.RoleUser
		if i%2 == 1 {
			role = stage.RoleAssistant
		}
		out = append(out, stage.Message{Role: role, Content: t})
	}
	return out
}

func TestExactNearAndDistinct(t *testing.T) {
	a := msgs("My manager keeps adding deadlines and I'm drowning in work every single week.",
		"That sounds really hard. Can you tell me more about when it started and what changed?")
	exact := msgs("my manager keeps adding deadlines, and I'm drowning in work every single week!",
		"That sounds really hard.  Can you tell me more about when it started and what changed?")
	near := msgs("My manager keeps adding deadlines and I'm drowning in work every single week.",
		"That sounds really hard. Can you tell me more about when it started and what changed, truly?")
	other := msgs("I wake up at 3am and can't fall back asleep no matter what I try.",
		"Let's think about one small step you could take this week before bed.")
	var x Index
	for i, m := range [][]stage.Message{a, exact, near, other} {
		f, _ := Compute(m, nil)
		x.Add(&f, Rank{Priority: 3 - i, Source: i, Position: 1})
	}
	r, _ := x.Resolve(0) // in memory: no error
	// The near duplicate has the best priority (3-2 = 1), so it is kept.
	require.Equal(t, []int32{2, 2, 2, 3}, r.Keeper)
	require.Equal(t, 1, r.Clusters)
	require.Equal(t, 1, r.RemovedNear)
	require.Equal(t, 1, r.RemovedExact)
	require.Equal(t, map[int32][]int32{2: {0, 1}}, r.Members())

	only, _ := x.Resolve(1) // in memory: no error
	require.Equal(t, []int32{1, 1, 2, 3}, only.Keeper, "threshold 1: exact duplicates only; the better priority is kept")
}

func TestSignatureIsStable(t *testing.T) {
	f, _ := Compute(msgs("hello there", "general kenobi"), nil)
	g, _ := Compute(msgs("hello there", "general kenobi"), nil)
	require.Equal(t, f, g)
	require.Equal(t, 1.0, Similarity(&f.Sig, &g.Sig))
}

func BenchmarkMinHashSignature(b *testing.B) {
	m := msgs("I keep getting this tight feeling in my chest before meetings at work, and lately it starts the night before.",
		"That sounds really hard. Can you tell me more about when it started and what you notice in your body?",
		"It started a few months ago, around the time things changed at home. My partner moved out and I have been alone since.",
		"It makes sense that you feel this way given everything going on. Let's think about one small step you could take this week.")
	n := 0
	for _, x := range m {
		n += len(x.Content)
	}
	b.SetBytes(int64(n))
	var buf []uint64
	for b.Loop() {
		_, buf = Compute(m, buf)
	}
}
