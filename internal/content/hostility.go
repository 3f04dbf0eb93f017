package content

import (
	"strings"

	"github.com/dspipe/dspipe/internal/textmatch"
)

// Hostility rules: hate, harassment and violence as sentences say them
// when no listed slur or threat phrase is there. Each rule needs two
// things in one sentence: a target (a group of people named by a
// protected attribute, or the reader) and what is said of or wished on it
// (a hostile generalisation, an insult, harm). A group named alone, an
// insult alone or a violent word alone is not hostility: news about a
// murder, a therapist naming anger, a survivor telling what was done to
// them.

// Kinds of hostility cue.
const (
	cueGroup   = iota // a group of people by a protected attribute
	cueYou            // the reader
	cueHostile        // a hostile generalisation about a group
	cueInsult         // an insult
	cueHarm           // a verb of killing or injuring
	cueCall           // a call, wish or intent ("should", "deserve", "hope")
	cueOther          // a third person a harm is aimed at ("them", "him")
	numCues
)

var groupAdjectives = strings.Fields("black white asian african arab mexican chinese indian jewish muslim christian catholic hindu gay lesbian " +
	"trans transgender disabled immigrant foreign brown hispanic latino native middle-eastern islamic")

var groupNouns = strings.Fields("people folks men women guys kids community communities immigrants families")

func groupPhrases() []string {
	out := strings.Fields("muslims jews christians catholics hindus sikhs atheists blacks whites asians africans arabs mexicans hispanics latinos " +
		"immigrants migrants refugees illegals foreigners gays lesbians homosexuals transgenders trannies women females males feminists " +
		"indians chinese southerners europeans israelis palestinians islam jewry negroes darkies coloreds orientals gypsies " +
		// Singular adjectives: "a muslim ban", "gay priests".
		"muslim jew jewish islamic gay homosexual lesbian transgender immigrant immigration migrant female feminist african mexican arab " +
		"hindu asian negro chinese third-world")
	out = append(out, "third world", "third worlders", "these people", "those people", "their kind", "you people", "the disabled",
		"disabled people", "illegal aliens")
	for _, a := range groupAdjectives {
		for _, n := range groupNouns {
			out = append(out, a+" "+n)
		}
	}
	return out
}

// problemPhrases are "the muslim problem" and its kin: a people named as a
// problem to be solved.
func problemPhrases() []string {
	var out []string
	for _, g := range strings.Fields("muslim jew jewish immigrant immigration migrant black gay trans refugee") {
		out = append(out, g+" problem", g+" question")
	}
	return out
}

var cueLists = [numCues][]string{
	cueGroup: groupPhrases(),
	cueYou:   {"you", "your", "youre", "ya", "u", "ur", "yourself", "yo mama", "yo mamas"},
	cueHostile: append(problemPhrases(), "are bad", "are evil", "are animals", "are disgusting", "are filth", "are trash", "are a disease", "are a cancer",
		"are inferior", "are stupid", "are lazy", "are criminals", "are rapists", "are terrorists", "are the problem", "are hoes",
		"should leave", "should all leave", "go back", "deport", "deported", "deportation", "deportations", "ban", "banned",
		"dont belong", "do not belong", "not welcome", "get rid of", "wipe out", "exterminate", "extermination", "eradicate", "invaders",
		"invasion", "infest", "scum", "filth", "vermin", "savages", "animals", "subhuman", "inferior", "disgusting", "evil", "corrupting",
		"repulsive", "degenerate", "degenerates", "depravity", "perverts", "shame", "wrong choice", "dominate", "supremacy", "supremacist",
		"dregs", "cheat", "liars", "dishonest", "greedy", "conned", "parasites", "plague", "backwards", "primitive", "barbaric",
		"build a wall", "cant stand", "apes", "monkeys", "sluts", "hoax", "fraud", "expel", "imposters", "satanists",
		"disordered", "good riddance", "smelly", "can never", "are bad", "awful", "betrays", "free of", "metastasized",
		"sieg", "will dominate", "bad influence", "dog eating", "eat dogs", "like you"),
	cueInsult: {"idiot", "idiots", "stupid", "moron", "morons", "dumb", "dumbass", "pathetic", "trash", "worthless", "loser", "losers",
		"ugly", "scum", "fascist", "clown", "peaked", "embarrassed", "disgusting", "bitch", "retard", "retarded", "freak", "fat",
		"piece of shit", "garbage", "useless", "ignorant", "coward", "liar", "jerk", "pig", "hoe", "slut", "whore", "cunt",
		"good for nothing", "nobody cares", "no one cares", "gives a fuck", "gives a shit", "deserve to die", "retards"},
	cueHarm: {"kill", "killin", "killing", "stab", "shoot", "hang", "hanging", "hanged", "lynch", "lynched", "hung", "execute", "executed",
		"behead", "slaughter", "exterminate", "exterminated", "gas", "gassed", "nuke", "burn", "burned", "bomb", "murder", "die",
		"beat", "bullet", "bullets", "rope", "sword", "wipe out", "massacre", "torture", "shot dead", "put down", "eliminate", "annihilate"},
	cueCall: {"should", "shall", "must", "need", "needs", "deserve", "deserves", "hope", "wish", "lets", "gonna", "going to", "will",
		"ill", "well", "time to", "about time", "would rather", "rather pay", "want to", "wanna", "ought", "when enough", "fight back",
		"judge", "could easily", "rise"},
	cueOther: {"them", "him", "her", "everyone", "everybody", "people", "monster", "monsters", "they", "their"},
}

