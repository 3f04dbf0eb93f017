// Package pii finds personal identifiers in text and masks them: the HIPAA
// Safe Harbor identifiers that appear in conversations (names, places
// smaller than a state, street addresses, ZIP codes, dates, ages, phone
// numbers, email, SSN, account, licence and other numbers, URLs, IP
// addresses). Structured identifiers are found by hand-written scanners
// and validated (Luhn, SSN area rules, phone numbering plans); names and
// places by context rules over capitalised words. Offsets are UTF-8 byte
// offsets, end exclusive. Nothing here logs or returns matched text except
// to the caller that passed it in.
package pii

import (
	"slices"
	"strings"
	"sync"
)

// Canonical identifier types.
const (
	Person       = "PERSON"
	Address      = "ADDRESS"
	Location     = "LOCATION"
	ZIP          = "ZIP"
	Date         = "DATE"
	Age          = "AGE"
	Phone        = "PHONE"
	Email        = "EMAIL"
	SSN          = "SSN"
	CreditCard   = "CREDIT_CARD"
	Account      = "ACCOUNT"
	IPAddress    = "IP_ADDRESS"
	URL          = "URL"
	ID           = "ID"
	Organization = "ORGANIZATION"
	// Username is a social-media handle (@name, u/name) or a community
	// name (r/name): "any other unique identifying ... code" under Safe
	// Harbor.
	Username = "USERNAME"
)

// SafeHarbor lists the types that are HIPAA Safe Harbor identifiers
// (ORGANIZATION is reported but is not one).
var SafeHarbor = []string{Person, Address, Location, ZIP, Date, Age, Phone, Email, SSN, CreditCard, Account, IPAddress, URL, ID, Username}

// Span is one detected identifier.
type Span struct {
	Start int     `json:"start"`
	End   int     `json:"end"`
	Type  string  `json:"type"`
	Score float64 `json:"score"`
}

// Detect returns the identifiers in text, sorted, not overlapping.
func Detect(text string) []Span {
	d := docs.Get().(*doc)
	d.load(text)
	spans := detectSpans(d)
	out := resolve(d, spans)
	// Keep the buffers, not the text.
	d.s, d.lower, d.runs = "", "", nil
	clear(d.words)
	clear(d.toks)
	d.spans = spans[:0]
	docs.Put(d)
	return out
}

// docs recycles the per-call buffers: Detect runs once per turn, on every
// core.
var docs = sync.Pool{New: func() any { return &doc{} }}

// doc is the text with what every scanner needs, computed once, and the
// buffers a call reuses.
type doc struct {
	s, lower string
	digits   bool // s holds a digit
	words    []word
	runs     []numRun
	toks     []token
	spans    []Span
	taken    []bool
	addrAt   []int32
	cands    []Span
	tw       []tword
	tags     []uint8
	feats    []uint32
}

// load computes what every scanner needs from text (training builds its
// documents the same way).
func (d *doc) load(text string) {
	d.s, d.lower = text, asciiLower(text)
	d.words = appendWords(d.words[:0], text)
	d.runs = numberRuns(text)
	d.digits = hasDigit(text)
}

// detectSpans runs every scanner over d, unresolved: the structured
// scanners, the context rules for names, and the trained tagger, which
// sees what the others found and adds the names and places they missed
// (resolve keeps the longer of two overlapping names).
func detectSpans(d *doc) []Span {
	spans := scanStructured(d, d.spans[:0])
	spans = scanNames(d, spans)
	spans = scanTagged(mustTagger(), d, spans)
	retypePlaces(d, spans)
	return zipAfterPlace(d.s, spans)
}

// placeNouns end the names of places and facilities: "Trump Tower",
// "Redondo Beach Blvd", "Discovery Island".
var placeNouns = toSet("tower towers blvd boulevard land island islands hospital academy square park beach camp airbase base center centre " +
	"mall bridge lake river mountain mountains valley county city street avenue road stadium arena airport station palace castle " +
	"cathedral temple mosque church zoo museum hotel resort gardens falls canyon bay harbor harbour")

// placeBefore are the words right before a name that make it a place:
// "in Gardena", "near Compton", "on Earth".
var placeBefore = toSet("in near on")

