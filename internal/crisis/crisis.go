// Package crisis grades suicide risk in a conversation the way the
// Columbia Suicide Severity Rating Scale orders it: none < indicator
// (distress, hopelessness) < ideation (wishing to be dead, thoughts of
// suicide) < behavior (self-harm, plans, preparations) < attempt. Phrases
// are matched per sentence and then weighed by who they are about (the
// writer, or someone else), negation ("I'm not suicidal"), hypotheticals
// ("if I ever…") and time ("years ago"). A conversation's level is its
// strongest signal about the writer. Results carry short indicator codes,
// never matched text.
package crisis

import (
	"slices"
	"sort"
	"strings"

	"github.com/dspipe/dspipe/internal/textmatch"
)

// Levels, in order of severity.
const (
	None      = "none"
	Indicator = "indicator"
	Ideation  = "ideation"
	Behavior  = "behavior"
	Attempt   = "attempt"
)

// Rank orders levels: none 0 … attempt 4.
func Rank(level string) int {
	switch level {
	case Indicator:
		return 1
	case Ideation:
		return 2
	case Behavior:
		return 3
	case Attempt:
		return 4
	}
	return 0
}

// levels are the levels by Rank, and levelScore their scores.
var (
	levels     = [...]string{None, Indicator, Ideation, Behavior, Attempt}
	levelScore = [...]float64{0, 0.3, 0.6, 0.8, 0.95}
)

// Result is the assessment of one text or conversation.
type Result struct {
	Level      string     `json:"level"`
	Score      float64    `json:"score"`
	Indicators []string   `json:"indicators"`
	Evidence   []Evidence `json:"evidence,omitempty"`
	// Disclosed: some signal at ideation or above has the writer as its
	// subject (a first-person disclosure, past or present), not a topic
	// named without a subject or someone else's story.
	Disclosed bool `json:"-"`
}

type pattern struct {
	phrase string
	level  string
	code   string
	// self: the phrase itself says it is about the writer ("kill myself").
	self bool
}

