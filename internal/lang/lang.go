// Package lang identifies the language of conversation text among a small
// set of candidates, fast enough to run on every record.
//
// Why our own: the libraries measured here were too slow for the quality
// stage's budget of 20 MB/s per core with everything else included:
// whatlanggo v1.0.1 ran at 1.9 MB/s on counsel-chat answers (6 MB/s on a
// 300-byte prefix, restricted to seven languages), lingua-go v1.4.0 in
// low-accuracy mode with seven languages at 0.4 MB/s (docs/BENCHMARKS.md
// has the method). Conversations are long enough that their function words
// decide the language: each candidate has a list of its most frequent
// short words (articles, pronouns, prepositions, auxiliaries), written here
// from general knowledge of each language, and the language whose words
// make up the largest share of the first words of the text wins. Text in
// another script is reported by its script.
package lang

import (
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Codes of the candidate languages (ISO 639-1), and the labels for text
// we cannot place.
const (
	English    = "en"
	Spanish    = "es"
	French     = "fr"
	German     = "de"
	Portuguese = "pt"
	Italian    = "it"
	Dutch      = "nl"
	// Unknown: too few words, or no candidate's words among them.
	Unknown = "und"
	// Scripts other than Latin are reported as und-<Script>.
	Cyrillic = "und-Cyrl"
	Arabic   = "und-Arab"
	Han      = "und-Hani"
	Other    = "und-Zyyy"
)

// Candidates lists the languages told apart, in a fixed order.
var Candidates = []string{English, Spanish, French, German, Portuguese, Italian, Dutch}

var functionWords = map[string]string{
	English:    "the be to of and a in that have i it for not on with he as you do at this but his by from they we say her she or an will my one all would there their what so up out if about who get which go me when make can like no just him know take into your good some could them see other than then now look only come its over think also back after use two how our work first well way even new want because any these give day most us is was are were been has had did am i'm don't it's can't",
	Spanish:    "el la de que y a en un ser se no haber por con su para como estar tener le lo todo pero más hacer o poder decir este ir otro ese si me ya ver porque dar cuando muy sin vez mucho saber qué sobre mi alguno mismo yo también hasta año dos querer entre así primero desde grande eso ni nos llegar pasar tiempo ella sí día uno bien poco deber entonces las los del al es son está estoy tengo una",
	French:     "le la de un être et à il avoir ne je son que se qui ce dans en du elle au pour pas vous par sur faire plus dire me on mon lui nous comme mais pouvoir avec tout y aller voir en bien où sans tu ou leur homme si deux mari moi vouloir te femme venir quand grand celui notre devoir là jour prendre même votre rien petit encore aussi quelque dont tout mer trouver donner temps ça les des est une suis sont c'est j'ai",
	German:     "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei ich du wir ihr mich mir dich kann habe bin ja nein nicht",
	Portuguese: "o a de que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre era depois sem mesmo aos ter seus quem nas me esse eles estão você tinha foram essa num nem suas meu às minha têm numa pelos elas havia seja qual será nós tenho lhe deles essas esses pelas este fosse dele estou",
	Italian:    "il di che è e la per un in non una sono mi ho lo ha le si ma con cosa se io come da ti questo qui bene hai del sei tu al più mio lui della era anche perché lei quando fatto molto ci chi gli solo nel te dove voglio sto alla tutto suo ne cui essere stato sia poi niente così ancora dei nella sta",
	Dutch:      "de en van ik te dat die in een hij het niet zijn is was op aan met als voor had er maar om hem dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit der daar haar naar heb hoe heeft hebben deze u want nog zal me zij nu ge geen omdat iets worden toch al waren veel meer doen toen moet ben zonder kan hun dus alles onder ja eens hier wie werd altijd doch wordt wezen kunnen ons zelf tegen na reeds wil kon niets uw iemand geweest andere",
}

// index maps a word to a bit set of the candidates (bit i: Candidates[i])
// that use it.
var index = func() map[string]uint8 {
	m := map[string]uint8{}
	for i, l := range Candidates {
		for _, w := range strings.Fields(functionWords[l]) {
			m[w] |= 1 << i
		}
	}
	return m
}()

// short holds the function words of up to 8 bytes (all but a few), each
// packed into a uint64, in an open-addressing table: a lookup is a
// multiplication and a compare or two, where the map hashes the word and
// compares its bytes. Longer words go to index.
var short = func() *packedTable {
	t := &packedTable{}
	for w, set := range index {
		if len(w) <= 8 {
			t.put(pack([]byte(w)), set)
		}
	}
	return t
}()

const packedBits = 12 // 4096 slots for about 700 words

type packedTable struct {
	keys [1 << packedBits]uint64
	sets [1 << packedBits]uint8
}

// pack is w's bytes in a uint64, little-endian; len(w) is 1..8. No word
// holds a zero byte, so the packing is unique.
func pack(w []byte) uint64 {
	var k uint64
	for i, c := range w {
		k |= uint64(c) << (8 * i)
	}
	return k
}

func slot(k uint64) uint64 { return k * 0x9e3779b97f4a7c15 >> (64 - packedBits) }

func (t *packedTable) put(k uint64, set uint8) {
	i := slot(k)
	for t.keys[i] != 0 && t.keys[i] != k {
		i = (i + 1) & (1<<packedBits - 1)
	}
	t.keys[i], t.sets[i] = k, set
}

// lookup is the candidates that use word w (lower-cased), 0 for none.
func lookup(w []byte) uint8 {
	if len(w) == 0 {
		return 0
	}
	if len(w) > 8 {
		return index[string(w)]
	}
	return short.find(pack(w))
}

func (t *packedTable) find(k uint64) uint8 {
	for i := slot(k); t.keys[i] != 0; i = (i + 1) & (1<<packedBits - 1) {
		if t.keys[i] == k {
			return t.sets[i]
		}
	}
	return 0
}

// MaxWords is how many words of a text are looked at.
const MaxWords = 150

// Result is the language of a text with the evidence behind it.
type Result struct {
	Lang string `json:"lang"`
	// Confidence is the winner's share of the candidates' hits, 0..1.
	Confidence float64 `json:"confidence"`
	// FunctionShare is the share of the words read that are function
	// words of the winner: natural text in that language has about 0.3 to
	// 0.6; gibberish or lists of names have almost none.
	FunctionShare float64 `json:"function_share"`
	Words         int     `json:"words"`
}

// scripts counts letters per script.
type scripts struct{ latin, cyr, arab, han, other int }

// scan calls fn with each of the first MaxWords words of text, lower-cased
// (words longer than 32 bytes come as nil: no function word is that long),
// and counts the letters of each script into sc.
func scan(text string, sc *scripts, fn func(w []byte)) (words int) {
	var buf [32]byte
	for i := 0; i < len(text) && words < MaxWords; {
		c := text[i]
		if c < utf8.RuneSelf && !isLetter(c) && c != '\'' {
			i++
			continue
		}
		n, j := 0, i
	word:
		for j < len(text) {
			c := text[j]
			if c < utf8.RuneSelf {
				if !isLetter(c) && c != '\'' {
					break
				}
				if n < len(buf) {
					if c != '\'' {
						c |= 0x20
					}
					buf[n] = c
				}
				n++
				sc.latin++
				j++
				continue
			}
			r, size := utf8.DecodeRuneInString(text[j:])
			switch {
			case r == '’':
				if n < len(buf) {
					buf[n] = '\''
				}
				n++
			case unicode.IsLetter(r) || unicode.Is(unicode.Mn, r):
				switch {
				case unicode.Is(unicode.Latin, r):
					sc.latin++
				case unicode.Is(unicode.Cyrillic, r):
					sc.cyr++
				case unicode.Is(unicode.Arabic, r):
					sc.arab++
				case unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r):
					sc.han++
				default:
					sc.other++
				}
				lr := unicode.ToLower(r)
				if n+utf8.RuneLen(lr) <= len(buf) {
					utf8.EncodeRune(buf[n:], lr)
				}
				n += utf8.RuneLen(lr)
			default:
				break word
			}
			j += size
		}
		if j == i { // a lone apostrophe
			i++
			continue
		}
		words++
		if n <= len(buf) {
			fn(buf[:n])
		} else {
			fn(nil)
		}
		i = j
	}
	return words
}

