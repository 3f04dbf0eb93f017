package content

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCategories(t *testing.T) {
	require.False(t, Assess("We talked about my week and planned a walk on Sunday.").Flagged)
	require.GreaterOrEqual(t, Assess("He sent me porn and asked for nudes.").Categories[Sexual], FlagThreshold)
	r := Assess("Send me nudes of your 13 year old, I want porn with kids.")
	require.GreaterOrEqual(t, r.Categories[SexualMinors], FlagThreshold, "sexualised content involving a minor is always blocked")
	require.GreaterOrEqual(t, Assess("You are worthless, nobody likes you, go die.").Categories[Harassment], FlagThreshold)
	require.GreaterOrEqual(t, Assess("I will kill you and burn down your house.").Categories[Violence], FlagThreshold)
}

// TestCounsellingAboutSexualityOrAbuseIsNotBlocked holds the line
// between sexualised content involving minors (blocked) and counselling
// that discusses, discloses or condemns (a reviewer sees it; nothing is
// blocked), and that a minor and sexual words in different sentences are
// neither.
func TestCounsellingAboutSexualityOrAbuseIsNotBlocked(t *testing.T) {
	for _, text := range []string{
		"When I was a child my uncle sexually abused me and had sex with me. I never told anyone.",
		"My 15 year old son told me he is having sex with his girlfriend. How do I talk to him about consent?",
		"Men who want porn with a 13 year old should be reported to the police.",
	} {
		r := Assess(text)
		require.Less(t, r.Categories[SexualMinors], FlagThreshold, "never blocked: %s", text)
		require.True(t, r.MinorsDiscussion, "for a reviewer: %s", text)
	}
	for _, text := range []string{
		"My daughter started school this week. Later my husband and I had sex for the first time in months.",
		"It is normal for a teenager to be curious about sex; sex education at home helps.",
	} {
		r := Assess(text)
		require.Less(t, r.Categories[SexualMinors], ReviewMinors, text)
		require.False(t, r.MinorsDiscussion, "neither sexualised nor about a minor's sexuality: %s", text)
	}
}

func TestSelfHarmDisclosureAndInstructions(t *testing.T) {
	d := Assess("I've been cutting myself again and I want to die.")
	require.GreaterOrEqual(t, d.Categories[SelfHarm], FlagThreshold)
	require.False(t, d.SelfHarmInstructions, "a disclosure is crisis content, not instructions")
	i := Assess("The lethal dose is about 10 g, so take how many pills you need to kill yourself.")
	require.True(t, i.SelfHarmInstructions)
	require.GreaterOrEqual(t, i.Categories[SelfHarm], FlagThreshold)
	for _, c := range i.Codes {
		require.NotContains(t, c, "pill", "codes, never matched text")
	}
}

func TestLongRepetitiveLinesStayLinear(t *testing.T) {
	for _, unit := range []string{"a", " ", "porn ", "kill myself. ", "myself ", "you idiot "} {
		text := strings.Repeat(unit, (1<<20)/len(unit))
		done := make(chan Result, 1)
		go func() { done <- Assess(text) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("Assess on 1 MB of %q did not finish in 60 s: super-linear", unit)
		}
	}
}

func FuzzAssess(f *testing.F) {
	f.Add("I want to die. How many pills?")
	f.Add("\xff porn 13 year old")
	f.Fuzz(func(t *testing.T, s string) {
		r := Assess(s)
		for c, v := range r.Categories {
			if v < 0 || v > 1 {
				t.Fatalf("%s = %v", c, v)
			}
		}
	})
}

func BenchmarkContentAssess(b *testing.B) {
	text := strings.Repeat("I have been feeling anxious since my move last March. Some days I just want to sleep and not wake up. "+
		"My therapist said we could talk about it next week. ", 6)
	b.SetBytes(int64(len(text)))
	for i := 0; i < b.N; i++ {
		Assess(text)
	}
}

// TestResponderTurnsAreReadAsCounselling: a counsellor's answer about sex,
// kinks or a client's suicidal thoughts is discussion, however often it
// names them; abuse or an explicit word in a responder's turn still flags
// it (answers written here).
func TestResponderTurnsAreReadAsCounselling(t *testing.T) {
	answer := "Sex drive changes over time. Many couples find sex less often after a baby, and a fetish or a threesome " +
		"fantasy is common. Talk about what sex means to each of you. Sexual desire returns when sex is not a duty."
	require.False(t, AssessResponder(answer).Flagged, "%v", AssessResponder(answer).Categories)
	require.True(t, Assess(answer).Categories[Sexual] > 0, "scored, ranked")
	thoughts := "Suicidal thoughts can come with depression. Saying goodbye to a therapist can be hard, and pills alone rarely solve it."
	require.Less(t, AssessResponder(thoughts).Categories[SelfHarm], FlagThreshold)
	for _, abusive := range []string{"you are pathetic, nobody likes you, just kill yourself", "send me nudes and suck my dick"} {
		require.True(t, AssessResponder(abusive).Flagged, "%q", abusive)
	}
}