// negations before an insult, a hostile word or a harm word undo it ("you are not
// stupid", "nobody should die"); feeling words make it the writer's own
// feeling ("you may feel stupid").
var softeners = map[string]bool{"not": true, "never": true, "dont": true, "isnt": true, "arent": true, "wont": true,
	"shouldnt": true, "cant": true, "nobody": true, "feel": true, "feeling": true, "felt": true, "feels": true, "think": true,
	"thought": true, "called": true, "call": true, "calls": true, "being": true, "seem": true, "look": true}

// sentenceCues is what one sentence holds.
type sentenceCues uint16

func (c sentenceCues) has(kind int) bool { return c&(1<<kind) != 0 }

// cueScan collects each sentence's cues as the one matcher pass over a
// normalised text reports them (content.go's count): sentence i is the
// text between the i-th and the next boundary, as isBoundary cuts it, and
// the toxicity model's sentences are cut the same way. Insults, hostile
// words and harm words right after a negation or a feeling word do not
// count.
type cueScan struct {
	s        string
	out      []sentenceCues
	sentence int
	from     int
}

func (c *cueScan) add(kind, start int) {
	for ; c.from < start; c.from++ {
		if isBoundary(c.s[c.from]) {
			c.sentence++
		}
	}
	if (kind == cueInsult || kind == cueHarm || kind == cueHostile) && softened(c.s, start) {
		return
	}
	for len(c.out) <= c.sentence {
		c.out = append(c.out, 0)
	}
	c.out[c.sentence] |= 1 << kind
}

func isBoundary(c byte) bool { return c == '.' || c == '!' || c == '?' || c == '\n' }

// softened reports whether one of the two words before start is a
// negation or a feeling word.
func softened(s string, start int) bool {
	i := start
	for w := 0; w < 2; w++ {
		for i > 0 && !textmatch.IsWordByte(s[i-1]) {
			if isBoundary(s[i-1]) {
				return false
			}
			i--
		}
		j := i
		for i > 0 && textmatch.IsWordByte(s[i-1]) {
			i--
		}
		if i == j {
			return false
		}
		if softeners[s[i:j]] {
			return true
		}
	}
	return false
}

// Evidence a sentence adds, before squashing (1.0 ≈ 0.63).
const (
	hostileGroupWeight = 1.0 // a group and a hostile generalisation
	harmGroupWeight    = 1.2 // a group and harm
	insultYouWeight    = 0.9 // the reader and an insult
	callHarmWeight     = 1.0 // a call or wish of harm on someone
)

// hostileEvidence sums the hate, harassment and violence evidence of a
// text's sentences.
func hostileEvidence(cues []sentenceCues) (hate, harassment, violence float64) {
	for _, c := range cues {
		group := c.has(cueGroup)
		switch {
		case group && c.has(cueHarm):
			hate += harmGroupWeight
			if c.has(cueCall) {
				violence += callHarmWeight
			}
		case group && (c.has(cueHostile) || c.has(cueInsult)):
			hate += hostileGroupWeight
		}
		if c.has(cueYou) && c.has(cueInsult) {
			harassment += insultYouWeight
		}
		if c.has(cueHarm) && c.has(cueCall) && (c.has(cueYou) || c.has(cueOther)) && !group {
			violence += callHarmWeight
		}
	}
	return hate, harassment, violence
}
