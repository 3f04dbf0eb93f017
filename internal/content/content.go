// Package content scores text for content-safety categories: sexual
// content, sexual content involving minors (always blocked), hate,
// harassment, violence, graphic violence and self-harm. Self-harm is split
// into disclosure (a person saying they hurt or want to hurt themselves,
// which is crisis content to route to review, not to delete) and
// instructions (methods, doses), which are harmful wherever they appear.
// Scores come from our own term lists with light context rules; results
// carry scores and short codes, never matched text.
package content

import (
	"math"
	"strings"
	"sync"

	"github.com/dspipe/dspipe/internal/crisis"
	"github.com/dspipe/dspipe/internal/textmatch"
)

// Categories, as dsctl analyze content reports them.
const (
	Sexual          = "sexual"
	SexualMinors    = "sexual_minors"
	Hate            = "hate"
	Harassment      = "harassment"
	Violence        = "violence"
	ViolenceGraphic = "violence_graphic"
	SelfHarm        = "self_harm"
)

// Categories lists them in report order.
var Categories = []string{Sexual, SexualMinors, Hate, Harassment, Violence, ViolenceGraphic, SelfHarm}

// Result is the assessment of one text.
type Result struct {
	Categories map[string]float64 `json:"categories"`
	Flagged    bool               `json:"flagged"`
	// SelfHarmInstructions: method or dose details (harmful anywhere).
	SelfHarmInstructions bool `json:"self_harm_instructions"`
	// MinorsDiscussion: a sentence joins sexual terms and a minor, in a
	// text that discusses, discloses or condemns (abuse, therapy, advice,
	// the writer's past): for a reviewer, never blocked.
	MinorsDiscussion bool `json:"minors_discussion,omitempty"`
	// SelfHarmIncitement: the text tells its reader to harm or kill
	// themselves ("kill yourself", "kys"): self-harm content however
	// counselling-like the rest of it reads.
	SelfHarmIncitement bool `json:"self_harm_incitement,omitempty"`
	// Codes name what fired, never the text.
	Codes []string `json:"codes"`
}

// FlagThreshold is the score at which a category flags a text.
const FlagThreshold = 0.5

// ReviewMinors is the sexual_minors score of a text that discusses,
// discloses or condemns: under FlagThreshold (never blocked), and the
// record goes to a reviewer.
const ReviewMinors = 0.45

type term struct {
	text   string
	weight float64
	stem   bool // may be followed by more letters ("masturbat…")
}

func terms(weight float64, stems bool, list string) []term {
	var out []term
	for _, w := range strings.Split(list, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, term{w, weight, stems})
		}
	}
	return out
}

// rot13 keeps slurs out of plain sight in the source; they are decoded once.
func rot13(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			b[i] = 'A' + (c-'A'+13)%26
		}
	}
	return string(b)
}

var lexicon = map[string][]term{
	// Explicit: pornographic or vulgar words, flagged in any context.
	Sexual: terms(1.0, false, "horny, blowjob, handjob, nsfw, xxx, dildo, hentai, "+
		"cock, dick, pussy, cum, cumming, boobs, tits, clit, slut, whore, suck my, fuck me, fucked her, fucked him, strip for"),
	Hate: append(terms(1.0, false, rot13("avttre, avttref, avttn, snttbg, snt, xvxr, puvax, fcvp, jrgonpx, gbjry urnq, enturnq, penpxre, genaal, ergneq, ergneqf, "+
		"fhouhzna, fnintrf, snttbgf, avttnf, genaavrf, xvxrf, puvaxf, fcvpf, jrgonpxf, enturnqf")),
		terms(0.6, false, "inferior race, go back to your country, go back to where, white power, white supremacy, heil, ethnic cleansing, master race, "+
			"subhuman, vermin, parasites, cockroaches, should be exterminated, should be deported, dont belong here, hate jews, hate muslims, "+
			"hate blacks, hate gays, hate immigrants, hate mexicans, hate women, hate men")...),
	Harassment: append(terms(0.9, false, "you are stupid, youre stupid, you are an idiot, youre an idiot, you idiot, you moron, you loser, you are pathetic, "+
		"youre pathetic, you are worthless, youre worthless, you are ugly, youre ugly, shut the fuck up, fuck you, fuck off, go die, "+
		"kill yourself, kys, nobody likes you, no one likes you, piece of shit, screw you, you suck, i hope you die, hope you die"),
		terms(0.35, false, "shut up, dumbass, bitch, cunt, asshole, bastard, stfu, get lost, loser, idiot, moron, stupid, pathetic, disgusting, ugly, retard")...),
	// Threats and incitement: flagged in any context.
	Violence: terms(0.8, false, "i will kill you, ill kill you, gonna kill you, going to kill you, kill him, kill her, kill them, shoot him, shoot her, "+
		"shoot them, stab him, stab her, stab you, beat him up, beat her up, beat you up, punch you, choke you, slit your, burn down, blow up, "+
		"bomb, bombing, massacre, gunman, terrorist, terrorism, hostage"),
	ViolenceGraphic: terms(1.0, true, "gore, gory, dismember, decapitat, disembowel, mutilat, entrails, guts spilled, brains out, blown off, "+
		"severed head, severed, corpse, rotting flesh, skull crushed, flayed, torture, tortured, blood everywhere, pool of blood, splatter"),
}

