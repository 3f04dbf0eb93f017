// Package gen generates synthetic counselling conversations, seeded and
// reproducible, in every input format the pipeline reads, and plants ground
// truth in a sidecar: PII spans with their types, crisis levels, exact and
// near duplicates across sources, and demographic mentions. All text here is
// written by us for testing; none of it comes from real people.
package gen

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Span is a planted PII span: message index and byte offsets in its content.
type Span struct {
	Message int    `json:"message"`
	Start   int    `json:"start"`
	End     int    `json:"end"`
	Type    string `json:"type"`
}

// Mention is a planted demographic mention.
type Mention struct {
	Axis  string `json:"axis"`
	Group string `json:"group"`
}

// Truth is the ground truth of one generated conversation.
type Truth struct {
	ID           string    `json:"id"`
	Source       string    `json:"source"`
	Position     int64     `json:"position"`
	PII          []Span    `json:"pii"`
	Crisis       string    `json:"crisis"`
	Demographics []Mention `json:"demographics"`
	DuplicateOf  string    `json:"duplicate_of,omitempty"`
	NearDupOf    string    `json:"near_duplicate_of,omitempty"`
	LowQuality   string    `json:"low_quality,omitempty"`
}

// Turn is one message.
type Turn struct {
	Role    string
	Content string
}

// Conversation is one generated record with its truth.
type Conversation struct {
	Turns []Turn
	Topic string
	Truth Truth
}

var (
	firstNames  = []string{"Maren", "Tobias", "Ilse", "Rafael", "Noor", "Dmitri", "Aiyana", "Callum", "Yusuf", "Perpetua", "Anouk", "Benedikt", "Saoirse", "Kwame", "Lucinda", "Oskar"}
	lastNames   = []string{"Halvorsen", "Quintero", "Abernathy", "Okonkwo", "Lindqvist", "Marchetti", "Thornbury", "Vasquez-Lee", "Ferreira", "Nakashima"}
	cities      = []string{"Duluth", "Tacoma", "Bakersfield", "Worcester", "Chattanooga", "Spokane", "Fort Wayne", "Lubbock"}
	streets     = []string{"Birchwood Lane", "Harbor Street", "Old Mill Road", "Juniper Court", "Fairview Avenue"}
	crisisLines = map[string][]string{
		"indicator": {"Honestly I feel hopeless about most things right now.", "I feel like a burden to everyone around me."},
		"ideation":  {"Sometimes I think everyone would be better off if I wasn't here.", "I've been having thoughts about ending my life."},
		"behavior":  {"Last night I started looking up ways to hurt myself.", "I wrote a goodbye note and hid it in my drawer."},
		"attempt":   {"Two weeks ago I took a lot of pills and ended up in the hospital.", "I tried to kill myself last spring."},
	}
	// demographics are the planted mentions, weighted so that each axis's
	// mentions follow the bias stage's default population reference (so a
	// generated dataset passes the bias gate unless it is skewed on
	// purpose); each axis but disability carries about the same weight.
	// ("At my Christian church" names Christians twice; "a white man" and
	// "a Black woman" name a gender too.)
	demographics = []struct {
		axis, group, phrase string
		weight              float64
	}{
		{"gender", "woman", "As a woman in my field", 1.9}, {"gender", "man", "As a man I was raised not to cry", 1},
		{"religion", "christian", "At my Christian church", 0.25}, {"religion", "catholic", "I was raised Catholic and", 0.25},
		{"religion", "atheist", "As an atheist", 0.15}, {"religion", "muslim", "My Muslim family", 0.05},
		{"religion", "jewish", "At my synagogue", 0.05},
		{"age", "older_adult", "Being in my seventies", 0.7}, {"age", "young_adult", "As a college student", 1.3},
		{"race_ethnicity", "white", "As a white man in a small town", 1.16}, {"race_ethnicity", "hispanic_latino", "In my Hispanic family", 0.38},
		{"race_ethnicity", "black", "As a Black woman at work", 0.24}, {"race_ethnicity", "asian", "Growing up Asian American", 0.12},
		{"race_ethnicity", "multiracial", "Being biracial", 0.1},
		{"sexual_orientation", "bisexual", "Since coming out as bisexual", 0.55}, {"sexual_orientation", "gay", "Since coming out as gay", 0.25},
		{"sexual_orientation", "lesbian", "As a lesbian", 0.2},
		{"disability", "wheelchair_user", "Using a wheelchair", 0.5},
	}
	demographicWeight = func() float64 {
		var w float64
		for _, d := range demographics {
			w += d.weight
		}
		return w
	}()
	lowQuality = []string{"repetition", "empty_turns", "copied_turns", "gibberish"}
)

