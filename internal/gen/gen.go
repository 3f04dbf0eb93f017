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
	firstNames = []string{"Maren", "Tobias", "Ilse", "Rafael", "Noor", "Dmitri", "Aiyana", "Callum", "Yusuf", "Perpetua", "Anouk", "Benedikt", "Saoirse", "Kwame", "Lucinda", "Oskar"}
	lastNames  = []string{"Halvorsen", "Quintero", "Abernathy", "Okonkwo", "Lindqvist", "Marchetti", "Thornbury", "Vasquez-Lee", "Ferreira", "Nakashima"}
	cities     = []string{"Duluth", "Tacoma", "Bakersfield", "Worcester", "Chattanooga", "Spokane", "Fort Wayne", "Lubbock"}
	streets    = []string{"Birchwood Lane", "Harbor Street", "Old Mill Road", "Juniper Court", "Fairview Avenue"}
	topics     = []string{"anxiety", "depression", "sleep", "work stress", "relationships", "grief", "loneliness", "self-esteem"}
	openers    = map[string][]string{
		"anxiety":       {"I keep getting this tight feeling in my chest before meetings", "My mind races every night and I can't switch it off", "I've been avoiding the grocery store because crowds make me panic"},
		"depression":    {"Everything feels flat lately, even things I used to love", "I stay in bed most of the weekend and feel guilty about it", "I don't see the point in getting dressed some days"},
		"sleep":         {"I wake up at 3am and can't fall back asleep", "I've been sleeping twelve hours and still feel exhausted", "My sleep schedule is completely upside down since the new job"},
		"work stress":   {"My manager keeps adding deadlines and I'm drowning", "I'm in my twenties and I think I'm burning out at work", "I dread Monday mornings so much I feel sick on Sundays"},
		"relationships": {"My partner and I argue about the same thing every week", "I feel like my friends have drifted away", "My sister and I haven't spoken in months"},
		"grief":         {"My grandmother passed away last month and I can't stop crying", "It's been a year since we lost our dog and it still hurts", "I keep picking up the phone to call my dad before remembering"},
		"loneliness":    {"I moved to a new city and don't know anyone", "Most evenings I don't talk to a single person", "Even around people I feel completely alone"},
		"self-esteem":   {"I always compare myself to everyone else and come up short", "I can't accept compliments, they feel like lies", "I feel like a fraud at my job"},
	}
	replies = []string{
		"That sounds really hard. Can you tell me more about when it started?",
		"Thank you for sharing that with me. What usually helps you, even a little?",
		"It makes sense that you feel this way given everything going on.",
		"Let's think about one small step you could take this week.",
		"Have you been able to talk to anyone close to you about this?",
		"Noticing the pattern is already an important first step.",
		"What would you say to a friend who was going through the same thing?",
	}
	followUps = []string{
		"It started a few months ago, around the time things changed at home.",
		"Sometimes going for a walk helps, but not always.",
		"I haven't really told anyone, I don't want to be a burden.",
		"I guess I could try writing things down before bed.",
		"I think I'd tell them to be kinder to themselves.",
	}
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
}

// New returns a generator with the default rates.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), PIIRate: 0.3, CrisisRate: 0.1, DemographicRate: 0.2, LowQualityRate: 0.05}
}

func (g *Generator) pick(ss []string) string { return ss[g.rng.IntN(len(ss))] }

// Next generates one conversation.
func (g *Generator) Next() Conversation {
	g.n++
	topic := g.pick(topics)
	c := Conversation{Topic: topic, Truth: Truth{ID: fmt.Sprintf("gen-%d", g.n), Crisis: "none", PII: []Span{}, Demographics: []Mention{}}}
	var user strings.Builder
	if g.rng.Float64() < g.DemographicRate {
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
	op := g.pick(openers[topic])
	if user.Len() > 0 {
		op = strings.ToLower(op[:1]) + op[1:]
	}
	user.WriteString(op + ".")
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
	c.Turns = []Turn{{"user", user.String()}, {"assistant", g.pick(replies)}}
	for _, s := range spans {
		s.Message = 0
		c.Truth.PII = append(c.Truth.PII, s)
	}
	// A good conversation does not say the same thing twice: a pick that
	// repeats an earlier turn moves on to the next line of its list (no
	// extra random draw, so seeds keep their other choices).
	fresh := func(list []string) string {
		i := g.rng.IntN(len(list))
		for k := 0; k < len(list); k++ {
			cand := list[(i+k)%len(list)]
			dup := false
			for _, t := range c.Turns {
				dup = dup || t.Content == cand
			}
			if !dup {
				return cand
			}
		}
		return list[i]
	}
	for i, n := 0, g.rng.IntN(3); i < n; i++ {
		c.Turns = append(c.Turns, Turn{"user", fresh(followUps)}, Turn{"assistant", fresh(replies)})
	}
	if g.rng.Float64() < g.LowQualityRate {
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
	return c
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
