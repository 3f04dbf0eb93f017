package pii

import (
	"net/netip"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// wordChar reports whether the byte continues a word (ASCII alnum or any
// non-ASCII byte, so letters of every script stay whole).
func wordChar(c byte) bool { return isAlnum(c) || c >= 0x80 }

// scanStructured finds the identifiers that have a shape: email, URL, IP,
// card, SSN, phone, account, IDs, dates, ages, ZIP codes and addresses.
//
// A scanner that needs a byte the text lacks (an email or handle its @, a
// handle its @ or /, an IPv6 address its colon; numbers, IBANs, coded
// identifiers and ages a digit) is skipped: it would find nothing, and
// most turns hold none of them.
func scanStructured(d *doc, out []Span) []Span {
	at := strings.IndexByte(d.s, '@') >= 0
	if at {
		out = scanEmails(d, out)
	}
	if at || strings.IndexByte(d.s, '/') >= 0 {
		out = scanHandles(d, out)
	}
	out = scanURLs(d, out)
	if strings.IndexByte(d.s, ':') >= 0 {
		out = scanIPv6(d, out)
	}
	if d.digits {
		out = scanNumbers(d, out)
		out = scanIBAN(d, out)
		out = scanContextIDs(d, out)
	}
	out = scanDates(d, out)
	if d.digits {
		out = scanAges(d, out)
	}
	out = scanAddresses(d, out)
	out = scanMilitaryAndCorners(d, out)
	return out
}

// hasDigit reports whether s holds an ASCII digit.
func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i]-'0' <= 9 {
			return true
		}
	}
	return false
}

func scanEmails(d *doc, out []Span) []Span {
	s := d.s
	for i := 0; i < len(s); i++ {
		if s[i] != '@' {
			continue
		}
		a := i
		for a > 0 && (isAlnum(s[a-1]) || strings.IndexByte("._%+-", s[a-1]) >= 0) {
			a--
		}
		b := i + 1
		dot := false
		for b < len(s) && (isAlnum(s[b]) || s[b] == '.' || s[b] == '-') {
			if s[b] == '.' {
				dot = true
			}
			b++
		}
		for b > i+1 && (s[b-1] == '.' || s[b-1] == '-') {
			b--
		}
		if a == i || !dot || b-i < 4 {
			continue
		}
		tld := s[strings.LastIndexByte(s[i:b], '.')+i+1 : b]
		if len(tld) < 2 || !allAlpha(tld) {
			continue
		}
		out = append(out, Span{a, b, Email, 0.99})
		i = b
	}
	return out
}

// scanHandles finds social-media handles (@name, not inside an email
// address) and Reddit user and community names (u/name, /u/name, r/name).
func scanHandles(d *doc, out []Span) []Span {
	s := d.s
	name := func(j, maxLen int) int {
		k := j
		for k < len(s) && k-j <= maxLen && (isAlnum(s[k]) || s[k] == '_' || s[k] == '-' && k > j) {
			k++
		}
		return k
	}
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '@' && (i == 0 || !isAlnum(s[i-1]) && s[i-1] != '.' && s[i-1] != '_'):
			k := name(i+1, 30)
			// Not an email's domain, not a bare "@" or "@5".
			if k-i >= 3 && (k >= len(s) || s[k] != '.' || k+1 >= len(s) || !isAlpha(s[k+1])) && !allDigits(s[i+1:k]) {
				out = append(out, Span{i, k, Username, 0.9})
				i = k
			}
		case (s[i] == 'u' || s[i] == 'r' || s[i] == 'U' || s[i] == 'R') && i+1 < len(s) && s[i+1] == '/' &&
			(i == 0 || s[i-1] == ' ' || s[i-1] == '/' || s[i-1] == '(' || s[i-1] == '\n'):
			k := name(i+2, 21)
			if k-(i+2) >= 3 {
				start := i
				if i > 0 && s[i-1] == '/' {
					start = i - 1
				}
				out = append(out, Span{start, k, Username, 0.9})
				i = k
			}
		}
	}
	return out
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func allAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return s != ""
}