// patterns are written with apostrophes removed and lower-case, as the
// text is normalised the same way.
var patterns = []pattern{
	// Attempts: past actions meant to end one's life.
	{"tried to kill myself", Attempt, "attempt.tried", true},
	{"tried to end my life", Attempt, "attempt.tried", true},
	{"tried to take my own life", Attempt, "attempt.tried", true},
	{"tried to commit suicide", Attempt, "attempt.tried", false},
	{"attempted suicide", Attempt, "attempt.stated", false},
	{"suicide attempt", Attempt, "attempt.stated", false},
	{"my attempt", Attempt, "attempt.stated", true},
	{"my last attempt", Attempt, "attempt.stated", true},
	{"i attempted", Attempt, "attempt.stated", true},
	{"i overdosed", Attempt, "attempt.overdose", true},
	{"tried to overdose", Attempt, "attempt.overdose", false},
	{"took a bunch of pills", Attempt, "attempt.overdose", false},
	{"took all my pills", Attempt, "attempt.overdose", true},
	{"tried to hang myself", Attempt, "attempt.hanging", true},
	{"slit my wrists", Attempt, "attempt.cutting", true},
	{"pumped my stomach", Attempt, "attempt.medical", true},
	{"woke up in the hospital", Attempt, "attempt.medical", false},
	{"survived my", Attempt, "attempt.survived", true},
	{"failed attempt", Attempt, "attempt.stated", false},
	{"took a lot of pills", Attempt, "attempt.overdose", false},
	{"took too many pills", Attempt, "attempt.overdose", false},
	{"swallowed a bottle", Attempt, "attempt.overdose", false},
	{"swallowed all", Attempt, "attempt.overdose", false},
	{"ended up in the er", Attempt, "attempt.medical", false},
	{"had my stomach pumped", Attempt, "attempt.medical", true},
	{"tried killing myself", Attempt, "attempt.tried", true},
	{"tried ending my life", Attempt, "attempt.tried", true},
	{"tried to od", Attempt, "attempt.overdose", false},
	{"tried oding", Attempt, "attempt.overdose", false},
	{"made an attempt", Attempt, "attempt.stated", false},
	{"halfhearted attempt", Attempt, "attempt.stated", false},
	{"half hearted attempt", Attempt, "attempt.stated", false},
	{"my first attempt", Attempt, "attempt.stated", true},
	{"my second attempt", Attempt, "attempt.stated", true},
	{"my previous attempt", Attempt, "attempt.stated", true},
	{"since my attempt", Attempt, "attempt.stated", true},
	{"after my attempt", Attempt, "attempt.stated", true},

	// Behaviour: self-harm, plans, preparation, rehearsal.
	{"cut myself", Behavior, "behavior.self_harm", true},
	{"cutting myself", Behavior, "behavior.self_harm", true},
	{"i cut", Behavior, "behavior.self_harm", true},
	{"i self harm", Behavior, "behavior.self_harm", true},
	{"self harm", Behavior, "behavior.self_harm", false},
	{"selfharm", Behavior, "behavior.self_harm", false},
	{"self harming", Behavior, "behavior.self_harm", false},
	{"selfharming", Behavior, "behavior.self_harm", false},
	{"self harmed", Behavior, "behavior.self_harm", false},
	{"back to self harming", Behavior, "behavior.self_harm", true},
	{"started self harming", Behavior, "behavior.self_harm", true},
	// Urges and wishes to self-harm: ideation of self-injury, the
	// writer's own unless someone else is named.
	{"urge to self harm", Ideation, "ideation.self_harm_urge", true},
	{"urges to self harm", Ideation, "ideation.self_harm_urge", true},
	{"urge to cut", Ideation, "ideation.self_harm_urge", true},
	{"urges to cut", Ideation, "ideation.self_harm_urge", true},
	{"want to cut", Ideation, "ideation.self_harm_urge", false},
	{"wanna cut", Ideation, "ideation.self_harm_urge", false},
	{"burn myself", Behavior, "behavior.self_harm", true},
	{"hurt myself", Behavior, "behavior.self_harm", true},
	{"hurting myself", Behavior, "behavior.self_harm", true},
	{"i have a plan", Behavior, "behavior.plan", true},
	{"my plan", Behavior, "behavior.plan", true},
	{"planning to kill myself", Behavior, "behavior.plan", true},
	{"plan to kill myself", Behavior, "behavior.plan", true},
	{"planning to end my life", Behavior, "behavior.plan", true},
	{"planning my suicide", Behavior, "behavior.plan", true},
	{"plan of mine", Behavior, "behavior.plan", true},
	{"self-harm", Behavior, "behavior.self_harm", false},
	{"self-harming", Behavior, "behavior.self_harm", false},
	{"self-harmed", Behavior, "behavior.self_harm", false},
	{"i self-harm", Behavior, "behavior.self_harm", true},
	{"poison myself", Ideation, "ideation.suicide", true},
	{"finish the job", Attempt, "attempt.stated", false},
	{"planned my", Behavior, "behavior.plan", true},
	{"bought a gun", Behavior, "behavior.means", false},
	{"bought a rope", Behavior, "behavior.means", false},
	{"tied a noose", Behavior, "behavior.means", false},
	{"noose", Behavior, "behavior.means", false},
	{"stockpil", Behavior, "behavior.means", false},
	{"saving up pills", Behavior, "behavior.means", false},
	{"saved up pills", Behavior, "behavior.means", false},
	{"suicide note", Behavior, "behavior.note", false},
	{"wrote a note", Behavior, "behavior.note", false},
	{"goodbye letter", Behavior, "behavior.note", false},
	{"goodbye note", Behavior, "behavior.note", false},
	{"wrote a goodbye", Behavior, "behavior.note", false},
	{"said my goodbyes", Behavior, "behavior.preparation", true},
	{"wrote my will", Behavior, "behavior.preparation", true},
	{"gave away my", Behavior, "behavior.preparation", true},
	{"on the edge of the bridge", Behavior, "behavior.rehearsal", false},
	{"gun to my head", Behavior, "behavior.rehearsal", true},
	{"knife to my", Behavior, "behavior.rehearsal", true},
	{"relapsed", Behavior, "behavior.self_harm", false},
	{"i have a gun", Behavior, "behavior.means", true},
	{"my gun", Behavior, "behavior.means", true},
	{"pills", Behavior, "behavior.means", false},
	{"overdose", Behavior, "behavior.means", false},
	{"razor", Behavior, "behavior.means", false},
	{"blade", Behavior, "behavior.means", false},
	{"hang myself", Behavior, "behavior.means", true},
	{"jump off", Behavior, "behavior.means", false},
	{"bleach", Behavior, "behavior.means", false},
	{"gun", Behavior, "behavior.means", false},
	{"guns", Behavior, "behavior.means", false},
	{"9mm", Behavior, "behavior.means", false},
	{"pistol", Behavior, "behavior.means", false},
	{"revolver", Behavior, "behavior.means", false},
	{"shotgun", Behavior, "behavior.means", false},
	{"firearm", Behavior, "behavior.means", false},
	{"bullet", Behavior, "behavior.means", false},
	{"rope", Behavior, "behavior.means", false},
	{"oxy", Behavior, "behavior.means", false},
	{"cleaning products", Behavior, "behavior.means", false},
	{"ledge", Behavior, "behavior.means", false},
	{"train tracks", Behavior, "behavior.means", false},
	{"carbon monoxide", Behavior, "behavior.means", false},
	{"close to doing it", Behavior, "behavior.intent", false},
	{"going to do it", Behavior, "behavior.intent", false},
	{"do it tonight", Behavior, "behavior.intent", false},
	{"too late", Behavior, "behavior.intent", false},
	{"done with this world", Behavior, "behavior.intent", false},
	{"my research", Behavior, "behavior.preparation", true},
	{"researched how", Behavior, "behavior.preparation", false},
	{"researched ways", Behavior, "behavior.preparation", false},
	{"painless way", Behavior, "behavior.preparation", false},
	{"scars", Behavior, "behavior.self_harm", false},

	// Ideation: wishing to be dead, thinking of suicide.
	{"kill myself", Ideation, "ideation.suicide", true},
	{"killing myself", Ideation, "ideation.suicide", true},
	{"end my life", Ideation, "ideation.suicide", true},
	{"ending my life", Ideation, "ideation.suicide", true},
	{"take my own life", Ideation, "ideation.suicide", true},
	{"take my life", Ideation, "ideation.suicide", true},
	{"end it all", Ideation, "ideation.suicide", false},
	{"want to die", Ideation, "ideation.wish_dead", false},
	{"wanna die", Ideation, "ideation.wish_dead", false},
	{"wish i was dead", Ideation, "ideation.wish_dead", true},
	{"wish for my death", Ideation, "ideation.wish_dead", true},
	{"wish for death", Ideation, "ideation.wish_dead", false},
	{"wish i could die", Ideation, "ideation.wish_dead", true},
	{"wish i were dead", Ideation, "ideation.wish_dead", true},
	{"wish i wasnt alive", Ideation, "ideation.wish_dead", true},
	{"wish i was never born", Ideation, "ideation.wish_dead", true},
	{"better off dead", Ideation, "ideation.wish_dead", false},
	{"better off without me", Ideation, "ideation.burden", true},
	{"better off if i wasnt here", Ideation, "ideation.burden", true},
	{"better off if i werent here", Ideation, "ideation.burden", true},
	{"better off if i was gone", Ideation, "ideation.burden", true},
	{"better off if i were gone", Ideation, "ideation.burden", true},
	{"better off if i wasnt around", Ideation, "ideation.burden", true},
	{"thoughts about ending my life", Ideation, "ideation.suicide", true},
	{"dont want to live", Ideation, "ideation.wish_dead", false},
	{"dont want to be alive", Ideation, "ideation.wish_dead", false},
	{"dont want to exist", Ideation, "ideation.wish_dead", false},
	{"no reason to live", Ideation, "ideation.wish_dead", false},
	{"will to live", Ideation, "ideation.wish_dead", false},
	{"desire to live", Ideation, "ideation.wish_dead", false},
	{"not waking up", Ideation, "ideation.wish_dead", false},
	{"stick around", Ideation, "ideation.wish_dead", false},
	{"im done", Ideation, "ideation.giving_up", true},
	{"killed himself", Ideation, "ideation.exposure", false},
	{"killed herself", Ideation, "ideation.exposure", false},
	{"not wake up", Ideation, "ideation.wish_dead", false},
	// Passive wishes to be dead (the C-SSRS's first ideation item).
	{"my death", Ideation, "ideation.wish_dead", true},
	{"death wish", Ideation, "ideation.wish_dead", false},
	{"if i was dead", Ideation, "ideation.wish_dead", true},
	{"if i were dead", Ideation, "ideation.wish_dead", true},
	{"if i died", Ideation, "ideation.wish_dead", true},
	{"looking for death", Ideation, "ideation.wish_dead", false},
	{"welcome death", Ideation, "ideation.wish_dead", false},
	{"tired of living", Ideation, "ideation.wish_dead", false},
	{"tired of being alive", Ideation, "ideation.wish_dead", false},
	{"dont want to wake up", Ideation, "ideation.wish_dead", false},
	{"sleep forever", Ideation, "ideation.wish_dead", false},
	{"cease to exist", Ideation, "ideation.wish_dead", false},
	{"stop existing", Ideation, "ideation.wish_dead", false},
	{"rather be dead", Ideation, "ideation.wish_dead", false},
	{"rather die", Ideation, "ideation.wish_dead", false},
	{"ready to die", Ideation, "ideation.wish_dead", false},
	{"want it all to end", Ideation, "ideation.wish_dead", false},
	{"want it to end", Ideation, "ideation.wish_dead", false},
	{"want to disappear", Ideation, "ideation.wish_dead", false},
	{"alive feels like", Ideation, "ideation.wish_dead", false},
	{"suicidal", Ideation, "ideation.suicidal", false},
	{"suicide", Ideation, "ideation.suicide", false},
	{"commit suicide", Ideation, "ideation.suicide", false},
	{"kms", Ideation, "ideation.suicide", false},

	// Indicators: distress without a statement of ideation.
	{"hopeless", Indicator, "indicator.hopeless", false},
	{"worthless", Indicator, "indicator.worthless", false},
	{"cant go on", Indicator, "indicator.cant_go_on", false},
	{"no point", Indicator, "indicator.hopeless", false},
	{"nothing matters", Indicator, "indicator.hopeless", false},
	{"im a burden", Indicator, "indicator.burden", true},
	{"a burden to", Indicator, "indicator.burden", false},
	{"depressed", Indicator, "indicator.depressed", false},
	{"depression", Indicator, "indicator.depressed", false},
	{"so alone", Indicator, "indicator.alone", false},
	{"empty inside", Indicator, "indicator.empty", false},
	{"cant take it anymore", Indicator, "indicator.cant_go_on", false},
	{"give up", Indicator, "indicator.give_up", false},
	{"hate myself", Indicator, "indicator.self_hate", true},
	{"hate my life", Indicator, "indicator.self_hate", true},
}

