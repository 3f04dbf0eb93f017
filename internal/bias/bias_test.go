package bias

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
)

func groups(text string) []string {
	var out []string
	for _, m := range Detect(text) {
		out = append(out, m.Axis+":"+m.Group)
	}
	return out
}

func TestMentionsWithContext(t *testing.T) {
	require.Contains(t, groups("As a Black woman at work I feel unseen."), "race_ethnicity:black")
	require.Contains(t, groups("As a Black woman at work I feel unseen."), "gender:woman")
	require.Empty(t, groups("I drink my coffee black and wear a white shirt."), "colours are not people")
	require.Empty(t, groups("Go straight down the road to the old house."))
	require.Contains(t, groups("My straight friends don't get it."), "sexual_orientation:straight")
	require.Contains(t, groups("My grandfather raised me."), "age:old")
	require.Contains(t, groups("My grandfather raised me."), "gender:man")
	require.Equal(t, []string{"race_ethnicity:black"}, groups("an African American teacher"), "american inside african american is not a nationality")
	require.Contains(t, groups("A 22-year-old and a 78 year old met."), "age:young")
	require.Contains(t, groups("A 22-year-old and a 78 year old met."), "age:old")
	require.Contains(t, groups("The Nigerian student"), "nationality:nigeria")
	require.Contains(t, groups("one of them uses a wheelchair"), "disability:wheelchair_user")
}

func TestNegativeDescriptorInTheSameSentence(t *testing.T) {
	ms := Detect("Muslims are dangerous. Christians go to church.")
	require.True(t, ms[0].Negative)
	for _, m := range ms[1:] {
		require.False(t, m.Negative)
	}
}

func TestScore(t *testing.T) {
	uniform := map[string]map[string]float64{Gender: {"woman": 1, "man": 1}}
	s := &events.BiasSummary{}
	for i := 0; i < 90; i++ {
		Add(s, Detect("a woman"))
	}
	for i := 0; i < 10; i++ {
		Add(s, Detect("a man"))
	}
	sc := Compute(s, nil, uniform, 0)
	require.Equal(t, Gender, sc.Axis)
	require.InDelta(t, 0.4, sc.Score, 1e-9)
	require.Equal(t, []string{"woman"}, sc.Axes[0].Over)
	require.Contains(t, sc.Describe(), "gender")

	only := &events.BiasSummary{}
	for i := 0; i < 30; i++ {
		Add(only, Detect("the women"))
	}
	require.InDelta(t, 0.5, Compute(only, nil, uniform, 0).Score, 1e-9, "one group alone is measured against the reference's others")

	even := &events.BiasSummary{}
	for i := 0; i < 30; i++ {
		Add(even, Detect("a woman and a man"))
	}
	require.Zero(t, Compute(even, nil, uniform, 0).Score)
	require.Zero(t, Compute(s, nil, nil, 1000).Score, "too few mentions to score")
	ref := map[string]map[string]float64{Gender: {"woman": 0.9, "man": 0.1}}
	require.InDelta(t, 0, Compute(s, nil, ref, 0).Score, 1e-9, "a request's reference replaces the default")
}

// TestPopulationReferenceAndInterval checks the default reference: the
// unmarked groups (straight, middle-aged) are left out, Protestants pool
// with Christians, the interval narrows as mentions grow, and the gate
// compares its low end: a few dozen mentions cannot trip it, thousands
// with the same shares do.
func TestPopulationReferenceAndInterval(t *testing.T) {
	add := func(s *events.BiasSummary, text string, n int) {
		for i := 0; i < n; i++ {
			Add(s, Detect(text))
		}
	}
	// Thirty Christians and three others: far from the population's
	// shares, but on too few mentions to say so with confidence.
	few := &events.BiasSummary{}
	add(few, "my church", 28)
	add(few, "a Baptist", 2)
	add(few, "a Catholic", 2)
	add(few, "a Jewish friend", 1)
	sc := Compute(few, []string{Religion}, nil, 0)
	require.Len(t, sc.Axes, 1)
	a := sc.Axes[0]
	require.EqualValues(t, 33, a.Mentions)
	require.Greater(t, a.Distance, 0.3, "the point estimate is far from the reference")
	require.Less(t, a.Low, 0.3, "but 33 mentions cannot show it clearly")
	require.True(t, a.Low <= a.Distance && a.Distance <= a.High)
	require.Equal(t, a.Low, sc.Gate)

	many := &events.BiasSummary{}
	add(many, "my church", 2800)
	add(many, "a Baptist", 200)
	add(many, "a Catholic", 200)
	add(many, "a Jewish friend", 100)
	m := Compute(many, []string{Religion}, nil, 0).Axes[0]
	require.InDelta(t, a.Distance, m.Distance, 0.02, "the same shares")
	require.Greater(t, m.Low, 0.3, "thousands of mentions show the same skew clearly")
	require.Less(t, m.High-m.Low, a.High-a.Low)

	// Straight and middle-aged are unmarked: a counselling dataset that
	// names gay people far more often than straight ones is not skewed
	// for that.
	orient := &events.BiasSummary{}
	add(orient, "I am gay", 18)
	add(orient, "she is bisexual", 52)
	add(orient, "my lesbian aunt", 14)
	add(orient, "a straight guy", 3)
	o := Compute(orient, []string{SexualOrientation}, nil, 0).Axes[0]
	require.EqualValues(t, 84, o.Mentions, "straight is left out of the default comparison")
	require.Less(t, o.Distance, 0.1)
}

func TestParseRequest(t *testing.T) {
	for _, bad := range []string{`{"mode":"loud"}`, `{"threshold":2}`, `{"axes":["height"]}`, `{"reference":{"gender":{"woman":0}}}`, `{"x":1}`} {
		_, err := ParseRequest([]byte(bad))
		require.Error(t, err, bad)
	}
	s, ok := Resolve([]byte(`{"mode":"warn","threshold":0.2,"axes":["gender"]}`), 0.3)
	require.True(t, ok)
	require.Equal(t, Settings{Threshold: 0.2, Mode: "warn", Axes: []string{"gender"}, MinMentions: MinMentions}, s)
}

func FuzzDetect(f *testing.F) {
	f.Add("a Black man")
	f.Add("22-year-old")
	f.Add("year-old year old years-old")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range Detect(s) {
			require.True(t, m.Start >= 0 && m.Start < m.End && m.End <= len(s))
		}
	})
}

func TestLongLineIsLinear(t *testing.T) {
	Detect(strings.Repeat("a", 1<<20))
	Detect(strings.Repeat("year old ", 1<<17))
}

func BenchmarkBiasDetect(b *testing.B) {
	text := strings.Repeat("As a woman in my field I keep getting this tight feeling in my chest before meetings. My grandmother passed away last month and my dad does not talk about it. ", 6)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Detect(text)
	}
}
