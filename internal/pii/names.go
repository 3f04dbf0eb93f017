package pii

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

//go:embed common.txt.gz
var commonGz []byte

//go:embed proper.txt.gz
var properGz []byte

var (
	lexOnce sync.Once
	lexicon map[string]bool
	propers map[string]bool
)

func loadList(gz []byte, into map[string]bool) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		into[sc.Text()] = true
	}
}

// proper reports whether the dictionary lists w as a capitalised entry
// (a given name, surname or place).
func proper(w string) bool {
	loadLex()
	return propers[w]
}

func loadLex() {
	lexOnce.Do(func() {
		lexicon = make(map[string]bool, 64000)
		propers = make(map[string]bool, 40000)
		loadList(commonGz, lexicon)
		loadList(properGz, propers)
	})
}

// common reports whether w (any case) is an ordinary lowercase English word
// (SCOWL word list, see LEXICON-NOTICE).
func common(w string) bool {
	return commonLower(lc(w))
}

// commonLower is common for an already lower-cased word.
func commonLower(l string) bool {
	loadLex()
	if lexicon[l] {
		return true
	}
	// Inflections the list may lack: plurals, possessives.
	for _, suf := range []string{"'s", "’s", "s", "es", "ed", "ing"} {
		if strings.HasSuffix(l, suf) && lexicon[strings.TrimSuffix(l, suf)] {
			return true
		}
	}
	return false
}

// function words and words often capitalised that are never names.
var stopwords = toSet(`a an the and or but if then so because as of in on at to from by with for about into over after before
i me my mine we us our you your he him his she her it its they them their this that these those there here who whom whose what which
when where why how is am are was were be been being have has had do does did will would shall should can could may might must
not no yes ok okay hi hello hey dear thanks thank please sorry well oh wow also just very really maybe perhaps sure
mr mrs ms miss dr prof sir madam mom dad mum god lord bot user assistant agent customer patient doctor nurse therapist
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august september october november december
english french german spanish italian chinese japanese american british european christian muslim jewish catholic internet tv covid`)

func toSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// Countries and US states, written out (not from any generator).
var places = toSet(strings.ToLower(`afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria burkina burundi cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czechia denmark djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia fiji finland france gabon gambia georgia germany ghana greece grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia iran iraq ireland israel italy jamaica japan jordan kazakhstan kenya kiribati kosovo kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia maldives mali malta mauritania mauritius mexico micronesia moldova monaco mongolia montenegro morocco mozambique myanmar namibia nauru nepal netherlands nicaragua niger nigeria norway oman pakistan palau palestine panama paraguay peru philippines poland portugal qatar romania russia rwanda samoa senegal serbia seychelles singapore slovakia slovenia somalia spain sudan suriname sweden switzerland syria taiwan tajikistan tanzania thailand togo tonga trinidad tunisia turkey turkmenistan tuvalu uganda ukraine uruguay uzbekistan vanuatu venezuela vietnam yemen zambia zimbabwe england scotland wales britain alabama alaska arizona arkansas california colorado connecticut delaware florida hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee texas utah vermont virginia washington wisconsin wyoming europe asia africa antarctica oceania scandinavia`))

// stateCodes are the US state and territory postal abbreviations; after a
// place cue ("in NJ", "from WI") they name a place.
var stateCodes = toSet(`AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC
SD TN TX UT VT VA WA WV WI WY DC PR GU VI`)

var multiWordPlaces = []string{"czech republic", "united states", "united kingdom", "south africa", "new zealand", "saudi arabia", "south korea",
	"north korea", "sri lanka", "costa rica", "el salvador", "sierra leone", "hong kong", "new york", "new jersey", "new mexico",
	"new hampshire", "north carolina", "south carolina", "north dakota", "south dakota", "rhode island", "west virginia", "puerto rico",
	"united arab emirates", "dominican republic", "ivory coast", "cape verde", "san marino", "papua new guinea", "los angeles", "san francisco"}