// commonTLDs mark a bare domain as a URL ("example.com/page").
var commonTLDs = map[string]bool{"com": true, "org": true, "net": true, "edu": true, "gov": true, "io": true, "co": true, "info": true,
	"biz": true, "us": true, "uk": true, "de": true, "fr": true, "ca": true, "au": true, "br": true, "ch": true, "se": true, "be": true,
	"nl": true, "it": true, "es": true, "pt": true, "si": true, "cy": true, "dk": true, "no": true, "fi": true, "pl": true, "cz": true,
	"at": true, "ie": true, "nz": true, "jp": true, "in": true, "ru": true, "me": true, "app": true, "dev": true, "ly": true, "tv": true}

func scanURLs(d *doc, out []Span) []Span {
	s := d.s
	lower := d.lower
	for i := 0; i < len(s); i++ {
		if i > 0 && wordChar(s[i-1]) {
			continue
		}
		start := -1
		switch {
		case strings.HasPrefix(lower[i:], "http://"), strings.HasPrefix(lower[i:], "https://"), strings.HasPrefix(lower[i:], "www."):
			start = i
		case isAlnum(s[i]):
			// A bare domain: name.tld with a known TLD, optionally a path.
			j, dots := i, false
			for j < len(s) && (isAlnum(s[j]) || s[j] == '.' || s[j] == '-') {
				dots = dots || s[j] == '.'
				j++
			}
			host := ""
			if dots { // most words hold no dot and can be no domain
				host = trimDotsDashes(lower[i:j])
			}
			if d := strings.LastIndexByte(host, '.'); d > 0 && commonTLDs[host[d+1:]] && strings.Count(host, ".") <= 4 && !allDigitsDots(host) &&
				(j >= len(s) || s[j] != '@') && (i == 0 || s[i-1] != '@') && hasLetter(host[:d]) {
				start = i
			} else {
				// Not a domain: nothing inside this run starts one either
				// (each rescan would make "a.a.a…" quadratic).
				i = max(i, j-1)
				continue
			}
		}
		if start < 0 {
			continue
		}
		j := start
		for j < len(s) && s[j] > ' ' && strings.IndexByte("\"'<>()[]{}|\\^`", s[j]) < 0 {
			j++
		}
		for j > start && strings.IndexByte(".,;:!?", s[j-1]) >= 0 {
			j--
		}
		if j-start >= 6 && !strings.Contains(s[start:j], "@") {
			out = append(out, Span{start, j, URL, 0.95})
			i = j
		}
	}
	return out
}

// trimDotsDashes is strings.TrimRight(s, ".-") without building a cutset.
func trimDotsDashes(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '.' || s[len(s)-1] == '-') {
		s = s[:len(s)-1]
	}
	return s
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if isAlpha(s[i]) {
			return true
		}
	}
	return false
}

func allDigitsDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

func scanIPv6(d *doc, out []Span) []Span {
	s := d.s
	for i := 0; i < len(s); i++ {
		if s[i] != ':' || (i > 0 && !isHexOrColon(s[i-1])) {
			continue
		}
		a, b := i, i
		for a > 0 && isHexOrColon(s[a-1]) {
			a--
		}
		for b < len(s) && (isHexOrColon(s[b]) || s[b] == '.') {
			b++
		}
		cand := strings.TrimRight(s[a:b], ".")
		if strings.Count(cand, ":") >= 2 && len(cand) >= 6 {
			if addr, err := netip.ParseAddr(cand); err == nil && addr.Is6() {
				out = append(out, Span{a, a + len(cand), IPAddress, 0.95})
			}
		}
		i = b
	}
	return out
}

func isHexOrColon(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':'
}