// retypePlaces turns a guessed person (no title, speech verb or other
// person cue: score under 0.7) into a place when it ends with a place
// noun or follows "in", "near" or "on".
func retypePlaces(d *doc, spans []Span) {
	for i := range spans {
		sp := &spans[i]
		if sp.Type != Person || sp.Score >= 0.7 {
			continue
		}
		last := strings.ToLower(lastWords(d.s[sp.Start:sp.End], 1))
		before := strings.ToLower(lastWords(d.s[max(0, sp.Start-12):sp.Start], 1))
		if placeNouns[last] && sp.End-sp.Start > len(last)+1 || placeBefore[before] {
			sp.Type = Location
		}
	}
}

// priority orders types when spans overlap: structured, validated
// identifiers beat context guesses.
var priority = map[string]int{
	Email: 10, URL: 9, IPAddress: 9, CreditCard: 8, SSN: 8, Account: 8, ID: 7, Phone: 7,
	Username: 7, Date: 6, Age: 6, Address: 5, ZIP: 5, Person: 3, Location: 3, Organization: 2,
}

// resolve drops spans overlapping a better one (higher priority, then
// longer, then earlier). It is linear in the bytes the spans cover: a byte
// map of what is taken, not a comparison of every pair (a text with tens
// of thousands of candidates must not take quadratic time).
func resolve(d *doc, spans []Span) []Span {
	if len(spans) == 0 {
		return nil
	}
	end := 0
	for _, s := range spans {
		end = max(end, s.End)
	}
	// An address holds numbers that look like phone numbers or codes: a
	// span strictly inside an address is part of it. addrAt holds, per
	// byte, the longest address span covering it (index+1; 0 for none).
	var addrAt []int32
	for i, s := range spans {
		if s.Type != Address {
			continue
		}
		if addrAt == nil {
			if cap(d.addrAt) < end {
				d.addrAt = make([]int32, end)
			}
			addrAt = d.addrAt[:end]
			clear(addrAt)
		}
		for b := max(s.Start, 0); b < s.End; b++ {
			if cur := addrAt[b]; cur == 0 || spans[cur-1].End-spans[cur-1].Start < s.End-s.Start {
				addrAt[b] = int32(i + 1)
			}
		}
	}
	insideAddress := func(s Span) bool {
		if addrAt == nil || s.Start < 0 || s.End <= s.Start {
			return false
		}
		a := addrAt[s.Start]
		if a == 0 || addrAt[s.End-1] != a {
			return false
		}
		as := spans[a-1]
		return as.Start <= s.Start && s.End <= as.End && (as.Start < s.Start || s.End < as.End)
	}
	candidates := d.cands[:0]
	for _, s := range spans {
		if s.End <= s.Start || s.Start < 0 {
			continue
		}
		if (s.Type == Phone || s.Type == ZIP || s.Type == Account || s.Type == ID) && insideAddress(s) {
			continue
		}
		candidates = append(candidates, s)
	}
	slices.SortStableFunc(candidates, func(a, b Span) int {
		if pa, pb := priority[a.Type], priority[b.Type]; pa != pb {
			return pb - pa
		}
		if la, lb := a.End-a.Start, b.End-b.Start; la != lb {
			return lb - la
		}
		return a.Start - b.Start
	})
	d.cands = candidates
	if cap(d.taken) < end {
		d.taken = make([]bool, end)
	}
	taken := d.taken[:end]
	clear(taken)
	var kept []Span
	for _, s := range candidates {
		free := true
		for b := s.Start; b < s.End; b++ {
			if taken[b] {
				free = false
				break
			}
		}
		if !free {
			continue
		}
		for b := s.Start; b < s.End; b++ {
			taken[b] = true
		}
		kept = append(kept, s)
	}
	slices.SortFunc(kept, func(a, b Span) int { return a.Start - b.Start })
	return joinNames(d.s, kept)
}

// joinNames makes one span of a name found word by word ("maria" and
// "lopez"): two PERSON or LOCATION spans apart by one space become one,
// so a masked name is one placeholder, and one pseudonym.
func joinNames(text string, spans []Span) []Span {
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.Type == s.Type && (s.Type == Person || s.Type == Location) && s.Start == last.End+1 && text[last.End] == ' ' {
				last.End, last.Score = s.End, max(last.Score, s.Score)
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// asciiLower lower-cases ASCII letters only, so byte offsets into the
// result are offsets into s (strings.ToLower can change lengths).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// lc lower-cases a word, without allocating when it already is lower-case
// ASCII (most words).
func lc(w string) string {
	for i := 0; i < len(w); i++ {
		if c := w[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(w)
		}
	}
	return w
}
