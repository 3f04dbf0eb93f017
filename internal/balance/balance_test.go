package balance

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func items(counts map[string]int) []Item {
	var out []Item
	for g, n := range counts {
		for i := 0; i < n; i++ {
			out = append(out, Item{ID: fmt.Sprintf("%s-%d", g, i), Group: g})
		}
	}
	return out
}

func TestTargetsAreReachedDeterministically(t *testing.T) {
	its := items(map[string]int{"anxiety": 600, "grief": 300, "sleep": 100})
	s := Settings{Key: "metadata.topic", Targets: map[string]float64{"anxiety": 1, "grief": 1}}
	p := Select(s, its)
	got := map[string]int32{}
	for i, c := range p.Copies {
		got[its[i].Group] += c
	}
	require.Equal(t, map[string]int32{"anxiety": 300, "grief": 300, "sleep": 0}, got, "the smaller group sets the size; unnamed groups get none")
	again := Select(s, its)
	require.Equal(t, p.Copies, again.Copies, "same input, same selection")
	s.Seed = 7
	other := Select(s, its)
	require.NotEqual(t, p.Copies, other.Copies, "another seed picks other records")
}

func TestCapAndOversample(t *testing.T) {
	its := items(map[string]int{"a": 50, "b": 10})
	p := Select(Settings{Key: "source", Cap: 20}, its)
	require.EqualValues(t, 30, p.Summary.Selected)
	o := Select(Settings{Key: "source", Targets: map[string]float64{"a": 1, "b": 1}, Oversample: true}, its)
	var b Group
	for _, g := range o.Summary.Groups {
		if g.Group == "b" {
			b = g
		}
	}
	require.EqualValues(t, 30, b.Selected)
	require.EqualValues(t, 20, b.Repeated)
	require.InDelta(t, 0.5, b.Achieved, 1e-9)
}

func TestParseRequest(t *testing.T) {
	for _, bad := range []string{`{"key":"colour","cap":3}`, `{"key":"source"}`, `{"key":"source","targets":{"a":-1}}`, `{"key":"source","cap":2,"oversample":true}`} {
		_, _, err := ParseRequest([]byte(bad))
		require.Error(t, err, bad)
	}
	_, ok, err := ParseRequest([]byte(`{"key":"bias.gender","targets":{"woman":1,"man":1}}`))
	require.NoError(t, err)
	require.True(t, ok)
}
