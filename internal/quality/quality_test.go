package quality

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/stage"
)

func conv(turns ...string) []stage.Message {
	var ms []stage.Message
	for i, t := range turns {
		role := stage.RoleUser
		if i%2 == 1 {
			role = stage.RoleAssistant
		}
		ms = append(ms, stage.Message{Role: role, Content: t})
	}
	return ms
}

func TestGoodConversationScoresHigh(t *testing.T) {
	r := Assess(conv("I keep getting this tight feeling in my chest before meetings at work.",
		"That sounds really hard. Can you tell me more about when it started?",
		"It started a few months ago, around the time things changed at home.",
		"It makes sense that you feel this way given everything going on."), 0)
	require.Equal(t, 1.0, r.Score, "%+v", r)
	require.Empty(t, r.Reasons(DefaultMinScore))
	require.Equal(t, "en", r.Language)
}

func TestEachDefectIsNamed(t *testing.T) {
	user := "I keep getting this tight feeling in my chest before meetings at work and it scares me."
	cases := map[string][]stage.Message{
		RuleRepetition:     conv(user, strings.Repeat("I understand. ", 30)),
		RuleCopiedResponse: conv(user, user),
		RuleGibberish:      conv(user, "qx zv bn mk lp wq rt yu io pz xc vb nm as df gh jk"),
		RuleDuplicateTurns: conv(user, "Tell me more.", user, "Tell me more."),
		RuleBoilerplate:    conv(user, "Lorem ipsum dolor sit amet, please read our privacy policy before continuing with us."),
	}
	for rule, msgs := range cases {
		r := Assess(msgs, 0)
		require.Contains(t, r.Failed, rule, "%s: %+v", rule, r)
		require.Less(t, r.Score, DefaultMinScore, rule)
		require.Contains(t, r.Reasons(DefaultMinScore), rule)
	}
	r := Assess(conv(user, "That sounds hard. When did it start?"), 2)
	require.Contains(t, r.Reasons(DefaultMinScore), RuleEmptyTurns)
}

// Crisis disclosures are the safety stage's to judge: quality reads no
// crisis words, so a well-formed disclosure scores like any conversation.
func TestCrisisWordsDoNotLowerTheScore(t *testing.T) {
	r := Assess(conv("I have been thinking about killing myself and I wrote a goodbye note last night.",
		"Thank you for telling me. Are you safe right now? You can call or text 988 any time, day or night."), 0)
	require.Equal(t, 1.0, r.Score, "%+v", r)
}

func TestShortExchangesAreNotPenalisedForLength(t *testing.T) {
	r := Assess(conv("Hi", "Hello, how are you feeling today?"), 0)
	require.GreaterOrEqual(t, r.Score, DefaultMinScore, "%+v", r)
	r = Assess(conv("bye", "bye"), 0)
	require.NotContains(t, r.Failed, RuleCopiedResponse, "short echoes are normal")
}

func TestParseRequest(t *testing.T) {
	_, err := ParseRequest([]byte(`{"min_score":1.5}`))
	require.ErrorContains(t, err, "min_score")
	_, err = ParseRequest([]byte(`{"minimum":0.2}`))
	require.ErrorContains(t, err, "enabled and min_score")
	s, ok := Resolve([]byte(`{"min_score":0.7}`))
	require.True(t, ok)
	require.Equal(t, 0.7, s.MinScore)
	_, ok = Resolve([]byte(`{"enabled":false}`))
	require.False(t, ok)
}

func FuzzAssess(f *testing.F) {
	f.Add("hello there", "hi", 0)
	f.Add(strings.Repeat("a ", 100), "", 1)
	f.Add("\xff\xfe", "’’’", 0)
	f.Fuzz(func(t *testing.T, a, b string, empty int) {
		r := Assess(conv(a, b), empty%4)
		require.GreaterOrEqual(t, r.Score, 0.0)
		require.LessOrEqual(t, r.Score, 1.0)
	})
}

// A 1 MB turn of one repeated character is scored in linear time.
func TestLongTurnIsLinear(t *testing.T) {
	r := Assess(conv(strings.Repeat("a", 1<<20), strings.Repeat("ab ", 1<<18)), 0)
	require.Less(t, r.Score, 1.0)
}

func BenchmarkQualityAssess(b *testing.B) {
	msgs := conv("I keep getting this tight feeling in my chest before meetings at work, and lately it starts the night before.",
		"That sounds really hard. Can you tell me more about when it started and what you notice in your body?",
		"It started a few months ago, around the time things changed at home. My partner moved out and I have been alone since.",
		"It makes sense that you feel this way given everything going on. Let's think about one small step you could take this week.",
		"I guess I could try writing things down before bed, or going for a walk after work instead of staying at my desk.",
		"Those both sound like good places to start. What would you say to a friend who was going through the same thing?")
	n := 0
	for _, m := range msgs {
		n += len(m.Content)
	}
	b.SetBytes(int64(n))
	for b.Loop() {
		Assess(msgs, 0)
	}
}

// hasAnchor finds what a search for each anchor finds.
func TestHasAnchorAgreesWithASearchPerAnchor(t *testing.T) {
	texts := []string{"", "l", "Lorem Ipsum dolor", "see our Privacy Policy", "COOKIE POLICY", "we use cookies here",
		"as an AI language model I", "Click Here!", "subscribe", "All Rights Reserved.", "orem", "xxorem ipsumxx",
		"nothing to see", "terms of", "Terms Of Use", "javascrip", "JavaScript required", "rivac", "ookie"}
	for _, s := range texts {
		want := false
		for _, a := range anchors {
			want = want || strings.Contains(s, a)
		}
		if got := hasAnchor(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