// distress lists risk factors and distress in the writer's own words
// (the C-SSRS's indicators short of ideation). Each counts only with the
// writer as its subject, since supporters name them of others. Words of
// everyday low mood that counselling talk is made of (lonely, tired,
// anxious, numb) are left out: they would make nearly every client an
// indicator.
var distress = strings.Split("feeling down,feel down,lost motivation,lost all motivation,lost a lot of motivation,no motivation,"+
	"have no friends,no one to talk to,nobody to talk to,wants me gone,want me gone,downward spiral,tired of everything,so tired of,"+
	"im sad,so sad,nobody cares,no one cares,broke down,breaking down,miserable,trapped,falling apart,"+
	"homeless,live in my car,out of time,cant cope,hurts so much,ruined my life,lost everything", ",")

var (
	firstPerson = toSet("i im ive id ill me my mine myself")
	otherPerson = toSet("you youre youve your yourself he hes him his himself she shes her herself they theyre them their themselves " +
		"friend friends brother sister mom mum dad mother father son daughter wife husband boyfriend girlfriend cousin someone somebody people person op")
	negators    = toSet("not never dont didnt wont wouldnt cant no isnt arent wasnt nor")
	clauseBreak = toSet("how why what that if because but and when")
	hypothesis  = []string{"if i ever", "what if", "if i were to", "if you", "would you", "imagine", "in case"}
	pastWords   = []string{"years ago", "when i was younger", "as a teen", "in high school", "used to", "back then", "long time ago", "months ago"}
)