// Discussable words: what a counsellor, a survivor or a patient says when
// talking about sexual health, violence done to them, or self-harm. They
// count fully on their own, and at discussionWeight in a counselling
// context (discussed or disclosed, not explicit: annotated, not flagged).
var (
	sexualDiscussable = append(append(terms(1.0, false, "porn, porno, pornography, nude, nudes, naked, orgasm, genitals, penis, vagina, anal, erection, have sex, had sex, having sex, "+
		"sex with, oral sex, sex toy, sexual intercourse, make love, aroused, arousing, "+
		// Words of kinks, fantasies and sex work: explicit in a story,
		// the subject itself in a therapist's answer.
		"erotic, threesome, sexting, onlyfans, stripper, naughty, seduce, seduced, kinky, kink, fetish, bdsm, bondage, lingerie, undress, undressed"),
		terms(1.0, true, "masturbat, ejaculat, fellat, intercours")...),
		terms(0.5, false, "sex, sexy, sexual, sexually, breasts, butt, bed with, kiss her, kissed her, lust, lick, licking, moan, moaning, hot body, turned on")...)
	violenceDiscussable = append(terms(violenceReported, false, "murder, murdered, assault, assaulted, attack, attacked, rape, raped, shooting, kidnap, kidnapped, "+
		"strangle, strangled"),
		terms(0.35, false, "kill, killed, killing, shot, stabbed, beaten, weapon, gun, knife, war, fight, violent, violence, hit, hurt, punch, slap, kick, destroy, blood")...)
)

// unaddressedToxic scales the toxicity of a sentence that does not speak
// to its reader: harassment is aimed at someone.
const unaddressedToxic = 0.6

// violenceReported is the weight of a word that names a violent act
// ("murder", "assault"): news, history and survivors name them too, so it
// takes two to flag a text; a wish or a call to do them is the hostility
// rules' (hostility.go).
const violenceReported = 0.5

// discussionWeight scales discussable words in a counselling context.
const discussionWeight = 0.25

// discussedCap is the most discussable words can weigh in a counselling
// context: squashed, just under the flag threshold. However long a
// therapist's answer about sexuality or violence, only explicit,
// threatening or instructional words flag it.
var discussedCap = -math.Log(1 - (FlagThreshold - 0.05))

// discussed is the weight of discussable words at scale: capped in a
// counselling context (scale < 1).
func discussed(scale, w float64) float64 {
	if scale < 1 {
		return math.Min(scale*w, discussedCap)
	}
	return w
}

// counsellingCues mark a text that talks about a subject the way
// counselling does: a professional's or a supporter's framing, advice,
// feelings and coping, or the writer's own past.
var counsellingCues = textmatch.New(phrases(
	"therapist", "therapy", "counselor", "counsellor", "counseling", "counselling", "psychologist", "psychiatrist", "doctor",
	"it sounds like", "sounds like you", "it is normal", "its normal", "you may want", "you might", "consider", "i would suggest",
	"i suggest", "i recommend", "i encourage", "talk to", "talk with", "reach out", "support", "professional", "hotline", "crisis line",
	"feelings", "feel", "cope", "coping", "healthy", "relationship", "trauma", "survivor", "abuse", "abused", "when i was", "as a child",
	"years ago", "growing up", "report", "police", "safety plan", "self-care", "self care", "boundaries", "consent", "partner"))