// numRun is a run of digits with the separators phone numbers, cards and
// dates use.
type numRun struct {
	start, end int
	digits     string
	seps       string // the separator characters, in order
	plus       bool
}

// numberRuns finds the runs: digits, and single separators (space, '-',
// '.', '/', parentheses) between digits, starting at a digit, '+' or '('.
func numberRuns(s string) []numRun {
	var runs []numRun
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || (c == '+' || c == '(') && i+1 < len(s) && isDigit(s[i+1])) || (i > 0 && (wordChar(s[i-1]) || s[i-1] == '+')) {
			continue
		}
		r := numRun{start: i, plus: c == '+'}
		var d, seps strings.Builder
		j := i
		if c == '+' || c == '(' {
			seps.WriteByte(c)
			j++
		}
		lastDigit := j
		for j < len(s) {
			ch := s[j]
			if isDigit(ch) {
				d.WriteByte(ch)
				j++
				lastDigit = j
				continue
			}
			// Up to two separator bytes ("- ", ") ") between digit groups.
			k := j
			for k < len(s) && k-j < 2 && strings.IndexByte(" -./()", s[k]) >= 0 {
				k++
			}
			if k == j || k >= len(s) || !isDigit(s[k]) || strings.Contains(s[j:k], "  ") {
				break
			}
			seps.WriteString(s[j:k])
			j = k
		}
		r.end = lastDigit
		if r.end < len(s) && s[r.end] == ')' {
			r.end++
		}
		// A phone extension: "x769", "ext. 12".
		if r.end+1 < len(s) && s[r.end] == 'x' && isDigit(s[r.end+1]) {
			e := r.end + 1
			for e < len(s) && isDigit(s[e]) {
				e++
			}
			r.end, r.seps = e, r.seps+"x"
			d.WriteString("")
		}
		if r.end < len(s) && isAlpha(s[r.end]) {
			i = r.end
			continue // part of a code like "12ab"
		}
		r.digits, r.seps = d.String(), seps.String()
		runs = append(runs, r)
		i = r.end
	}
	return runs
}

// crisisLines are numbers that must stay readable: a conversation that
// points someone to a crisis line must keep it.
var crisisLines = map[string]bool{"988": true, "741741": true, "18002738255": true, "8002738255": true, "18007997233": true,
	"8007997233": true, "116123": true, "08457909090": true, "116111": true, "911": true, "112": true, "999": true}

func scanNumbers(d *doc, out []Span) []Span {
	s := d.s
	lower := d.lower
	for _, r := range d.runs {
		n := len(r.digits)
		text := s[r.start:r.end]
		before := lower[max(0, r.start-40):r.start]
		switch {
		case crisisLines[r.digits]:
			continue
		case strings.Contains(r.seps, "/") || isDottedDate(text) || len(text) >= 10 && isoDate(text[:10]):
			continue // dates are the date scanner's
		case n == 4 && ipv4(text):
			continue
		case strings.Count(text, ".") == 3 && ipv4(text):
			out = append(out, Span{r.start, r.end, IPAddress, 0.99})
		case n == 9 && ssnShape(text) && ssnValid(r.digits):
			typ := SSN
			if hasAny(before, "licen", "passport", "id number", "id no", "member", "policy") {
				typ = ID
			}
			out = append(out, Span{r.start, r.end, typ, 0.95})
		case n >= 12 && n <= 19 && luhn(r.digits) && !strings.ContainsAny(r.seps, "()+.") && cardPrefix(r.digits):
			out = append(out, Span{r.start, r.end, CreditCard, 0.95})
		case n >= 7 && n <= 15 && (r.plus || strings.ContainsAny(r.seps, " -().") || phoneCue(before)):
			// "Apt. 675 62314 Mellemvej": a unit number and a house
			// number side by side.
			if unitWords[strings.TrimSuffix(lastWords(before, 1), ".")] {
				continue
			}
			valid := validPhone(text)
			score := 0.6
			if valid {
				score = 0.9
			}
			// Digits split only by spaces are often house numbers and
			// postal codes side by side: a phone only if it validates or
			// something says phone.
			if !r.plus && !strings.ContainsAny(r.seps, "-().") && !valid && !phoneCue(before) {
				continue
			}
			if hasAny(before, "account", "acct", "card") && !hasAny(before, "phone", "call", "tel") {
				out = append(out, Span{r.start, r.end, Account, 0.7})
				continue
			}
			out = append(out, Span{r.start, r.end, Phone, score})
		case n >= 6 && hasAny(before, "account", "acct", "routing", "iban", "card number"):
			out = append(out, Span{r.start, r.end, Account, 0.8})
		case n >= 3 && n <= 9 && hasAny(lastWords(before, 3), "zip", "postal", "postcode", "post code"):
			out = append(out, Span{r.start, r.end, ZIP, 0.9})
		}
	}
	return out
}