// Organisation words: a capitalised sequence holding one is an organisation.
var orgWords = toSet(`inc inc. ltd ltd. llc corp corp. corporation company co co. group bank university college school orchestra foundation
institute association capital partners holdings technologies technology systems solutions services hospital clinic church club
agency council committee department ministry society trust labs lab studio studios media network airlines motors industries
international global ventures consulting insurance pharma pharmaceuticals enterprises`)

var groupWords = toSet(`black white brown asian latino latina latinx hispanic native indigenous jewish muslim christian catholic
protestant hindu buddhist sikh gay lesbian bisexual trans queer deaf blind arab african european mexican`)

var titles = toSet(`mr mr. mrs mrs. ms ms. miss dr dr. prof prof. sir madam mx mx. rev`)

var personCues = []string{"my name is", "name is", "named", "called", "i'm", "i am", "this is", "dear", "hi", "hello", "hey", "thanks",
	"thank you", "with", "by", "under", "told", "asked", "met", "and", "to", "for", "husband", "wife", "son", "daughter", "brother",
	"sister", "mother", "father", "friend", "boyfriend", "girlfriend", "partner", "mom", "dad", "grandfather", "grandmother", "boss",
	"colleague", "therapist", "doctor", "nurse", "uncle", "aunt", "cousin", "surname", "maiden name", "name:", "last name?", "first name?",
	"calls me", "call me"}

var placeCues = []string{"in", "from", "at", "near", "to", "visit", "visiting", "moved to", "live in", "lives in", "living in",
	"born in", "grew up in", "based in", "city of", "town of", "located in", "travel to", "trip to", "serving", "around", "where:"}

// placesByFirst is multiWordPlaces by first byte, in the list's order.
var placesByFirst = func() (t [256][]string) {
	for _, p := range multiWordPlaces {
		t[p[0]] = append(t[p[0]], p)
	}
	return t
}()

// unchangedByUpper reports strings.ToUpper(w) == w without building the
// upper-cased copy when w is ASCII.
func unchangedByUpper(w string) bool {
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case c >= utf8.RuneSelf:
			return strings.ToUpper(w) == w
		case c >= 'a' && c <= 'z':
			return false
		}
	}
	return true
}

type token struct {
	start, end int
	text       string
	lower      string // ASCII-lower-cased text (a slice of the document's, no copy)
	cap        bool   // starts upper-case (or is an initial)
	allCaps    bool
	initial    bool // "D." or "M"
	sentStart  bool
}

func tokenize(toks []token, s, lower string, ws []word) []token {
	for i, w := range ws {
		r, _ := utf8.DecodeRuneInString(w.text)
		t := token{start: w.start, end: w.end, text: w.text, lower: lower[w.start:w.end], cap: unicode.IsUpper(r)}
		if strings.HasPrefix(w.text, "I'") || strings.HasPrefix(w.text, "I’") {
			t.cap = false // I'm, I've, I'd, I'll
		}
		t.allCaps = t.cap && unchangedByUpper(w.text) && utf8.RuneCountInString(w.text) >= 2 && !isNumber(w.text)
		if utf8.RuneCountInString(w.text) == 1 && t.cap {
			t.initial = true
			if w.end < len(s) && s[w.end] == '.' {
				t.end++
			}
		}
		// Sentence start: the beginning, or after . ! ? : newline or a
		// quote. Only capitalised words need it.
		if t.cap || i == 0 {
			prev := trimOpeners(s[max(0, w.start-16):w.start])
			t.sentStart = i == 0 || trimOpeners(s[:w.start]) == "" || strings.HasSuffix(prev, ".") || strings.HasSuffix(prev, "!") ||
				strings.HasSuffix(prev, "?") || strings.HasSuffix(prev, ":") || strings.HasSuffix(prev, "\n") || s[w.start-1] == '\n' || strings.HasSuffix(prev, "…")
		}
		toks = append(toks, t)
	}
	return toks
}