// supportCues mark a writer who is talking to someone else about their
// risk: advice, referrals, reassurance.
var supportCues = textmatch.New(func() []textmatch.Phrase {
	var ps []textmatch.Phrase
	for _, c := range []string{"you should", "you could", "you can", "please reach out", "reach out to", "please talk", "talk to someone",
		"hotline", "lifeline", "crisis line", "call 988", "text 988", "988", "samaritans", "you are not alone", "youre not alone",
		"it gets better", "never the answer", "is not the answer", "isnt the answer", "here for you", "if you need to talk", "pm me",
		"dm me", "stay safe", "hang in there", "sending hugs", "you matter", "you deserve"} {
		ps = append(ps, textmatch.Phrase{Text: c})
	}
	return ps
}())

// support reports whether a normalised text reads as support of another
// person, looking only when first asked (most texts never need it).
type support struct {
	text        string
	known, some bool
}

func (s *support) is() bool {
	if !s.known {
		s.known, s.some = true, supportCues.Any(s.text)
	}
	return s.some
}

func toSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// sentences splits normalised text at sentence ends and line breaks.
func sentences(s string) []string {
	// The delimiters are ASCII, so a byte scan splits UTF-8 text safely.
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case '.', '!', '?', '\n', ';':
			default:
				continue
			}
		}
		if i > start {
			out = append(out, s[start:i])
		}
		start = i + 1
	}
	return out
}

