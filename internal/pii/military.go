package pii

import "strings"

// scanMilitaryAndCorners finds two address forms that have no street
// line: US military mail ("Unit 2050 Box 4190, APO AP 96278", "PSC 3,
// Box 5512, DPO AE 09498", "USS Nimitz, FPO AP 96620-2820") and street
// corners ("the corner of Maple Avenue and 5th Street").
func scanMilitaryAndCorners(d *doc, out []Span) []Span {
	s := d.s
	for _, key := range []string{"APO ", "FPO ", "DPO "} {
		for from := 0; ; {
			k := strings.Index(s[from:], key)
			if k < 0 {
				break
			}
			k += from
			from = k + len(key)
			if k > 0 && wordChar(s[k-1]) {
				continue
			}
			rest := s[k+len(key):]
			if len(rest) < 8 || rest[0] != 'A' || strings.IndexByte("AEP", rest[1]) < 0 || rest[2] != ' ' || !digits(rest[3:8]) {
				continue
			}
			end := k + len(key) + 8
			if len(rest) >= 13 && rest[8] == '-' && digits(rest[9:13]) {
				end += 5
			}
			if end < len(s) && wordChar(s[end]) {
				continue
			}
			// Back over "Unit 2050 Box 4190, " or "USS Nimitz, " on the line.
			start := k
			line := s[max(0, strings.LastIndexAny(s[:k], "\n.;:!?")+1):k]
			for _, lead := range []string{"Unit ", "PSC ", "CMR ", "USS ", "USNS "} {
				if i := strings.LastIndex(line, lead); i >= 0 && len(line)-i < 60 {
					start = k - (len(line) - i)
					break
				}
			}
			out = append(out, Span{start, end, Address, 0.9})
		}
	}
	for from := 0; ; {
		k := strings.Index(d.lower[from:], "corner of ")
		if k < 0 {
			break
		}
		k += from
		from = k + len("corner of ")
		a := from
		e1 := capitalRun(s, a)
		if e1 == a {
			continue
		}
		var sep string
		switch {
		case strings.HasPrefix(s[e1:], " and "):
			sep = " and "
		case strings.HasPrefix(s[e1:], " & "):
			sep = " & "
		default:
			continue
		}
		b := e1 + len(sep)
		if e2 := capitalRun(s, b); e2 > b {
			out = append(out, Span{a, e2, Address, 0.8})
		}
	}
	return out
}

// capitalRun returns the end of the run of up to four capitalised words
// or numbered street words ("5th", "St.") that starts at i.
func capitalRun(s string, i int) int {
	end := i
	for n := 0; n < 4 && i < len(s); n++ {
		j := i
		for j < len(s) && (wordChar(s[j]) || s[j] == '\'' || s[j] == '-') {
			j++
		}
		w := s[i:j]
		ordinal := w != "" && isDigit(w[0]) && hasSuffixAny(w, "th", "st", "nd", "rd")
		if w == "" || !startsUpper(w) && !ordinal {
			break
		}
		if j < len(s) && s[j] == '.' {
			j++
		}
		end = j
		if j >= len(s) || s[j] != ' ' {
			break
		}
		i = j + 1
	}
	return end
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// zipAfterPlace marks a postal code written right after a place with no
// street line ("in Arendal 4844", "Montevideo 11300"): four to six
// digits after a LOCATION span on the same line. A four-digit number
// that reads as a year (19xx, 20xx) is left alone.
func zipAfterPlace(s string, spans []Span) []Span {
	n := len(spans)
	for _, sp := range spans[:n] {
		if sp.Type != Location || sp.End+2 > len(s) || s[sp.End] != ' ' && s[sp.End] != ',' {
			continue
		}
		i := sp.End + 1
		if s[sp.End] == ',' && i < len(s) && s[i] == ' ' {
			i++
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if l := j - i; l < 4 || l > 6 || j < len(s) && wordChar(s[j]) {
			continue
		}
		if j-i == 4 && (s[i:i+2] == "19" || s[i:i+2] == "20") {
			continue
		}
		spans = append(spans, Span{i, j, ZIP, 0.6})
	}
	return spans
}
