package pii

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

var months = map[string]bool{"january": true, "february": true, "march": true, "april": true, "may": true, "june": true, "july": true,
	"august": true, "september": true, "october": true, "november": true, "december": true, "jan": true, "feb": true, "mar": true,
	"apr": true, "jun": true, "jul": true, "aug": true, "sep": true, "sept": true, "oct": true, "nov": true, "dec": true}

// word is a token of text: letters (any script) and digits, with inner
// apostrophes, hyphens and dots.
type word struct {
	start, end int
	text       string
}

func words(s string) []word { return appendWords(make([]word, 0, len(s)/5+1), s) }

// appendWords appends the words of s to out.
func appendWords(out []word, s string) []word {
	i := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			// ASCII fast path: no rune decoding for most text.
			if !isAlnum(c) {
				i++
				continue
			}
		} else if r, n := utf8.DecodeRuneInString(s[i:]); !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			i += n
			continue
		}
		j := i
		for j < len(s) {
			c := s[j]
			if c < utf8.RuneSelf {
				if isAlnum(c) {
					j++
					continue
				}
				if (c == '\'' || c == '-') && j+1 < len(s) && letterAt(s, j+1) {
					j++
					continue
				}
				break
			}
			r, n := utf8.DecodeRuneInString(s[j:])
			if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) {
				j += n
				continue
			}
			if r == '’' && j+n < len(s) && letterAt(s, j+n) {
				j += n
				continue
			}
			break
		}
		out = append(out, word{i, j, s[i:j]})
		i = j
	}
	return out
}

// letterAt reports whether a letter starts at s[i].
func letterAt(s string, i int) bool {
	if c := s[i]; c < utf8.RuneSelf {
		return isAlpha(c)
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r)
}

func isNumber(w string) bool {
	for i := 0; i < len(w); i++ {
		if !isDigit(w[i]) {
			return false
		}
	}
	return w != ""
}

// ordinalNumber is "3", "3rd", "21st".
func ordinalNumber(w string) bool {
	w = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(w, "st"), "nd"), "rd"), "th")
	return isNumber(w) && len(w) <= 2
}

// scanDates finds numeric dates (3/4/2020, 2020-03-04, 03.04.2020), dates
// with month names (March 3, 2020; 3rd of March; March 2020). A year
// alone is not an identifier under Safe Harbor and is kept, and so is a
// weekday alone ("see you Monday").
// monthStart has the first byte of every entry of months: most words
// start with another and need no lookup.
var monthStart = func() (t [256]bool) {
	for m := range months {
		t[m[0]] = true
	}
	return t
}()

func scanDates(d *doc, out []Span) []Span {
	s := d.s
	for _, r := range d.runs {
		t := s[r.start:r.end]
		p := strings.FieldsFunc(t, func(c rune) bool { return c == '/' || c == '-' || c == '.' })
		if len(p) == 3 && strings.Count(t, " ") == 0 && allNumbers(p) {
			a, b, c := len(p[0]), len(p[1]), len(p[2])
			if (a <= 2 && b <= 2 && (c == 2 || c == 4)) || (a == 4 && b <= 2 && c <= 2) {
				out = append(out, Span{r.start, r.end, Date, 0.9})
			}
		}
	}
	// ISO dates with an optional time: 1992-11-12 07:04:41.
	for i := 0; d.digits && i+10 <= len(s); i++ {
		if (i > 0 && isAlnum(s[i-1])) || !isoDate(s[i:i+10]) {
			continue
		}
		e := i + 10
		if e+6 <= len(s) && (s[e] == ' ' || s[e] == 'T') && isDigit(s[e+1]) && isDigit(s[e+2]) && s[e+3] == ':' && isDigit(s[e+4]) && isDigit(s[e+5]) {
			e += 6
			if e+3 <= len(s) && s[e] == ':' && isDigit(s[e+1]) && isDigit(s[e+2]) {
				e += 3
			}
		}
		out = append(out, Span{i, e, Date, 0.95})
		i = e
	}
	ws := d.words
	for i, w := range ws {
		// (A weekday alone says no date: only months start one.)
		if n := w.end - w.start; n < 3 || n > 9 {
			continue
		}
		if lw := d.lower[w.start:w.end]; !monthStart[lw[0]] || !months[lw] || (lw == "may" && w.text != "May") || (len(w.text) <= 4 && !startsUpper(w.text)) {
			continue
		}
		start, end := w.start, w.end
		// Before: "3rd of March", "3 March".
		if i >= 1 && ordinalNumber(ws[i-1].text) && w.start-ws[i-1].end <= 4 {
			start = ws[i-1].start
		} else if i >= 2 && strings.EqualFold(ws[i-1].text, "of") && ordinalNumber(ws[i-2].text) {
			start = ws[i-2].start
		}
		// After: "March 3", "March 3rd, 2020", "March 2020".
		k := i + 1
		if k < len(ws) && ordinalNumber(ws[k].text) && ws[k].start-w.end <= 2 {
			end = ws[k].end
			k++
		}
		if k < len(ws) && isNumber(ws[k].text) && len(ws[k].text) == 4 && ws[k].start-end <= 2 {
			end = ws[k].end
		}
		if start == w.start && end == w.end && w.text == "May" {
			continue // "May I ..." is not a date
		}
		out = append(out, Span{start, end, Date, 0.85})
	}
	return out
}