// Generator produces conversations deterministically from a seed.
type Generator struct {
	rng *rand.Rand
	n   int64
	// Rates of planted properties, 0..1.
	PIIRate, CrisisRate, DemographicRate, LowQualityRate float64
	// Skew, when set, makes every demographic mention this group's.
	Skew string
	// MaxTurns, when set, cuts every conversation to at most this many
	// turns (at least two): short records for measures that count
	// records, not text.
	MaxTurns int
}

// New returns a generator with the default rates.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), PIIRate: 0.3, CrisisRate: 0.1, DemographicRate: 0.2, LowQualityRate: 0.05}
}

func (g *Generator) pick(ss []string) string { return ss[g.rng.IntN(len(ss))] }

// Next generates one conversation: a question with a long answer (about a
// third, as on counselling Q&A sites) or a dialogue of 4 to 24 turns (as in
// ESConv), every sentence a template of the phrase book (phrases.go) with
// its slots filled, no template used twice in one conversation.
func (g *Generator) Next() Conversation {
	g.n++
	topic := g.pickTopic()
	c := Conversation{Topic: topic, Truth: Truth{ID: fmt.Sprintf("gen-%d", g.n), Crisis: "none", PII: []Span{}, Demographics: []Mention{}}}
	used := map[string]bool{}
	qa := g.rng.Float64() < 0.35
	var user strings.Builder
	g.plantDemographic(&user, &c)
	op := g.sentences(userOpen, 1, topic, used)[0]
	if user.Len() > 0 && !strings.HasPrefix(op, "I ") && !strings.HasPrefix(op, "I'") {
		op = strings.ToLower(op[:1]) + op[1:]
	}
	user.WriteString(op)
	more := g.rng.IntN(2)
	if qa {
		more = 2 + g.rng.IntN(2)
	}
	for _, s := range g.sentences(userMore, more, topic, used) {
		user.WriteString(" " + s)
	}
	var spans []Span
	if g.rng.Float64() < g.PIIRate {
		user.WriteString(" ")
		spans = g.plantPII(&user)
	}
	if g.rng.Float64() < g.CrisisRate {
		levels := []string{"indicator", "ideation", "behavior", "attempt"}
		lvl := levels[g.rng.IntN(len(levels))]
		user.WriteString(" " + g.pick(crisisLines[lvl]))
		c.Truth.Crisis = lvl
	}
	c.Turns = []Turn{{"user", user.String()}}
	for _, s := range spans {
		s.Message = 0
		c.Truth.PII = append(c.Truth.PII, s)
	}
	if qa {
		c.Turns = append(c.Turns, Turn{"assistant", g.answer(topic, used)})
	} else {
		c.Turns = append(c.Turns, Turn{"assistant", g.supporterTurn(topic, used)})
		for i, n := 0, 1+g.rng.IntN(7)+g.rng.IntN(5); i < n; i++ {
			c.Turns = append(c.Turns, Turn{"user", g.userTurn(topic, used)}, Turn{"assistant", g.supporterTurn(topic, used)})
		}
	}
	if g.MaxTurns > 0 && len(c.Turns) > max(g.MaxTurns, 2) {
		c.Turns = c.Turns[:max(g.MaxTurns, 2)]
	}
	g.plantLowQuality(&c)
	return c
}

// plantDemographic opens the first turn with a demographic mention at
// DemographicRate, drawn by weight (or the Skew group's).
func (g *Generator) plantDemographic(user *strings.Builder, c *Conversation) {
	if g.rng.Float64() >= g.DemographicRate {
		return
	}
	d := demographics[len(demographics)-1]
	r := g.rng.Float64() * demographicWeight
	for _, dd := range demographics {
		if r -= dd.weight; r < 0 {
			d = dd
			break
		}
	}
	if g.Skew != "" {
		for _, dd := range demographics {
			if dd.group == g.Skew {
				d = dd
			}
		}
	}
	user.WriteString(d.phrase + ", ")
	c.Truth.Demographics = append(c.Truth.Demographics, Mention{Axis: d.axis, Group: d.group})
}