func counselling(s string) bool { return counsellingCues.Any(s) }

// minors are words that put a sexual text in the always-blocked category.
// minors name a child. "baby" is not one: it is an endearment between
// adults as often as a child, and "sex after a baby" is a common
// question.
var minors = terms(1.0, false, "child, children, kid, kids, minor, minors, underage, under age, preteen, pre-teen, schoolgirl, schoolboy, "+
	"little girl, little boy, young girl, young boy, loli, lolita, toddler, infant, 12 year old, 13 year old, 14 year old, "+
	"15 year old, 16 year old, 17 year old, 11 year old, 10 year old, year old girl, year old boy, teen, teens, teenage, teenager, daughter, son, stepdaughter")

// minorInSexualSentence reports whether one sentence holds both sexual
// terms (an explicit one, or two others) and a minor. It runs only on the
// rare texts that hold both somewhere.
func minorInSexualSentence(s string) bool {
	for _, sent := range strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '\n' || r == ';' }) {
		t := count(sent, nil)
		if t.weight[setMinors] > 0 && t.weight[setSexual]+t.weight[setSexualDiscussable] >= 1 {
			return true
		}
	}
	return false
}

// discussionCues mark a text that talks about sexuality or abuse rather
// than sexualising anyone: abuse and its reporting, therapy, advice and
// education, and the writer's own past.
var discussionCues = textmatch.New(phrases(
	"abuse", "abused", "abuser", "abusive", "molest", "raped", "rape", "assault", "incest", "groom", "predator", "pedophil", "paedophil",
	"inappropriate", "touched me", "touching me", "report", "police", "cps", "child protective", "therapist", "therapy", "counselor",
	"counsellor", "counseling", "counselling", "when i was", "as a child", "as a kid", "growing up", "years ago", "trauma", "survivor",
	"normal", "healthy", "talk to", "talk with", "age appropriate", "age-appropriate", "sex education", "sex ed", "puberty", "curious",
	"consent", "boundaries", "parent", "parenting", "worried", "concerned"))

func phrases(words ...string) []textmatch.Phrase {
	out := make([]textmatch.Phrase, len(words))
	for i, w := range words {
		out[i] = textmatch.Phrase{Text: w, Stem: true}
	}
	return out
}

func discussion(s string) bool { return discussionCues.Any(s) }

// Self-harm instructions: method and dose details.
var selfHarmMethod = terms(1.0, false, "how to kill yourself, how to kill myself, how to commit suicide, best way to kill, easiest way to die, painless way to die, "+
	"painless way to kill, lethal dose, how many pills, overdose on, slit your wrists, cut deeper, cut your wrists, hang yourself, how to hang, "+
	"mg of, milligrams of, tylenol, acetaminophen, paracetamol, bleach, pro ana, proana, thinspo, thinspiration, purge after, how to purge, starve yourself")

// Self-harm talk that is neither disclosure nor method: encouragement and
// general references.
var selfHarmTalk = terms(0.6, true, "suicid, self harm, self-harm, selfharm, self injur, self-injur, cutting, kill myself, end my life, want to die, wanna die, kys, "+
	"kill yourself, overdos, slit, wrists, hang myself, anorexi, bulimi, my death, wish i was dead, wish i were dead, wish for death, razor, scars")

// incitement tells the reader to harm or kill themselves; its phrases
// ride the one pass of count.
var incitement = (exact("kill yourself", "kys", "go die", "you should die", "just die", "hang yourself",
	"slit your wrists", "end your life", "off yourself", "unalive yourself", "do the world a favor and die", "drink bleach"))

// exact makes whole-word phrases ("go die" is not "go dieting").
func exact(words ...string) []textmatch.Phrase {
	out := phrases(words...)
	for i := range out {
		out[i].Stem = false
	}
	return out
}

