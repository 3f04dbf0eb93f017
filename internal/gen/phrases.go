package gen

import "strings"

// The phrase book of generated conversations: sentence templates with
// slots ({name}) filled from word pools, so that conversations vary the way
// real ones do instead of repeating a few fixed lines. With no duplicates
// planted, two generated conversations almost never share enough word
// 3-grams to look like duplicates (gen_test measures it). Everything here
// is written by us; the shapes (turn counts, words per turn, topic mix)
// follow the real counselling data in ../shared/data (docs/BENCHMARKS.md
// gives the comparison). The pools avoid what the detectors look for:
// no names, places, dates, ages or crisis language unless planted.

// topicWeights is the topic mix, after the problems ESConv and
// counsel-chat discuss most (depression, anxiety, relationships, work).
var topicWeights = []struct {
	topic  string
	weight float64
}{
	{"depression", 0.2}, {"anxiety", 0.18}, {"relationships", 0.16}, {"work stress", 0.14},
	{"self-esteem", 0.09}, {"loneliness", 0.08}, {"sleep", 0.08}, {"grief", 0.07},
}

// topicPools are each topic's own slot values.
var topicPools = map[string]map[string][]string{
	"depression": {
		"event":   {"I stopped going to the gym", "my routine fell apart", "I started skipping meals", "I quit the band I played in", "the winter started", "I dropped two of my classes", "I moved back in with my parents", "my hobbies stopped feeling fun"},
		"feeling": {"flat", "heavy", "drained", "low", "empty", "unmotivated", "foggy", "disconnected"},
		"thing":   {"cooking", "reading", "drawing", "playing guitar", "seeing friends", "going for runs", "gardening", "watching films"},
	},
	"anxiety": {
		"event":   {"I had a panic attack on the bus", "I started a new team at work", "my exams got closer", "I began driving again", "the meetings went back to in person", "I got a message from my landlord", "I started a new course", "the deadlines piled up"},
		"feeling": {"on edge", "tense", "jittery", "restless", "keyed up", "shaky", "wound up", "uneasy"},
		"thing":   {"phone calls", "crowded shops", "speaking up in meetings", "emails from my manager", "driving on the highway", "busy trains", "social events", "checking my bank account"},
	},
	"relationships": {
		"event":   {"my partner and I had a big argument", "we decided to take a break", "my partner took a job in another city", "we started living together", "we stopped talking about the future", "my partner forgot our anniversary", "we split up after four years", "we started couples counselling"},
		"feeling": {"hurt", "confused", "frustrated", "lonely", "unheard", "resentful", "insecure", "torn"},
		"thing":   {"talking about money", "planning weekends", "texting during the day", "meeting each other's friends", "sharing chores", "making decisions together", "spending holidays", "saying sorry"},
	},
	"work stress": {
		"event":   {"my team lost two people", "I got a new manager", "the company announced layoffs", "I was passed over for a promotion", "my workload doubled", "I started working nights", "my contract was cut short", "a big project went badly"},
		"feeling": {"burned out", "pulled in every direction", "undervalued", "stuck", "overwhelmed", "irritable", "exhausted", "on edge"},
		"thing":   {"answering emails at night", "saying no to extra tasks", "asking for feedback", "taking lunch breaks", "logging off on time", "speaking to my manager", "planning my week", "taking time off"},
	},
	"self-esteem": {
		"event":   {"I got some harsh feedback", "a friend got engaged", "I saw classmates from school online", "I failed my driving test", "I started a new job", "I was left out of a group chat", "I gained some weight", "my sibling got into a great school"},
		"feeling": {"not good enough", "small", "awkward", "invisible", "ashamed", "self-conscious", "behind everyone", "like a disappointment"},
		"thing":   {"posting photos", "taking compliments", "speaking in class", "trying new things", "asking for help", "meeting new people", "looking in the mirror", "sharing my work"},
	},
	"loneliness": {
		"event":   {"I moved for work", "my best friend moved away", "I started working from home", "my roommate moved out", "my group of friends drifted apart", "I finished my degree", "my partner and I split up", "I changed shifts at work"},
		"feeling": {"isolated", "left out", "alone", "disconnected", "forgotten", "homesick", "restless", "out of place"},
		"thing":   {"joining a club", "messaging friends from school", "going to events alone", "talking to neighbours", "eating dinner alone", "weekends", "holidays", "making plans"},
	},
	"sleep": {
		"event":   {"I started a new shift pattern", "the baby arrived", "my neighbours got a dog", "I started using my phone in bed", "I began drinking more coffee", "my exams started", "I switched to working from home", "the nights got lighter"},
		"feeling": {"wired", "groggy", "worn out", "restless", "foggy", "irritable", "on edge", "sluggish"},
		"thing":   {"falling asleep", "waking up early", "napping", "winding down", "getting up for work", "switching off my thoughts", "keeping a routine", "sleeping through the night"},
	},
	"grief": {
		"event":   {"a family friend passed away", "we lost our family dog", "a close friend died suddenly", "a relative passed after a long illness", "we sold my childhood home", "my godparent died in the spring", "our cat had to be put down", "my mentor passed away"},
		"feeling": {"heavy", "numb", "tearful", "lost", "empty", "raw", "unsettled", "guilty"},
		"thing":   {"going through photos", "visiting the house", "anniversaries", "family dinners", "hearing certain songs", "cooking their recipes", "talking about them", "driving past the park"},
	},
}