func phoneCue(before string) bool {
	return hasAny(before, "phone", "call", "tel", "mobile", "cell", "fax", "number", "reach", "text me", "whatsapp", "contact")
}

func hasAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// lastWords is the tail of s holding its last n words.
func lastWords(s string, n int) string {
	// Without splitting (this runs for every candidate): walk back over n
	// words; when they are separated by single spaces, return a slice.
	end := len(s)
	for end > 0 && isSpace(s[end-1]) {
		end--
	}
	start, words, single := end, 0, true
	for start > 0 && words < n {
		for start > 0 && !isSpace(s[start-1]) {
			start--
		}
		words++
		if words == n || start == 0 {
			break
		}
		gap := start
		for start > 0 && isSpace(s[start-1]) {
			start--
		}
		if start == 0 {
			start = gap
			break
		}
		if gap-start != 1 || s[start] != ' ' {
			single = false
		}
	}
	if single {
		return s[start:end]
	}
	return strings.Join(strings.Fields(s[start:end]), " ")
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func ssnShape(t string) bool {
	if len(t) == 11 && (t[3] == '-' && t[6] == '-' || t[3] == ' ' && t[6] == ' ') {
		return true
	}
	return len(t) == 9
}

// ssnValid applies the SSA's rules: no area 000, 666 or 900-999, no group
// 00, no serial 0000.
func ssnValid(d string) bool {
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

func luhn(d string) bool {
	sum, alt := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if alt {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		alt = !alt
	}
	return sum%10 == 0
}

// cardPrefix: issuer prefixes of the major networks (Visa 4, Mastercard
// 2/5, Amex 34/37, Discover 6, JCB 35, Diners 30/36/38, UnionPay 62,
// Maestro 5/6, and the old 1800/2131 JCB ranges).
func cardPrefix(d string) bool {
	switch d[0] {
	case '1', '2', '3', '4', '5', '6':
		return true
	}
	return false
}

func ipv4(t string) bool {
	addr, err := netip.ParseAddr(t)
	return err == nil && addr.Is4()
}

func isDottedDate(t string) bool {
	p := strings.FieldsFunc(t, func(r rune) bool { return r == '.' || r == '-' })
	if len(p) != 3 {
		return false
	}
	a, b, c := len(p[0]), len(p[1]), len(p[2])
	return (a <= 2 && b <= 2 && (c == 2 || c == 4)) || (a == 4 && b <= 2 && c <= 2)
}

// validPhone checks a candidate against the numbering plans (libphonenumber's
// metadata). It is the expensive step, so the obvious shapes skip it: a
// North American number written 415-555-0132 or (415) 555-0132.
func validPhone(t string) bool {
	t = strings.TrimSpace(t)
	if nanpShape(t) {
		return true
	}
	if strings.HasPrefix(t, "+") {
		num, err := phonenumbers.Parse(t, "")
		return err == nil && (phonenumbers.IsValidNumber(num) || phonenumbers.IsPossibleNumber(num))
	}
	for _, region := range []string{"US", "GB", "DE"} {
		if num, err := phonenumbers.Parse(t, region); err == nil && phonenumbers.IsValidNumber(num) {
			return true
		}
	}
	return false
}

// nanpShape: ten digits (or 1 and ten) grouped 3-3-4 by '-', '.', ' ' or
// parentheses.
func nanpShape(t string) bool {
	var groups []int
	n := 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case isDigit(c):
			n++
		case strings.IndexByte("-. ()", c) >= 0:
			if n > 0 {
				groups = append(groups, n)
				n = 0
			}
		default:
			return false
		}
	}
	if n > 0 {
		groups = append(groups, n)
	}
	if len(groups) == 4 && groups[0] == 1 {
		groups = groups[1:]
	}
	return len(groups) == 3 && groups[0] == 3 && groups[1] == 3 && groups[2] == 4
}