// hit is one matched phrase, weighed.
type hit struct {
	level  string
	code   string
	weight float64
}

// Evidence is what one post (turn) of the writer says on its own: which
// post, by index, and the level it alone would get. A user's level is
// taken over all their posts together, so a disclosure spread over
// several posts, or an attempt told in an old post, still counts.
type Evidence struct {
	Post  int    `json:"post"`
	Level string `json:"level"`
}

// Assess grades a conversation given as the texts of the writer's turns (or
// one person's posts). Evidence lists the posts that reach indicator or
// above on their own.
func Assess(texts []string) Result {
	all := newTally()
	var evidence []Evidence
	for i, t := range texts {
		post := newTally()
		scan(t, func(h hit) {
			all.code(h.code)
			post.add(h)
			all.add(h)
		})
		if len(texts) > 1 {
			if lv, _ := post.decide(); lv != None {
				evidence = append(evidence, Evidence{Post: i, Level: lv})
			}
		}
	}
	return all.result(evidence)
}

// AssessEach grades each text on its own, as Assess([]string{text})
// would, and the texts whose together[i] is true as one writer's turns,
// as Assess would: one pass over each text for both.
func AssessEach(texts []string, together []bool) (Result, []Result) {
	norms := make([]string, len(texts))
	for i, t := range texts {
		norms[i] = textmatch.Normalise(t)
	}
	return AssessEachNormalised(norms, together)
}

// AssessEachNormalised is AssessEach over texts already passed through
// textmatch.Normalise (the safety stage normalises each turn once for
// crisis and content).
func AssessEachNormalised(norms []string, together []bool) (Result, []Result) {
	texts := norms
	n := 0
	for _, t := range together {
		if t {
			n++
		}
	}
	all := newTally()
	var evidence []Evidence
	each := make([]Result, len(texts))
	k := 0
	for i, t := range texts {
		post := newTally()
		mine := i < len(together) && together[i]
		scanNormalised(t, func(h hit) {
			post.code(h.code)
			post.add(h)
			if mine {
				all.code(h.code)
				all.add(h)
			}
		})
		each[i] = post.result(nil)
		if mine {
			if n > 1 && each[i].Level != None {
				evidence = append(evidence, Evidence{Post: k, Level: each[i].Level})
			}
			k++
		}
	}
	return all.result(evidence), each
}

// scan calls fn with every weighed phrase of a text, sentence by sentence.
func scan(t string, fn func(hit)) { scanNormalised(textmatch.Normalise(t), fn) }

// scanNormalised is scan over textmatch.Normalise's result.
func scanNormalised(norm string, fn func(hit)) {
	supporter := &support{text: norm}
	for _, sent := range sentences(norm) {
		for _, h := range assessSentence(sent, supporter) {
			fn(h)
		}
	}
}

// result is a tally's level, score and codes.
func (t *tally) result(evidence []Evidence) Result {
	res := Result{Level: None, Indicators: []string{}, Evidence: evidence, Disclosed: t.disclosed >= 0.6}
	res.Level, res.Score = t.decide()
	res.Indicators = append(res.Indicators, t.codes...)
	sort.Strings(res.Indicators)
	return res
}