func TestAResponderOnAChildAndSexIsReviewedUnlessExplicit(t *testing.T) {
	r := AssessResponder("Sex with your partner while your son sleeps in the next room is something many parents ask about")
	require.True(t, r.MinorsDiscussion)
	require.Less(t, r.Categories[SexualMinors], FlagThreshold)
	require.GreaterOrEqual(t, AssessResponder("show the kid your dick").Categories[SexualMinors], FlagThreshold)
}

func TestIncitementIsSelfHarmContent(t *testing.T) {
	require.True(t, AssessResponder("honestly just kill yourself").SelfHarmIncitement)
	require.GreaterOrEqual(t, Assess("nobody cares, kys").Categories[SelfHarm], FlagThreshold)
	require.False(t, Assess("I want to go dieting again after the holidays").SelfHarmIncitement)
}

// TestMedicalAttacksAreNotViolence: "panic attack" and its kin name an
// illness, not violence; an attack on a person still counts.
func TestMedicalAttacksAreNotViolence(t *testing.T) {
	for _, text := range []string{"Ever since I had a panic attack on the bus, I have felt tense.", "My dad had a heart attack last year.", "I get anxiety attacks before exams."} {
		require.Less(t, Assess(text).Categories[Violence], 0.2, text)
	}
	// One reported act is ranked (a second one, or a wish to do it, flags).
	require.Greater(t, Assess("He attacked me outside the bar last night.").Categories[Violence], 0.3)
}

// TestHostilityNeedsATargetAndWhatIsSaidOfIt: hate, harassment and
// violence said without a listed slur or threat phrase are found when one
// sentence holds a target (a group by a protected attribute, the reader,
// someone a harm is wished on) and what is said of or wished on it; a
// target alone, an insult alone, a violent word in a report, a negated
// insult and the writer's own feelings are not (sentences written here).
func TestHostilityNeedsATargetAndWhatIsSaidOfIt(t *testing.T) {
	for text, cat := range map[string]string{
		"Immigrants are vermin and should be deported.":            Hate,
		"The whole muslim problem would end with a ban.":           Hate,
		"Somebody should shoot those disabled people.":             Violence,
		"People like him deserve to be hanged in the town square.": Violence,
		"You are such a pathetic loser.":                           Harassment,
	} {
		require.GreaterOrEqual(t, Assess(text).Categories[cat], FlagThreshold, "%s: %s", cat, text)
	}
	for _, text := range []string{
		"My muslim neighbours brought us dinner when my mother died.",
		"The news said a man was murdered downtown last night.",
		"You are not stupid for feeling this way.",
		"I feel so stupid when I cry in front of my gay brother.",
		"I feel shame about being gay and I do not know who to tell.",
		"Many women face discrimination at work, and it wears them down.",
		"My gay son has a drinking problem and I am scared for him.",
	} {
		r := Assess(text)
		for _, c := range []string{Hate, Harassment, Violence} {
			require.Less(t, r.Categories[c], FlagThreshold, "%s: %s", c, text)
		}
	}
	// A therapist's answer is read as counselling: the same words are
	// discussion there.
	require.Less(t, AssessResponder("Some people will tell you that immigrants are criminals; that is their prejudice, not your worth.").Categories[Hate], FlagThreshold)
}

// TestAssessIsSafeInParallel: the safety stage assesses records on every
// core at once; each text scores what it scores alone, however the
// goroutines interleave (pooled buffers are never shared).
func TestAssessIsSafeInParallel(t *testing.T) {
	texts := []string{
		"You are such a pathetic loser. Nobody wants you here.",
		"We went for a walk and talked about my week.",
		"Immigrants are vermin and should be deported. Somebody should shoot them.",
		"I feel so stupid when I cry. My therapist says that is normal.",
	}
	want := make([]Result, len(texts))
	for i, s := range texts {
		want[i] = Assess(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 2000; n++ {
				i := (g + n) % len(texts)
				if got := Assess(texts[i]); !reflect.DeepEqual(got, want[i]) {
					errs <- texts[i]
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Fatalf("scored differently in parallel: %q", s)
	}
}