// pools are the slot values every topic shares.
var pools = map[string][]string{
	"when":     {"for the past {n} weeks", "since last {season}", "for about {n} months", "most days this {period}", "over the last {n} weeks", "since the start of the {period}", "on and off for {n} months", "more and more this {period}"},
	"n":        {"two", "three", "four", "five", "six", "seven", "eight"},
	"season":   {"spring", "summer", "autumn", "winter"},
	"period":   {"month", "term", "year", "season"},
	"often":    {"most evenings", "every morning", "nearly every day", "a few times a week", "at the weekends", "late at night", "after work", "on Sunday evenings"},
	"person":   {"my partner", "my best friend", "my sibling", "my roommate", "a coworker", "my parent", "a neighbour", "my cousin", "a friend from school", "my manager"},
	"coping":   {"going for a walk", "writing in a journal", "listening to music", "calling a friend", "doing some stretching", "taking a long shower", "making a list", "watching something light", "tidying my room", "breathing exercises"},
	"small":    {"a ten minute walk", "one message to a friend", "writing three lines before bed", "a fixed time to switch off screens", "one meal with someone", "a short list for tomorrow", "five minutes of stretching", "a glass of water and some air"},
	"strength": {"reaching out", "noticing this", "putting it into words", "keeping going", "asking these questions", "being honest with yourself", "looking for ways forward", "caring this much"},
	"feel2":    {"frustrated", "tired", "worried", "sad", "confused", "tense", "overwhelmed", "unsure"},
}