// tally is the strongest weight and the number of hits per level (by
// Rank), and the codes seen, once each.
type tally struct {
	best      [len(levels)]float64
	counts    [len(levels)]int
	codes     []string
	disclosed float64 // the strongest weight at ideation or above
}

func newTally() *tally { return &tally{} }

func (t *tally) code(c string) {
	if !slices.Contains(t.codes, c) {
		t.codes = append(t.codes, c)
	}
}

func (t *tally) add(h hit) {
	if h.weight <= 0 {
		return
	}
	r := Rank(h.level)
	if r >= Rank(Ideation) {
		t.disclosed = max(t.disclosed, h.weight)
	}
	t.counts[r]++
	if h.weight > t.best[r] {
		t.best[r] = h.weight
	}
}

// topicWords name the subject itself; bareTopic is their weight with no
// subject (under the ideation threshold of 0.3: indicator).
var topicWords = map[string]bool{"suicide": true, "suicidal": true, "commit suicide": true, "self harm": true, "self-harm": true, "selfharm": true,
	"self harming": true, "self-harming": true}

const bareTopic = 0.25

// indicatorFloor is the weight an indicator needs: distress words about
// someone else (weight 0.15) are a supporter's, not the writer's.
const indicatorFloor = 0.3

// decide turns a tally into a level and score. The thresholds: attempt
// and behaviour need one strong signal about the writer (weight ≥ 0.75:
// the writer is the subject, no negation or hypothetical) or two weaker
// ones; weaker ones count as ideation. Ideation needs one mention about
// the writer (weight ≥ 0.3), because a missed ideation costs more than a
// second look; any indicator counts.
func (t *tally) decide() (string, float64) {
	best, counts := t.best, t.counts // copies
	attempt, behavior, ideation, indicator := Rank(Attempt), Rank(Behavior), Rank(Ideation), Rank(Indicator)
	for _, r := range []int{attempt, behavior} {
		if w := best[r]; w > 0 && !(w >= 0.75 || (w >= 0.4 && counts[r] >= 2)) {
			best[ideation] = max(best[ideation], w)
			counts[ideation]++
		}
	}
	for _, r := range []int{attempt, behavior, ideation, indicator} {
		w := best[r]
		if w >= 0.75 || (w >= 0.4 && counts[r] >= 2) || (r == ideation && w >= 0.3) || (r == indicator && w >= indicatorFloor) {
			return levels[r], levelScore[r] * min(1, 0.85+0.05*float64(counts[r]))
		}
	}
	// Weak signals still raise the score a little.
	var score float64
	for r, w := range best {
		score = max(score, levelScore[r]*w*0.5)
	}
	return None, score
}

// assessSentence finds the phrases in one normalised sentence. A phrase
// found inside a longer one of the same sentence (kill myself within
// tried to kill myself) counts once, at the longer phrase's level.
func assessSentence(s string, supporter *support) []hit {
	type match struct{ p, start, end int }
	var ms []match
	matcher.Each(s, func(p, start, end int) { ms = append(ms, match{p, start, end}) })
	if len(ms) == 0 {
		return nil
	}
	// Longer phrases claim their bytes first, then the more severe: a
	// phrase inside a claimed one ("kill myself" inside "tried to kill
	// myself", "self harm" inside "urge to self harm") counts once, at
	// the claimer's level.
	sort.SliceStable(ms, func(i, j int) bool {
		if li, lj := ms[i].end-ms[i].start, ms[j].end-ms[j].start; li != lj {
			return li > lj
		}
		return ms[i].p < ms[j].p
	})
	past := false
	for _, c := range pastWords {
		if strings.Contains(s, c) {
			past = true
			break
		}
	}
	taken := make([]bool, len(s))
	hits := make([]hit, 0, len(ms))
	for _, m := range ms {
		if taken[m.start] || taken[m.end-1] {
			continue
		}
		for b := m.start; b < m.end; b++ {
			taken[b] = true
		}
		hits = append(hits, weigh(s, m.start, patterns[m.p], past, supporter))
	}
	return hits
}