func isoDate(t string) bool {
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			if t[i] != '-' {
				return false
			}
		} else if !isDigit(t[i]) {
			return false
		}
	}
	return (t[5] == '0' || t[5] == '1') && t[8] <= '3'
}

func allNumbers(p []string) bool {
	for _, x := range p {
		if !isNumber(x) {
			return false
		}
	}
	return true
}

func startsUpper(w string) bool {
	if w != "" && w[0] < utf8.RuneSelf {
		return w[0] >= 'A' && w[0] <= 'Z'
	}
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r)
}

// scanAges finds ages: "74 year old", "31 y/o", "aged 92", "I'll turn 23",
// "age: 45". Ages are masked whatever their value: only those over 89 are
// Safe Harbor identifiers, but an age next to other details narrows who
// someone is.
func scanAges(d *doc, out []Span) []Span {
	s := d.s
	lower := d.lower
	ws := d.words
	for i, w := range ws {
		if !isNumber(w.text) {
			if !isDigit(w.text[0]) {
				continue
			}
			// "65-year-old" is one word.
			d, rest, ok := strings.Cut(w.text, "-")
			if !ok || !isNumber(d) || len(d) > 3 || !strings.HasPrefix(lc(rest), "year") {
				continue
			}
			if n := atoi(d); n > 0 && n <= 130 {
				out = append(out, Span{w.start, w.start + len(d), Age, 0.85})
			}
			continue
		}
		if len(w.text) > 3 {
			continue
		}
		if n := atoi(w.text); n > 130 || n == 0 {
			continue
		}
		after := lower[w.end:min(len(s), w.end+16)]
		before := lastWords(lower[max(0, w.start-24):w.start], 2)
		ok := false
		for _, suf := range []string{" year old", " years old", "-year-old", " year-old", " yo ", " y/o", " y.o", "yo,", "yo.", " yrs old", " yr old", "-years-old"} {
			if strings.HasPrefix(after, suf) || (strings.TrimSpace(suf) == "yo" && after == " yo") {
				ok = true
			}
		}
		if !ok {
			for _, pre := range []string{"aged", "age", "age:", "age of", "turn", "turned", "turning"} {
				if before == pre || strings.HasSuffix(before, " "+pre) {
					ok = true
				}
			}
			if (strings.HasSuffix(before, "i'm") || strings.HasSuffix(before, "i am") || strings.HasSuffix(before, "he's") || strings.HasSuffix(before, "she's")) &&
				(after == "" || after[0] == '.' || after[0] == ',' || after[0] == '!' || strings.HasPrefix(after, " and") || strings.HasPrefix(after, " now")) {
				ok = true
			}
		}
		if ok {
			out = append(out, Span{w.start, w.end, Age, 0.85})
		}
		_ = i
	}
	return out
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Street-type words, English and the usual European ones; words ending in
// streetEndings are streets in Nordic, German and Dutch spelling.
var streetTypes = map[string]bool{"street": true, "st": true, "avenue": true, "ave": true, "road": true, "rd": true, "boulevard": true,
	"blvd": true, "lane": true, "ln": true, "drive": true, "dr": true, "court": true, "ct": true, "way": true, "place": true, "pl": true,
	"terrace": true, "circle": true, "cir": true, "highway": true, "hwy": true, "parkway": true, "pkwy": true, "square": true, "sq": true,
	"trail": true, "crescent": true, "close": true, "grove": true, "row": true, "alley": true, "plaza": true, "path": true, "pike": true,
	"út": true, "útja": true, "utca": true, "tér": true}

// fullStreetTypes are the street types that name a street without a house
// number after a cue ("shows on Isaac Lodge Street").
var fullStreetTypes = map[string]bool{"street": true, "avenue": true, "road": true, "boulevard": true, "lane": true, "drive": true,
	"terrace": true, "highway": true, "parkway": true, "crescent": true}

var streetPrefixes = map[string]bool{"rua": true, "via": true, "calle": true, "rue": true, "avenida": true, "avenue": true, "viale": true,
	"piazza": true, "plaza": true, "strada": true, "ulica": true, "ul": true, "carrer": true, "praça": true, "travessa": true, "largo": true}

// prefixStart has the first byte of every street prefix.
var prefixStart = func() (t [256]bool) {
	for p := range streetPrefixes {
		t[p[0]] = true
	}
	return t
}()

var streetEndings = []string{"katu", "tie", "vej", "gade", "gatan", "vägen", "väg", "straße", "strasse", "straat", "weg", "laan", "gasse",
	"platz", "allee", "veien", "gata", "stræde", "vænget", "tori", "polku", "kuja"}

var unitWords = map[string]bool{"apt": true, "apartment": true, "suite": true, "ste": true, "unit": true, "box": true, "floor": true, "fl": true, "room": true}

// streetEndingLast holds the last bytes of streetEndings, a cheap first test.
var streetEndingLast = func() [256]bool {
	var t [256]bool
	for _, e := range streetEndings {
		t[e[len(e)-1]] = true
	}
	return t
}()

func isStreetWord(w string) bool {
	if len(w) < 2 {
		return false
	}
	l := lc(w)
	if streetTypes[l] {
		return true
	}
	if !streetEndingLast[l[len(l)-1]] {
		return false
	}
	for _, e := range streetEndings {
		if strings.HasSuffix(l, e) && (len(l) > len(e)+2 || l == e) {
			return true
		}
	}
	return false
}

// scanAddresses finds street addresses: "123 Main Street", "Rua do Arenque
// 1634", "Koskikatu 25", with a unit ("Apt. 864", "Suite 838") and a
// leading house number; units and PO boxes alone; and after an address,
// the comma- or line-separated places and postal codes that follow.
func scanAddresses(d *doc, out []Span) []Span {
	s := d.s
	ws := d.words
	lower := d.lower
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		start, end := -1, -1
		l := d.lower[w.start:w.end]
		up := startsUpper(w.text)
		street := up && streetTypes[l] // the one lookup the cases below share
		switch {
		case isNumber(w.text) && len(w.text) <= 6:
			// 123 [Name words] Street-type, or 123 Name words 45 (the
			// European order with a leading code), one or two numbers first.
			first := i
			if i+1 < len(ws) && isNumber(ws[i+1].text) && len(ws[i+1].text) <= 6 && sameLine(s, w.end, ws[i+1].start) && ws[i+1].start-w.end == 1 {
				i++
			}
			names, lowers := 0, 0
			// "643 ul. Biskupa …", "688 rue du centre 320": a street
			// prefix makes the words after it a street name whatever
			// their case.
			prefixed := i+1 < len(ws) && streetPrefixes[lc(ws[i+1].text)]
			for k := i + 1; k < len(ws) && k <= i+8 && sameLine(s, ws[k-1].end, ws[k].start) && ws[k].start-ws[k-1].end <= 3; k++ {
				if isStreetWord(ws[k].text) && k > i+1 {
					start, end = ws[first].start, ws[k].end
					i = k
					break
				}
				if isNumber(ws[k].text) && names > 0 && len(ws[k].text) <= 4 {
					start, end = ws[first].start, ws[k].end
					i = k
					break
				}
				if (startsUpper(ws[k].text) || prefixed) && !isNumber(ws[k].text) {
					names++
					continue
				}
				if names > 0 && lowers < 2 && !isNumber(ws[k].text) && k-i <= 4 {
					lowers++ // "Árpád fejedelem útja 62"
					continue
				}
				if !isParticle(ws[k].text) && !(len(ws[k].text) <= 2 && k+1 < len(ws) && isNumber(ws[k+1].text)) {
					break
				}
			}
			if start < 0 {
				i = first
			}
		case len(l) >= 2 && prefixStart[l[0]] && (up || i+1 < len(ws) && startsUpper(ws[i+1].text)) && streetPrefixes[l] ||
			up && !street && isStreetWord(w.text):
			// Rua do Arenque 1634, Koskikatu 25, ul. Miła 53
			for k := i; k < len(ws) && k <= i+6 && (k == i || sameLine(s, ws[k-1].end, ws[k].start)); k++ {
				if isNumber(ws[k].text) && k > i {
					start, end = w.start, ws[k].end
					if i > 0 && isNumber(ws[i-1].text) && sameLine(s, ws[i-1].end, w.start) && w.start-ws[i-1].end <= 2 {
						start = ws[i-1].start
					}
					i = k
					break
				}
				if k > i && !startsUpper(ws[k].text) && !isParticle(ws[k].text) && startsUpper(w.text) {
					break
				}
			}
		case up && !street && namedStreet(d, i) > i:
			// "shows on Isaac Lodge Street": no number, a cue before.
			k := namedStreet(d, i)
			start, end = w.start, ws[k].end
			i = k
		case d.digits && up && !street && numberWithin(ws, i, 4) && addressCue(lower[max(0, w.start-40):w.start]): // a number needs a digit
			// "lives at Maneeži 75", "corner of Dalbraut 99"
			for k := i + 1; k < len(ws) && k <= i+4 && sameLine(s, ws[k-1].end, ws[k].start); k++ {
				if isNumber(ws[k].text) && len(ws[k].text) <= 4 {
					start, end = w.start, ws[k].end
					i = k
					break
				}
				if !startsUpper(ws[k].text) && !isParticle(ws[k].text) {
					break
				}
			}
		case l == "po" || l == "p.o" || l == "psc" || l == "apo" || l == "fpo":
			if k := i + 1; k < len(ws) && (isNumber(ws[k].text) || strings.EqualFold(ws[k].text, "box")) {
				e := k
				for e < len(ws) && e <= k+2 && (isNumber(ws[e].text) || strings.EqualFold(ws[e].text, "box") || len(ws[e].text) == 2 && strings.ToUpper(ws[e].text) == ws[e].text) {
					e++
				}
				if e > k && isNumber(ws[e-1].text) {
					start, end = w.start, ws[e-1].end
					i = e - 1
				}
			}
		}
		if start < 0 {
			if i+1 < len(ws) && ws[i+1].start-w.end <= 3 && isNumber(strings.TrimPrefix(ws[i+1].text, "#")) && unitWords[l] &&
				(l != "box" && l != "floor" && l != "room" || strings.Contains(lower[max(0, w.start-30):w.start], "address")) {
				out = append(out, Span{w.start, ws[i+1].end, Address, 0.7})
				i++
			}
			continue
		}
		// A unit on the same line: "… Apt. 864".
		if i+2 < len(ws) && unitWords[d.lower[ws[i+1].start:ws[i+1].end]] && isNumber(ws[i+2].text) && sameLine(s, end, ws[i+2].start) && ws[i+1].start-end <= 3 {
			end = ws[i+2].end
			i += 2
		}
		// "Apt. 864" with its dot.
		if i+2 < len(ws) && unitWords[d.lower[ws[i+1].start:ws[i+1].end]] && isNumber(ws[i+2].text) && sameLine(s, end, ws[i+2].start) && ws[i+2].start-end <= 4 {
			end = ws[i+2].end
			i += 2
		}
		// The parts that follow (unit, city, region, postal code,
		// country) are masked with their own types.
		out = append(out, Span{start, end, Address, 0.85})
		var tail []Span
		tail = addressTail(s, end, tail)
		last := end
		for _, t := range tail {
			if t.Start-last <= 4 || !strings.Contains(s[last:t.Start], ".") {
				out = append(out, t)
				last = t.End
			}
		}
		for i+1 < len(ws) && ws[i+1].start < last {
			i++
		}
	}
	return out
}