// User sentences: the opening, more context, and answers later on.
var (
	userOpen = []string{
		"{When} I have been feeling {feeling}, and I can't quite explain why.",
		"Ever since {event}, I have felt {feeling} {often}.",
		"I wanted to talk about how {feeling} I have been {when}.",
		"Things got harder after {event}, and I feel {feeling} {often}.",
		"I'm not sure where to start, but {event} and now I feel {feeling}.",
		"Lately I notice I feel {feeling} {often}, especially around {thing}.",
		"It has been a rough stretch: {event}, and {when} I have felt {feeling}.",
		"I keep feeling {feeling} {often}, and it started when {event}.",
	}
	userMore = []string{
		"I used to enjoy {thing}, but now I mostly avoid it.",
		"{Person} noticed and asked if I was okay, and I didn't know what to say.",
		"I have tried {coping}, which helps for a little while.",
		"The hardest part is {thing}, I just freeze.",
		"I haven't told {person} how much this is getting to me.",
		"I feel {feel2} with myself for not handling it better.",
		"When it gets bad I end up scrolling for hours instead of sleeping.",
		"Some days are fine and then {often} it all comes back.",
		"I think part of it is that I don't have much of a routine anymore.",
		"{Person} says I should just relax, which makes me feel {feel2}.",
		"I keep going over it in my head {often}.",
		"It affects how I feel about {thing} too.",
	}
	userReply = []string{
		"I guess {coping} helps a bit, when I remember to do it.",
		"Not really, I have mostly kept it to myself.",
		"Probably {person}, they usually listen without judging.",
		"I think it got worse {when}.",
		"That makes sense, I hadn't thought of it that way.",
		"Maybe I could try {small} and see how it goes.",
		"Honestly I feel {feel2} just talking about it.",
		"It's mostly {often}, the rest of the day is okay.",
		"I would like to feel less {feeling} around {thing}.",
		"I tried talking to {person} once but it didn't go well.",
		"Yes, that sounds doable, at least on weekdays.",
		"I'm worried I will lose motivation after a few days.",
	}
	supportReflect = []string{
		"It sounds like things have been really {feeling} for you since {event}.",
		"Feeling {feeling} {often} is exhausting, and it makes sense you want it to change.",
		"Thank you for telling me about {thing}, that takes courage.",
		"It makes sense to feel {feel2} when so much has changed {when}.",
		"I hear how much {thing} has been weighing on you.",
		"You have been carrying a lot, and {strength} matters.",
		"That sounds hard, especially with {person} not quite understanding.",
		"It's understandable that {thing} feels harder right now.",
	}
	supportAsk = []string{
		"What usually helps you, even a little, when it gets like this?",
		"When did you first notice it getting harder?",
		"Is there someone you feel comfortable talking to about this?",
		"What would a slightly better week look like for you?",
		"How do you usually spend the hour before bed?",
		"What do you think would change if you felt less {feeling}?",
		"Have you been able to do anything just for yourself lately?",
		"What was different during the times you felt more like yourself?",
		"How has this been affecting your days at work or study?",
		"What would you say to a friend who felt this way?",
	}
	supportSuggest = []string{
		"One small step could be {small}, just to see how it feels.",
		"It might help to plan {small} on the days that are hardest.",
		"Some people find {coping} useful when things pile up.",
		"You could try noticing when you feel most {feeling} and jot it down.",
		"Talking to {person} about even part of this could take some weight off.",
		"Be gentle with yourself about {thing}, change often comes slowly.",
		"If it keeps feeling this heavy, a counsellor or your doctor can help too.",
		"Let's keep it small: {small} is already a real step.",
	}
)

// fill expands a template's slots: topic pools first, then the shared
// ones; a capitalised slot ({When}) capitalises its value.
func (g *Generator) fill(tmpl, topic string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		name := tmpl[i+1 : i+j]
		lower := strings.ToLower(name[:1]) + name[1:]
		vals, ok := topicPools[topic][lower]
		if !ok {
			vals = pools[lower]
		}
		v := "{" + name + "}"
		if len(vals) > 0 {
			v = g.fill(vals[g.rng.IntN(len(vals))], topic) // values may hold slots too
		}
		if lower != name {
			v = strings.ToUpper(v[:1]) + v[1:]
		}
		b.WriteString(v)
		tmpl = tmpl[i+j+1:]
	}
}

// sentences picks n different templates of list and fills them.
func (g *Generator) sentences(list []string, n int, topic string, used map[string]bool) []string {
	var out []string
	for tries := 0; len(out) < n && tries < 4*len(list); tries++ {
		t := list[g.rng.IntN(len(list))]
		if used[t] {
			continue
		}
		used[t] = true
		out = append(out, g.fill(t, topic))
	}
	return out
}

// pickTopic draws a topic by the mix above.
func (g *Generator) pickTopic() string {
	r := g.rng.Float64()
	for _, t := range topicWeights {
		if r -= t.weight; r < 0 {
			return t.topic
		}
	}
	return topicWeights[0].topic
}