// Harm verbs whose object is the writer ("burned myself", "kill everyone
// including myself"): a sentence holding one of these and "myself".
var harmStems = []string{"kill", "hurt", "cut", "burn", "harm", "starv", "bleed", "blood", "injur", "punish", "hit", "hang", "drown", "poison"}

// reflexiveHarm counts the sentences where a harm verb and "myself" meet.
func reflexiveHarm(s string) float64 {
	n := 0.0
	if !strings.Contains(s, "myself") {
		return 0
	}
	for _, sent := range strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '\n' }) {
		if !strings.Contains(sent, "myself") {
			continue
		}
		for _, h := range harmStems {
			if strings.Contains(sent, h) {
				n++
				break
			}
		}
		if n >= 2 {
			break
		}
	}
	return n
}

// Term lists, in one matcher: a single pass over the text counts them all.
const (
	setSexual = iota
	setHate
	setHarassment
	setViolence
	setGraphic
	setMinors
	setMethod
	setTalk
	setSexualDiscussable
	setViolenceDiscussable
	numSets
)

var (
	categoryOfSet = map[int]string{setSexual: Sexual, setHate: Hate, setHarassment: Harassment, setViolence: Violence, setGraphic: ViolenceGraphic}
	allTerms      []term
	ownerSet      []int  // -1: a hostility cue
	cueKind       []int8 // per phrase: its hostility cue kind, -1 for none, cueIncitement
	allMatcher    *textmatch.Matcher
)

func init() {
	lists := [numSets][]term{lexicon[Sexual], lexicon[Hate], lexicon[Harassment], lexicon[Violence], lexicon[ViolenceGraphic], minors, selfHarmMethod, selfHarmTalk,
		sexualDiscussable, violenceDiscussable}
	var ps []textmatch.Phrase
	for set, ts := range lists {
		for _, t := range ts {
			allTerms = append(allTerms, t)
			ownerSet = append(ownerSet, set)
			cueKind = append(cueKind, -1)
			ps = append(ps, textmatch.Phrase{Text: t.text, Stem: t.stem})
		}
	}
	// The hostility rules' cues (hostility.go) ride the same pass.
	for kind, list := range cueLists {
		for _, w := range list {
			allTerms = append(allTerms, term{text: w})
			ownerSet = append(ownerSet, -1)
			cueKind = append(cueKind, int8(kind))
			ps = append(ps, textmatch.Phrase{Text: w})
		}
	}
	for _, p := range incitement {
		allTerms = append(allTerms, term{text: p.Text})
		ownerSet = append(ownerSet, -1)
		cueKind = append(cueKind, cueIncitement)
		ps = append(ps, p)
	}
	allMatcher = textmatch.New(ps)
}

// cueIncitement marks the incitement phrases in cueKind.
const cueIncitement = -2

// tally is each set's summed weight and match count; each term counts at
// most three times, so one repeated word cannot dominate.
type tally struct {
	weight [numSets]float64
	n      [numSets]int
	// incitement says an incitement phrase occurs.
	incitement bool
}

func count(s string, cues *cueScan) tally {
	var t tally
	var hits map[int]uint8
	benign := benignSpans(s)
	allMatcher.Each(s, func(p, start, end int) {
		if k := cueKind[p]; k >= 0 {
			if cues != nil {
				cues.add(int(k), start)
			}
			return
		} else if k == cueIncitement {
			t.incitement = true
			return
		}
		for _, b := range benign {
			if b[0] <= start && end <= b[1] {
				return // "attack" in "panic attack" is not violence
			}
		}
		if hits == nil {
			hits = map[int]uint8{}
		}
		if hits[p] >= 3 {
			return
		}
		hits[p]++
		set := ownerSet[p]
		t.weight[set] += allTerms[p].weight
		t.n[set]++
	})
	return t
}

// benignPhrases name medical events with a violent word in them.
var benignPhrases = []string{"panic attack", "anxiety attack", "heart attack", "asthma attack", "seizure attack", "migraine attack"}