// Detect identifies the language of text from its first MaxWords words.
func Detect(text string) Result {
	var hits [8]int
	var sc scripts
	count := func(set uint8) {
		for k := range Candidates {
			if set&(1<<k) != 0 {
				hits[k]++
			}
		}
	}
	var words int
	if isASCII(text) {
		// No script but Latin: the letters need no counting.
		words = scanASCII(text, func(set uint8) {
			if set != 0 {
				count(set)
			}
		})
	} else {
		words = scan(text, &sc, func(w []byte) {
			if set := lookup(w); set != 0 {
				count(set)
			}
		})
	}
	r := Result{Lang: Unknown, Words: words}
	if nonLatin := sc.cyr + sc.arab + sc.han + sc.other; nonLatin > sc.latin {
		switch max(sc.cyr, sc.arab, sc.han, sc.other) {
		case sc.cyr:
			r.Lang = Cyrillic
		case sc.arab:
			r.Lang = Arabic
		case sc.han:
			r.Lang = Han
		default:
			r.Lang = Other
		}
		return r
	}
	best, total := 0, 0
	for k := range Candidates {
		total += hits[k]
		if hits[k] > hits[best] {
			best = k
		}
	}
	if words == 0 || hits[best] < 2 && words >= 4 || hits[best] == 0 {
		return r
	}
	r.Lang = Candidates[best]
	r.Confidence = float64(hits[best]) / float64(total)
	r.FunctionShare = float64(hits[best]) / float64(words)
	return r
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// FunctionWords counts the first MaxWords words of text and, among them,
// the function words of language code (a candidate).
func FunctionWords(text, code string) (words, hits int) {
	bit := uint8(0)
	for i, l := range Candidates {
		if l == code {
			bit = 1 << i
		}
	}
	if isASCII(text) {
		words = scanASCII(text, func(set uint8) {
			if set&bit != 0 {
				hits++
			}
		})
		return words, hits
	}
	var sc scripts
	words = scan(text, &sc, func(w []byte) {
		if lookup(w)&bit != 0 {
			hits++
		}
	})
	return words, hits
}

// isASCII reports whether text is all ASCII, eight bytes at a time.
func isASCII(text string) bool {
	i := 0
	for ; i+8 <= len(text); i += 8 {
		if binary.LittleEndian.Uint64([]byte(text[i:i+8]))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// scanASCII is scan for ASCII text: the same words (runs of letters and
// apostrophes), each packed as it is read and passed as its set of
// candidates (lookup's answer), with no buffer and no script counts.
func scanASCII(text string, fn func(set uint8)) (words int) {
	for i := 0; i < len(text) && words < MaxWords; {
		if c := text[i]; !isLetter(c) && c != '\'' {
			i++
			continue
		}
		var k uint64
		n := 0
		for ; i < len(text); i++ {
			c := text[i]
			if !isLetter(c) && c != '\'' {
				break
			}
			if c != '\'' {
				c |= 0x20
			}
			if n < 8 {
				k |= uint64(c) << (8 * n)
			}
			n++
		}
		words++
		var set uint8
		if n <= 8 { // no function word is longer (TestLookupAgreesWithTheIndex)
			set = short.find(k)
		}
		fn(set)
	}
	return words
}