// scanIBAN finds IBAN-shaped account numbers: two letters, two check
// digits, 10-30 letters and digits.
func scanIBAN(d *doc, out []Span) []Span {
	s := d.s
	for i := 0; i+14 <= len(s); i++ {
		if (i > 0 && wordChar(s[i-1])) || !(s[i] >= 'A' && s[i] <= 'Z' && s[i+1] >= 'A' && s[i+1] <= 'Z' && isDigit(s[i+2]) && isDigit(s[i+3])) {
			continue
		}
		j := i + 4
		digits := 0
		for j < len(s) && (isDigit(s[j]) || s[j] >= 'A' && s[j] <= 'Z' || s[j] == ' ' && j+1 < len(s) && (isDigit(s[j+1]) || s[j+1] >= 'A' && s[j+1] <= 'Z') && j-i < 34) {
			if isDigit(s[j]) {
				digits++
			}
			j++
		}
		if j-i >= 14 && j-i <= 34 && digits >= 8 && (j == len(s) || !wordChar(s[j])) {
			out = append(out, Span{i, j, Account, 0.9})
			i = j
		}
	}
	return out
}

// idContexts are words after which a code with digits is an identifier.
var idContexts = []struct{ word, typ string }{
	{"medical record", ID}, {"mrn", ID}, {"patient id", ID}, {"member id", ID}, {"policy", ID}, {"health plan", ID},
	{"licen", ID}, {"passport", ID}, {"vin", ID}, {"serial", ID}, {"device", ID}, {"plate", ID}, {"id number", ID},
	{"id:", ID}, {"id #", ID}, {"account", Account}, {"acct", Account}, {"iban", Account}, {"routing", Account},
}

// idContextsByByte indexes idContexts by their first byte.
var idContextsByByte = func() [256][]int {
	var t [256][]int
	for i, c := range idContexts {
		t[c.word[0]] = append(t[c.word[0]], i)
	}
	return t
}()

// scanContextIDs takes the next code with at least four digits after an
// identifier word ("licence number is D123-4567").
func scanContextIDs(d *doc, out []Span) []Span {
	s, lower := d.s, d.lower
	for _, w := range d.words {
		for _, ci := range idContextsByByte[lower[w.start]] {
			c := idContexts[ci]
			if !strings.HasPrefix(lower[w.start:], c.word) {
				continue
			}
			off := w.start + len(c.word)
			// The next few words.
			end := min(len(s), off+40)
			for j := off; j < end; j++ {
				if !isAlnum(s[j]) || (j > 0 && isAlnum(s[j-1])) {
					continue
				}
				e := j
				digits := 0
				for e < len(s) && (isAlnum(s[e]) || (s[e] == '-' || s[e] == '/') && e+1 < len(s) && isAlnum(s[e+1])) {
					if isDigit(s[e]) {
						digits++
					}
					e++
				}
				if digits >= 4 {
					out = append(out, Span{j, e, c.typ, 0.75})
					break
				}
				j = e
			}
		}
	}
	return out
}