// benignSpans are the byte ranges of benign phrases in a normalised text
// (none, without a scan, in text that never says "attack").
func benignSpans(s string) [][2]int {
	if !strings.Contains(s, "attack") {
		return nil
	}
	var out [][2]int
	for _, ph := range benignPhrases {
		for from := 0; ; {
			i := strings.Index(s[from:], ph)
			if i < 0 {
				break
			}
			start := from + i
			end := start + len(ph)
			for end < len(s) && textmatch.IsWordByte(s[end]) { // attacks, attacked
				end++
			}
			out = append(out, [2]int{start, end})
			from = end
		}
	}
	return out
}

// squash maps a non-negative evidence sum to 0..1: one strong term ≈ 0.63.
func squash(x float64) float64 { return 1 - math.Exp(-x) }

// Assess scores one text.
func Assess(text string) Result { return assess(text, textmatch.Normalise(text), false, nil) }

// AssessResponder scores a counsellor's or supporter's turn (the
// assistant role of a counselling dataset): such a turn is counselling by
// what it is, so discussable words are read as discussion whatever cue
// words it has, and the crisis words it names are the client's subject,
// not its writer's disclosure. Explicit words, threats, instructions and
// abuse still flag it.
func AssessResponder(text string) Result { return assess(text, textmatch.Normalise(text), true, nil) }

// AssessGraded is Assess (or AssessResponder) for a text whose crisis
// grade is known (crisis.AssessEach graded it with its conversation's
// other turns): the grader does not run again.
func AssessGraded(text string, responder bool, cr crisis.Result) Result {
	return assess(text, textmatch.Normalise(text), responder, &cr)
}

// AssessNormalised is AssessGraded given textmatch.Normalise(text) too.
func AssessNormalised(text, norm string, responder bool, cr crisis.Result) Result {
	return assess(text, norm, responder, &cr)
}