// matcher finds every pattern in one pass over a sentence.
var matcher = func() *textmatch.Matcher {
	for _, d := range distress {
		patterns = append(patterns, pattern{d, Indicator, "indicator.distress", false})
	}
	ps := make([]textmatch.Phrase, len(patterns))
	for i, p := range patterns {
		ps[i] = textmatch.Phrase{Text: p.phrase, Stem: stems[p.phrase]}
	}
	return textmatch.New(ps)
}()

var stems = map[string]bool{"stockpil": true}

// cutIdiom are words after "i cut" that make it something other than
// self-injury.
var cutIdiom = toSet("through across off out back down in into ties class school corners costs him her them it the a an his " +
	"their our some sugar carbs caffeine contact loose up short ahead")

// nextWord is the word that starts at or after s[i:].
func nextWord(s string, i int) string {
	for i < len(s) && !textmatch.IsWordByte(s[i]) {
		i++
	}
	j := i
	for j < len(s) && textmatch.IsWordByte(s[j]) {
		j++
	}
	return s[i:j]
}

// weigh decides how much a phrase at s[k:] says about the writer now.
func weigh(s string, k int, p pattern, past bool, supporter *support) hit {
	h := hit{level: p.level, code: p.code, weight: 1}
	// Only the words just before the phrase matter; a bounded window keeps
	// a long sentence with many phrases linear.
	prefix := s[max(0, k-160):k]
	before := strings.Fields(prefix)
	window := before[max(0, len(before)-6):]
	// Negation right before the phrase: "im not suicidal", "i would never
	// kill myself" (but not "i dont understand how killing myself …").
	near := window[max(0, len(window)-4):]
	for i := len(near) - 1; i >= 0; i-- {
		w := strings.Trim(near[i], "()[]*\",:")
		if clauseBreak[w] {
			break
		}
		if negators[w] && !strings.HasPrefix(p.code, "indicator.cant") {
			h.weight = 0
			h.code += ".negated"
			return h
		}
	}
	// "i cut through the park", "i cut him off": cutting something else.
	if p.phrase == "i cut" && cutIdiom[nextWord(s, k+len(p.phrase))] {
		h.weight = 0
		h.code += ".idiom"
		return h
	}
	// "tried to run away, kill myself": a try named a few words before a
	// way of dying is an attempt.
	if p.code == "ideation.suicide" && p.self {
		for _, w := range window {
			if w == "tried" || w == "attempted" {
				h.level, h.code = Attempt, "attempt.tried"
				break
			}
		}
	}
	// Hypotheticals.
	for _, c := range hypothesis {
		if strings.Contains(prefix, c) {
			h.weight *= 0.2
			h.code += ".hypothetical"
			break
		}
	}
	// Who is it about? The nearest person word before the phrase.
	if !p.self {
		about := ""
		for i := len(before) - 1; i >= 0 && i >= len(before)-10; i-- {
			if firstPerson[before[i]] {
				about = "self"
				break
			}
			if otherPerson[before[i]] {
				about = "other"
				break
			}
		}
		if about != "self" && p.code == "indicator.distress" {
			h.weight = 0 // a supporter names it of someone else
			return h
		}
		switch about {
		case "other":
			h.weight *= 0.15
			h.code += ".other_person"
		case "":
			h.weight *= 0.5 // no subject: a topic, not a disclosure
			if topicWords[p.phrase] {
				// "suicide" named with nobody as its subject is a
				// topic: on its own it does not make a writer's level
				// ideation.
				h.weight = bareTopic
				h.code += ".topic"
			}
			if supporter.is() {
				// Someone supporting another ("suicide is never the
				// answer", "please call a hotline") names the subject
				// without disclosing anything.
				h.weight = 0.1
				h.code += ".supporting"
			}
		}
	} else if strings.Contains(prefix, "you ") && !strings.Contains(prefix, "i ") {
		h.weight *= 0.3 // "you say you want to kill myself"-style quoting
	}
	// Means and intent words say little on their own: without the writer
	// as their subject they count as ideation, not behaviour.
	if h.level == Behavior && (strings.HasPrefix(p.code, "behavior.means") || strings.HasPrefix(p.code, "behavior.intent")) && h.weight < 0.75 {
		h.level = Ideation
	}
	if past {
		// A past attempt is still an attempt: the C-SSRS counts lifetime
		// attempts. Other signals in the past say less about now.
		if h.level != Attempt {
			h.weight *= 0.7
		}
		h.code += ".past"
	}
	return h
}