// numberWithin reports whether one of the n words after ws[i] is a number.
func numberWithin(ws []word, i, n int) bool {
	for k := i + 1; k < len(ws) && k <= i+n; k++ {
		if isNumber(ws[k].text) {
			return true
		}
	}
	return false
}

// namedStreet returns k when ws[i..k] is one to three capitalised words and
// a full street type after a cue ("on", "at"), else -1.
func namedStreet(d *doc, i int) int {
	ws := d.words
	prev := lastWords(d.lower[max(0, ws[i].start-12):ws[i].start], 1)
	if prev != "on" && prev != "at" && prev != "along" && prev != "off" && prev != "near" {
		return -1
	}
	for k := i + 1; k < len(ws) && k <= i+3 && sameLine(d.s, ws[k-1].end, ws[k].start); k++ {
		t := ws[k].text
		if fullStreetTypes[lc(t)] && startsUpper(t) {
			return k
		}
		if !startsUpper(t) {
			return -1
		}
	}
	return -1
}

func addressCue(before string) bool {
	return hasAny(before, "address", "lives at", "live at", "living at", "located at", "located on", "is at", "corner of", "send it to",
		"ship to", "deliver to", "moved to", "reside at", "resides at", "is on")
}

func isParticle(w string) bool {
	switch lc(w) {
	case "do", "da", "de", "del", "della", "dei", "degli", "delle", "di", "dos", "das", "du", "la", "le", "les", "van", "von", "der", "den", "of", "the", "y", "e":
		return true
	}
	return false
}