// assess judges text; s is textmatch.Normalise(text).
func assess(text, s string, responder bool, graded *crisis.Result) Result {
	r := Result{Categories: map[string]float64{}, Codes: []string{}}
	cb := cueBufs.Get().(*[]sentenceCues)
	cues := cueScan{s: s, out: (*cb)[:0]}
	t := count(s, &cues)
	*cb = cues.out
	// Whether the text talks the way counselling does, asked at most
	// once and only when a discussable or self-harm word needs it.
	asked, isCounselling := false, false
	inCounselling := func() bool {
		if !asked {
			asked, isCounselling = true, responder || counselling(s)
		}
		return isCounselling
	}
	// Discussable words weigh less where the text talks the way
	// counselling does: discussion and disclosure are annotated, explicit
	// and instructional content is flagged.
	scale := 1.0
	if (t.n[setSexualDiscussable] > 0 || t.n[setViolenceDiscussable] > 0 || t.n[setTalk] > 0) && inCounselling() {
		scale = discussionWeight
		r.Codes = append(r.Codes, "discussion")
	}
	// Whether sexual words and a minor meet is judged on all of them.
	rawSexual := squash(t.weight[setSexual] + t.weight[setSexualDiscussable])
	explicitSexual := t.weight[setSexual] > 0
	t.weight[setSexual] += discussed(scale, t.weight[setSexualDiscussable])
	t.n[setSexual] += t.n[setSexualDiscussable]
	t.weight[setViolence] += discussed(scale, t.weight[setViolenceDiscussable])
	t.n[setViolence] += t.n[setViolenceDiscussable]
	t.weight[setTalk] = discussed(scale, t.weight[setTalk])
	// Hostility said without a listed term: a group or the reader, and
	// what is said of or wished on them, in one sentence.
	if hate, harassment, violence := hostileEvidence(*cb); hate+harassment+violence > 0 {
		hscale := 1.0
		if responder {
			hscale = discussionWeight
		}
		t.weight[setHate] += discussed(hscale, hate)
		t.weight[setHarassment] += discussed(hscale, harassment)
		t.weight[setViolence] += discussed(hscale, violence)
		t.n[setHate] += b2i(hate > 0)
		t.n[setHarassment] += b2i(harassment > 0)
		t.n[setViolence] += b2i(violence > 0)
	}
	for set := setSexual; set <= setGraphic; set++ {
		c := categoryOfSet[set]
		r.Categories[c] = round(squash(t.weight[set]))
		if t.n[set] > 0 {
			r.Codes = append(r.Codes, c)
		}
	}
	// Hate and harassment: the trained model (toxicity.go) finds what no
	// list names; a listed term still counts on its own.
	// A toxic sentence is harassment when it speaks to the reader, and
	// weighs less in one that does not (insults about a third person,
	// vulgar talk).
	buf := toxBufs.Get().(*[]uint32)
	var hate, toxic float64
	*buf = toxicity().sentences(text, (*buf)[:0], func(i int, p [nOut]float64) {
		hate = math.Max(hate, p[outHate])
		if i >= len(*cb) || !(*cb)[i].has(cueYou) {
			p[outToxic] *= unaddressedToxic
		}
		toxic = math.Max(toxic, p[outToxic])
	})
	toxBufs.Put(buf)
	cueBufs.Put(cb)
	for _, m := range [...]struct {
		c string
		p float64
	}{{Hate, hate}, {Harassment, toxic}} {
		if p := round(m.p); p > r.Categories[m.c] {
			if r.Categories[m.c] == 0 && p >= 0.2 {
				r.Codes = append(r.Codes, m.c+".model")
			}
			r.Categories[m.c] = p
		}
	}
	// Sexualised content involving a minor is always blocked: sexual terms
	// and a minor in one sentence, in a text that is not counselling about
	// sexuality or abuse. Those go to a reviewer instead.
	r.Categories[SexualMinors] = 0
	if t.weight[setMinors] > 0 && rawSexual >= 0.4 && !minorInSexualSentence(s) {
		// A minor and sexual words in different sentences: weak evidence,
		// scored (ranked) but neither blocked nor held.
		r.Categories[SexualMinors] = 0.3
	} else if t.weight[setMinors] > 0 && rawSexual >= 0.4 {
		if discussion(s) || responder && !explicitSexual {
			// Below the blocking threshold, but ranked: a reviewer sees it.
			r.MinorsDiscussion = true
			r.Categories[SexualMinors] = ReviewMinors
			r.Codes = append(r.Codes, SexualMinors+".discussion")
		} else {
			r.Categories[SexualMinors] = round(math.Max(rawSexual, 0.8))
			r.Codes = append(r.Codes, SexualMinors)
		}
	}
	// Self-harm: disclosure through the crisis grader, method details and
	// general self-harm talk through term lists.
	var cr crisis.Result
	if graded != nil {
		cr = *graded
	} else {
		cr = crisis.Assess([]string{text})
	}
	method, talk := t.weight[setMethod], t.weight[setTalk]
	score := squash(talk*0.8 + method*0.6 + reflexiveHarm(s)*0.9)
	if crisis.Rank(cr.Level) >= crisis.Rank(crisis.Ideation) {
		// The writer's own disclosure is self-harm content, and so is a
		// story or a post that dwells on it; in counselling talk the
		// subject named without the writer as its subject ("suicidal
		// thoughts are a symptom", "saying goodbye can be hard") is
		// ranked, not flagged.
		if cr.Disclosed && !responder || !inCounselling() {
			score = math.Max(score, cr.Score+0.2)
		} else {
			score = math.Max(score, cr.Score*0.8)
		}
	}
	if method > 0 && talk > 0 {
		r.SelfHarmInstructions = true
		r.Codes = append(r.Codes, "self_harm.instructions")
		score = math.Max(score, 0.8)
	}
	if t.incitement {
		r.SelfHarmIncitement = true
		r.Codes = append(r.Codes, "self_harm.incitement")
		score = math.Max(score, 0.7)
	}
	r.Categories[SelfHarm] = round(math.Min(score, 1))
	if r.Categories[SelfHarm] > 0 {
		r.Codes = append(r.Codes, SelfHarm)
	}
	for _, c := range Categories {
		if r.Categories[c] >= FlagThreshold {
			r.Flagged = true
		}
	}
	return r
}

// cueBufs recycles the hostility rules' per-sentence cues.
var cueBufs = sync.Pool{New: func() any { b := make([]sentenceCues, 0, 64); return &b }}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// toxBufs recycles the toxicity model's feature buffers.
var toxBufs = sync.Pool{New: func() any { b := make([]uint32, 0, 256); return &b }}

func round(x float64) float64 { return math.Round(x*1000) / 1000 }