// userTurn is a later user turn: an answer, sometimes with more context.
func (g *Generator) userTurn(topic string, used map[string]bool) string {
	out := g.sentences(userReply, 1, topic, used)
	if g.rng.IntN(3) == 0 {
		out = append(out, g.sentences(userMore, 1, topic, used)...)
	}
	if len(out) == 0 { // every template used: a long dialogue
		out = []string{g.fill(userReply[g.rng.IntN(len(userReply))], topic)}
	}
	return strings.Join(out, " ")
}

// supporterTurn reflects, then asks or suggests.
func (g *Generator) supporterTurn(topic string, used map[string]bool) string {
	var out []string
	if g.rng.IntN(2) == 0 {
		out = g.sentences(supportReflect, 1, topic, used)
	}
	next := supportAsk
	if g.rng.IntN(3) == 0 {
		next = supportSuggest
	}
	out = append(out, g.sentences(next, 1, topic, used)...)
	if len(out) == 0 {
		out = []string{g.fill(supportAsk[g.rng.IntN(len(supportAsk))], topic)}
	}
	return strings.Join(out, " ")
}

// answer is a counsellor's long answer to a question.
func (g *Generator) answer(topic string, used map[string]bool) string {
	out := g.sentences(supportReflect, 2, topic, used)
	out = append(out, g.sentences(supportSuggest, 2+g.rng.IntN(2), topic, used)...)
	out = append(out, g.sentences(supportAsk, 1, topic, used)...)
	return strings.Join(out, " ")
}

// plantLowQuality spoils the conversation at LowQualityRate, in one of the
// ways the quality stage is to catch.
func (g *Generator) plantLowQuality(c *Conversation) {
	if g.rng.Float64() >= g.LowQualityRate {
		return
	}
	kind := g.pick(lowQuality)
	c.Truth.LowQuality = kind
	switch kind {
	case "repetition":
		c.Turns[1].Content = strings.Repeat("I understand. ", 30)
	case "empty_turns":
		c.Turns = append(c.Turns, Turn{"user", " "}, Turn{"assistant", ""})
	case "copied_turns":
		c.Turns[1].Content = c.Turns[0].Content
	case "gibberish":
		var b strings.Builder
		for i := 0; i < 40; i++ {
			b.WriteString(string(rune('a'+g.rng.IntN(26))) + string(rune('a'+g.rng.IntN(26))) + "x ")
		}
		c.Turns[1].Content = b.String()
	}
}

// plantPII appends a sentence with identifiers and returns their spans.
func (g *Generator) plantPII(b *strings.Builder) []Span {
	var spans []Span
	add := func(text, typ string) {
		start := b.Len()
		b.WriteString(text)
		spans = append(spans, Span{Start: start, End: b.Len(), Type: typ})
	}
	b.WriteString("My name is ")
	add(g.pick(firstNames)+" "+g.pick(lastNames), "PERSON")
	switch g.rng.IntN(4) {
	case 0:
		b.WriteString(" and you can reach me at ")
		add(fmt.Sprintf("(%d) 555-%04d", 200+g.rng.IntN(700), g.rng.IntN(10000)), "PHONE")
	case 1:
		b.WriteString(" and my email is ")
		add(fmt.Sprintf("%s.%d@example.org", strings.ToLower(g.pick(firstNames)), g.rng.IntN(100)), "EMAIL")
	case 2:
		b.WriteString(" and I live at ")
		add(fmt.Sprintf("%d %s", 10+g.rng.IntN(990), g.pick(streets)), "ADDRESS")
		b.WriteString(" in ")
		add(g.pick(cities), "LOCATION")
	case 3:
		b.WriteString(" and I was born on ")
		add(fmt.Sprintf("%02d/%02d/%d", 1+g.rng.IntN(12), 1+g.rng.IntN(28), 1950+g.rng.IntN(55)), "DATE")
	}
	b.WriteString(".")
	return spans
}

// NearDuplicate returns a lightly edited copy: one reply swapped and a
// word dropped, the kind of variation re-exported datasets show.
func (g *Generator) NearDuplicate(c Conversation) Conversation {
	out := c
	out.Turns = append([]Turn(nil), c.Turns...)
	last := len(out.Turns) - 1
	out.Turns[last].Content = strings.TrimSuffix(out.Turns[last].Content, ".") + ", truly."
	return out
}