// allLetters reports whether s holds only letters and spaces.
func allLetters(s string) bool {
	for _, r := range s {
		if r != ' ' && !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

func sameLine(s string, a, b int) bool { return a <= b && !strings.Contains(s[a:b], "\n") }

// addressTail marks the parts after an address: "…, Goiânia", "\nKNIVSTA,
// CO 18237", a unit line, a postal code.
func addressTail(s string, at int, out []Span) []Span {
	pos := at
	for part := 0; part < 5 && pos < len(s); part++ {
		// Skip the separator: commas, spaces, a newline.
		j := pos
		// "… u. 12.\n": a full stop that ends the line ends nothing.
		if j < len(s) && s[j] == '.' && (j+1 == len(s) || s[j+1] == '\n') {
			j++
		}
		for j < len(s) && strings.IndexByte(", \t\n\r>?", s[j]) >= 0 {
			j++
		}
		newLine := strings.IndexByte(s[pos:j], '\n') >= 0
		if j == pos || j >= len(s) {
			return out
		}
		k := j
		// A tail part is short: stop looking after 80 bytes (a scan to the
		// next separator would make a long run of addresses quadratic).
		for k < len(s) && k-j <= 80 && s[k] != ',' && s[k] != '\n' && s[k] != ';' && s[k] != '?' && s[k] != '!' &&
			!(s[k] == '.' && (k+1 == len(s) || s[k+1] == ' ' || s[k+1] == '\n') && !unitWords[asciiLower(lastWords(s[j:k], 1))]) {
			k++
		}
		seg := strings.TrimSpace(s[j:k])
		if seg == "" || len(seg) > 60 {
			return out
		}
		sw := words(s[j:k])
		if len(sw) == 0 {
			return out
		}
		for wi := 0; wi < len(sw); wi++ {
			w := sw[wi]
			a, b := j+w.start, j+w.end
			switch {
			case unitWords[lc(w.text)] && wi+1 < len(sw) && isNumber(sw[wi+1].text):
				out = append(out, Span{a, j + sw[wi+1].end, Address, 0.8})
				wi++
			case isNumber(w.text) && len(w.text) >= 3 && len(w.text) <= 6:
				e := b
				if wi+1 < len(sw) && len(sw[wi+1].text) == 2 && strings.ToUpper(sw[wi+1].text) == sw[wi+1].text && !isNumber(sw[wi+1].text) {
					e = j + sw[wi+1].end // "7412 SL"
					wi++
				}
				out = append(out, Span{a, e, ZIP, 0.8})
			case startsUpper(w.text) || (len(w.text) >= 3 && strings.ToUpper(w.text) == w.text):
				e := b
				for wi+1 < len(sw) && (startsUpper(sw[wi+1].text) || isParticle(sw[wi+1].text)) && !isNumber(sw[wi+1].text) {
					wi++
					e = j + sw[wi].end
				}
				out = append(out, Span{a, e, Location, 0.75})
			case newLine && (k == len(s) || s[k] == '\n') && len(sw) <= 5 && allLetters(seg):
				// A whole line of words: "marke", "Črni Vrh nad Idrijo".
				out = append(out, Span{a, j + sw[len(sw)-1].end, Location, 0.6})
				wi = len(sw)
			case newLine && allLetters(w.text) && wi+1 < len(sw):
				// "ASKER nan 1386": a placeholder or lower-case word
				// inside an address line.
				out = append(out, Span{a, b, Location, 0.5})
			default:
				return out
			}
		}
		pos = k
	}
	return out
}