// scanNames finds people, places and organisations: runs of capitalised
// words (initials, particles and suffixes allowed inside), trimmed of
// ordinary words, then typed by the words around them.
func scanNames(d *doc, out []Span) []Span {
	s := d.s
	toks := tokenize(d.toks[:0], s, d.lower, d.words)
	d.toks = toks
	lower := d.lower
	for _, w := range d.words {
		if !startsUpper(w.text) {
			continue
		}
		for _, p := range placesByFirst[lower[w.start]] {
			if !strings.HasPrefix(lower[w.start:], p) {
				continue
			}
			if off := w.start + len(p); off == len(s) || !wordChar(s[off]) {
				out = append(out, Span{w.start, off, Location, 0.8})
			}
		}
	}
	out = scanNamedLower(d, out)
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if !t.cap || isNumber(t.text) {
			continue
		}
		// Extend the run on the same line with single spaces between.
		j := i
		for j+1 < len(toks) {
			n := toks[j+1]
			gap := s[toks[j].end:n.start]
			if gap != " " && gap != ". " && !(gap == "" && toks[j].initial) {
				break
			}
			if gap == ". " && !toks[j].initial && !titles[toks[j].lower+"."] {
				break
			}
			if unitWords[n.lower] || streetTypes[n.lower] {
				break
			}
			if n.cap && !isNumber(n.text) || isParticle(n.text) && j+2 < len(toks) && toks[j+2].cap && s[n.end:toks[j+2].start] == " " {
				j++
				continue
			}
			break
		}
		run := toks[i : j+1]
		// "Davis, Reynolds and Williamson Orchestra", "at Jones, Mitchell
		// and Williams": single capitalised names listed with commas and
		// "and", after "the" or "at" or before an organisation word, name
		// a firm, not people.
		if k, ok := enumeratedOrg(s, lower, toks, i, j); ok {
			out = append(out, Span{toks[i].start, toks[k].end, Organization, 0.5})
			i = k
			continue
		}
		i = j
		out = classifyRun(s, lower, toks, run, out)
	}
	return out
}

// scanNamedLower marks the one or two words after a name introduction
// ("my name is vitoria", "her maiden name is nyberg", "everyone calls me
// borna", "What's your last name? Turgeon") as a person when they are not
// ordinary words, whatever their case. One pass over "name" and "call".
func scanNamedLower(d *doc, out []Span) []Span {
	lower := d.lower
	for _, key := range []string{"name", "call"} {
		for from := 0; ; {
			k := strings.Index(lower[from:], key)
			if k < 0 {
				break
			}
			k += from
			from = k + len(key)
			rest := lower[from:]
			var skip int
			switch {
			case key == "name" && strings.HasPrefix(rest, " is ") && hasSuffixAny(lower[:k], "my ", "maiden ", "last ", "first ", "her ", "his "):
				skip = 4
			case key == "name" && strings.HasPrefix(rest, "? ") && hasSuffixAny(lower[:k], "last ", "first "):
				skip = 2
			case key == "name" && strings.HasPrefix(rest, "'s "):
				skip = 3
			case key == "call" && (strings.HasPrefix(rest, "s me ") || strings.HasPrefix(rest, " me ")):
				skip = strings.Index(rest, "me ") + 3
			default:
				continue
			}
			at := from + skip
			ws := appendWords(nil, d.s[at:min(len(d.s), at+60)])
			n := 0
			for n < len(ws) && n < 2 && (n == 0 && ws[0].start == 0 || n > 0 && ws[n].start-ws[n-1].end == 1 && d.s[at+ws[n-1].end] == ' ') {
				l := lc(ws[n].text)
				if isNumber(l) || stopwords[l] || commonLower(l) && !proper(ws[n].text) {
					break
				}
				n++
			}
			if n > 0 {
				out = append(out, Span{at, at + ws[n-1].end, Person, 0.6})
			}
		}
	}
	return out
}

