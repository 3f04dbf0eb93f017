package crisis

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func level(texts ...string) string { return Assess(texts).Level }

func TestLevelsFollowTheScale(t *testing.T) {
	require.Equal(t, None, level("We went hiking on Saturday and it was lovely."))
	require.Equal(t, Indicator, level("Everything feels hopeless lately."))
	require.Equal(t, Ideation, level("Some nights I want to kill myself."))
	require.Equal(t, Behavior, level("I cut myself again last night."))
	require.Equal(t, Attempt, level("I tried to kill myself in March and woke up in the hospital."))
}

func TestNegationHypotheticalsAndOtherPeople(t *testing.T) {
	require.Less(t, Rank(level("I'm not suicidal, just exhausted.")), Rank(Ideation), "negated")
	require.Less(t, Rank(level("If I ever felt suicidal I would call my sister.")), Rank(Ideation), "hypothetical")
	require.Less(t, Rank(level("You should never kill yourself, you matter to people.")), Rank(Ideation), "said to someone else")
	require.Less(t, Rank(level("My brother attempted suicide when he was nineteen.")), Rank(Behavior), "about someone else")
	// Negation is local: a clause in between does not negate the phrase.
	require.GreaterOrEqual(t, Rank(level("I don't understand why killing myself would be wrong.")), Rank(Ideation))
}

func TestMeansWithoutTheWriterAreIdeationNotBehaviour(t *testing.T) {
	require.Equal(t, Ideation, level("There is a gun in the house."))
	require.Equal(t, Behavior, level("I have a gun and my plan is ready."))
}

func TestResultsCarryCodesNotText(t *testing.T) {
	r := Assess([]string{"I tried to kill myself."})
	require.Equal(t, Attempt, r.Level)
	require.Greater(t, r.Score, 0.8)
	for _, c := range r.Indicators {
		require.NotContains(t, c, "kill", "indicators are codes, never the matched text")
	}
}

func FuzzAssess(f *testing.F) {
	f.Add("I want to die.\nI'm not suicidal!")
	f.Add("\xff\xfe kill myself")
	f.Fuzz(func(t *testing.T, s string) {
		r := Assess([]string{s})
		if r.Score < 0 || r.Score > 1 || Rank(r.Level) < 0 {
			t.Fatalf("bad result %+v", r)
		}
	})
}

func BenchmarkCrisisAssess(b *testing.B) {
	text := strings.Repeat("I have been feeling anxious since my move last March. Some days I just want to sleep and not wake up. "+
		"My therapist said we could talk about it next week. ", 6)
	b.SetBytes(int64(len(text)))
	for i := 0; i < b.N; i++ {
		Assess([]string{text})
	}
}

// TestEvidenceNamesThePostsBehindTheLevel: a reviewer sees which of a
// writer's posts carry the level; an attempt told in an old post keeps
// the writer's level at attempt (posts written here).
func TestEvidenceNamesThePostsBehindTheLevel(t *testing.T) {
	r := Assess([]string{
		"rough week at work, not sleeping much",
		"two years ago i took a lot of pills and ended up in the er",
		"anyway thanks for reading this",
	})
	require.Equal(t, Attempt, r.Level)
	require.Contains(t, r.Evidence, Evidence{Post: 1, Level: Attempt})
	for _, e := range r.Evidence {
		require.NotEqual(t, 2, e.Post, "the closing post says nothing")
	}
	require.Empty(t, Assess([]string{"just one post about a bad day"}).Evidence, "one post needs no per-post list")
}

// TestTheWritersOwnWordsDecideTheLevel: the word "suicide" named as a
// topic, distress said of someone else, "I cut" meaning something else and
// a negation behind a bracket do not make a level; an attempt named a few
// words after "tried", a half-hearted attempt and a plan to die do; the
// writer's own distress is an indicator (sentences written here).
func TestTheWritersOwnWordsDecideTheLevel(t *testing.T) {
	require.Less(t, Rank(level("Suicide rates rise every winter, the article says.")), Rank(Ideation), "a topic")
	require.Less(t, Rank(level("Things got better for me (never seriously thought about suicide though).")), Rank(Ideation), "negated behind a bracket")
	require.Equal(t, None, level("My friend has been feeling down and has no one to talk to."), "distress of someone else")
	require.Equal(t, Indicator, level("I have been feeling down and I have no one to talk to."))
	require.Equal(t, None, level("On the way home I cut through the park."))
	require.Equal(t, Behavior, level("I cut again last night, deeper than before."))
	require.Equal(t, Attempt, level("Tried to run away, kill myself, drink it all away."))
	require.Equal(t, Attempt, level("I made a halfhearted attempt when I was 20."))
	require.Equal(t, Behavior, level("I am planning to kill myself next week."))
	require.Equal(t, Ideation, level("I keep thinking about my death and who would come."))
}

// TestAssessEachAgreesWithAssess: one pass over each text gives each
// text's own grade and the writer's grade over the chosen texts, equal to
// grading them separately (sentences written here).
func TestAssessEachAgreesWithAssess(t *testing.T) {
	texts := []string{
		"I tried to kill myself last year.",
		"It sounds like you have been carrying a lot. Please reach out to a crisis line.",
		"Some nights I still want to die.",
		"We went for a walk on Sunday.",
	}
	together := []bool{true, false, true, true}
	all, each := AssessEach(texts, together)
	var writer []string
	for i, text := range texts {
		require.Equal(t, Assess([]string{text}), each[i], text)
		if together[i] {
			writer = append(writer, text)
		}
	}
	require.Equal(t, Assess(writer), all)
}