func hasSuffixAny(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

// enumeratedOrg recognises "A, B and C" (single capitalised words) used as
// a firm's name; it returns the index of C's token.
func enumeratedOrg(s, lower string, toks []token, i, j int) (int, bool) {
	if j != i || j+1 >= len(toks) || s[toks[j].end:min(len(s), toks[j].end+2)] != ", " {
		return 0, false
	}
	k := j
	for k+1 < len(toks) && toks[k+1].cap && k-i < 8 {
		gap := s[toks[k].end:toks[k+1].start]
		if gap == ", " {
			k++
			continue
		}
		if gap == " " && toks[k+1].lower == "and" && k+2 < len(toks) && toks[k+2].cap && s[toks[k+1].end:toks[k+2].start] == " " {
			k += 2
			break
		}
		return 0, false
	}
	if k+1 < len(toks) && toks[k+1].lower == "and" && k+2 < len(toks) && toks[k+2].cap && s[toks[k].end:toks[k+1].start] == " " {
		k += 2
	}
	if k <= j+1 || toks[k-1].lower != "and" {
		return 0, false
	}
	before := lastWords(lower[max(0, toks[i].start-20):toks[i].start], 1)
	orgAfter := k+1 < len(toks) && orgWords[toks[k+1].lower] && s[toks[k].end:toks[k+1].start] == " "
	if before == "the" || before == "at" || orgAfter {
		return k, true
	}
	return 0, false
}

func classifyRun(s, lower string, all []token, run []token, out []Span) []Span {
	runStart := run[0].start
	// A holiday ("Labor Day", "Christmas Eve") names a day, not anyone.
	if len(run) >= 2 && (run[len(run)-1].lower == "day" || run[len(run)-1].lower == "eve") {
		return out
	}
	// A title ("Mr.", "Dr") marks the rest as a person.
	titled := false
	for len(run) > 0 && titles[strings.TrimSuffix(run[0].lower, ".")] {
		titled = true
		run = run[1:]
	}
	// Drop ordinary words at the ends, unless titled.
	for len(run) > 0 && droppable(run[0], titled) {
		run = run[1:]
	}
	// At the end only function words go: "Jane Doe" keeps "Doe".
	for len(run) > 0 && stopwords[strings.TrimSuffix(run[len(run)-1].lower, ".")] {
		run = run[:len(run)-1]
	}
	if len(run) > 0 && !titled {
		uncommon := false
		for _, t := range run {
			l := t.lower
			if strings.ContainsAny(l, "'’") {
				l = apostrophes.Replace(l)
			}
			if !t.initial && (!commonLower(l) || !t.sentStart && proper(t.text)) && !stopwords[l] {
				uncommon = true
			}
		}
		if !uncommon {
			return out // ordinary words in title case ("Cautionary Tales")
		}
	}
	if len(run) == 0 || (len(run) == 1 && run[0].initial) {
		return out
	}
	// A lone street or unit word ("St.", "Suite") is part of an address.
	if len(run) == 1 && (streetTypes[strings.TrimSuffix(run[0].lower, ".")] || unitWords[run[0].lower]) {
		return out
	}
	start, end := run[0].start, run[len(run)-1].end
	if isParticle(run[0].text) {
		return out
	}
	text := s[start:end]
	// The words before the run as written (dropped words included):
	// "from Cite Guedouala" is a place.
	before := lastWords(lower[max(0, runStart-30):runStart], 3)
	after := lower[end:min(len(s), end+12)]
	for _, t := range run {
		if orgWords[t.lower] {
			return append(out, Span{start, end, Organization, 0.6})
		}
	}
	if places[lc(text)] {
		return append(out, Span{start, end, Location, 0.85})
	}
	hasInitial := false
	for _, t := range run {
		if t.initial {
			hasInitial = true
		}
	}
	speaker := strings.HasPrefix(after, ":") && (start == 0 || s[start-1] == '\n' || run[0].sentStart) && !fieldLabels[lc(text)]
	personCtx := titled || hasInitial || speaker || strings.HasPrefix(after, "'s") || strings.HasPrefix(after, "’s") ||
		endsWithAny(before, personCues) || strings.HasPrefix(after, " said") || strings.HasPrefix(after, " says") ||
		strings.HasPrefix(after, " is a") || strings.HasPrefix(after, " was") || strings.HasPrefix(after, " lives") || strings.HasPrefix(after, ",") ||
		hasPrefixAny(after, " told", " asked", " thinks", " thought", " went", " and i", " and me", " wants", " called", " texted", " left",
			" had given", " spent a", " began", " shouted", " is from", " is very", " cried", " replied", " smiled")
	placeCtx := endsWithAny(before, placeCues)
	allCaps := true
	for _, t := range run {
		if !t.allCaps {
			allCaps = false
		}
	}
	// "the Avalara office", "the Packager", "The address of Persint is":
	// a name after "the", or named as having an office, is not a person.
	if !titled && !hasInitial && (strings.HasSuffix(before, "the") || strings.HasSuffix(before, "address of") ||
		strings.HasPrefix(after, " office") || strings.HasPrefix(after, " company") || strings.HasPrefix(after, " inc")) {
		return append(out, Span{start, end, Organization, 0.5})
	}
	// A nationality or language adjective before a noun: "Slovenian food".
	if len(run) == 1 && !titled && demonym(run[0].text) && len(after) > 1 && after[0] == ' ' && after[1] >= 'a' && after[1] <= 'z' {
		return out
	}
	// A capitalised group adjective ("a Black woman", "my Jewish
	// friends") describes someone; it does not name them.
	if len(run) == 1 && !titled && groupWords[run[0].lower] && len(after) > 1 && after[0] == ' ' && after[1] >= 'a' && after[1] <= 'z' {
		return out
	}
	switch {
	case personCtx && !(placeCtx && len(run) == 1 && !titled):
		return append(out, Span{start, end, Person, 0.7})
	case placeCtx || allCaps:
		return append(out, Span{start, end, Location, 0.6})
	case len(run) >= 2:
		return append(out, Span{start, end, Person, 0.55})
	}
	// One unknown capitalised word with no cue: a name if it is not at a
	// sentence start (where any word is capitalised).
	if !run[0].sentStart {
		return append(out, Span{start, end, Person, 0.45})
	}
	return out
}

func hasPrefixAny(s string, ps ...string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// droppable: an ordinary word or function word that merely starts a
// sentence or a title, not part of a name.
var apostrophes = strings.NewReplacer("'", "", "’", "")

func droppable(t token, titled bool) bool {
	l := strings.TrimSuffix(t.lower, ".")
	if strings.ContainsAny(l, "'’") {
		l = apostrophes.Replace(l)
	}
	if stopwords[l] {
		return true
	}
	if titled || t.initial {
		return false
	}
	if t.allCaps && utf8.RuneCountInString(l) <= 4 {
		return true // an acronym (SSN, USA, CEO)
	}
	if t.allCaps && !commonLower(l) {
		return false
	}
	if !t.sentStart && proper(t.text) {
		return false // "John", "Mark" mid-sentence; classifyRun wants a cue when the word is also common
	}
	return commonLower(l)
}

func isSuffixWord(w string) bool {
	switch strings.TrimSuffix(w, ".") {
	case "II", "III", "IV", "Jr", "Sr":
		return true
	}
	return false
}

// endsWithAny reports whether s is one of cues or ends with " "+cue.
func endsWithAny(s string, cues []string) bool {
	for _, c := range cues {
		if len(s) < len(c) || s[len(s)-len(c):] != c {
			continue
		}
		if len(s) == len(c) || s[len(s)-len(c)-1] == ' ' {
			return true
		}
	}
	return false
}

// fieldLabels are the labels of a form's fields ("E-mail: …"): a word
// before a colon at a line start that names no one.
var fieldLabels = toSet(`e-mail email mail phone tel telephone fax cell mobile address date dob ssn zip website url name subject
from to cc re note notes comments occupation employer company title`)

// nationalities the suffix rule of demonym does not catch.
var nationalities = toSet(`dutch czech chechen french welsh swiss thai greek irish scottish cornish flemish basque breton maltese
lao khmer`)

func demonym(w string) bool {
	l := lc(w)
	if nationalities[l] {
		return true
	}
	for _, suf := range []string{"ian", "ish", "ese", "ic", "ean", "ans", "ian's"} {
		if strings.HasSuffix(l, suf) && len(l) > len(suf)+2 {
			return true
		}
	}
	return false
}

// trimOpeners trims trailing spaces, tabs, quotes and opening brackets.
func trimOpeners(s string) string {
	for len(s) > 0 {
		switch {
		case strings.IndexByte(" \t\"'(", s[len(s)-1]) >= 0:
			s = s[:len(s)-1]
		case strings.HasSuffix(s, "“"), strings.HasSuffix(s, "‘"):
			s = s[:len(s)-len("“")]
		default:
			return s
		}
	}
	return s
}
