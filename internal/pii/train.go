package pii

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Training of the name and place tagger (tagger.go). Everything here is
// deterministic: the corpora are read in a fixed order, sentences are
// shuffled with a seeded generator, the perceptron's weights and their
// running sums are integers, and the averaged weights are rounded to
// int16 in one step, so TrainTagger gives the same bytes on every run.

// TaggerBits is log2 of the number of hashed feature buckets.
const TaggerBits = 16

// taggerEpochs is the number of passes over the training sentences.
const taggerEpochs = 10

// TaggerCorpora are the training files under traindata/, in the order
// they are read (see traindata/NOTICE for each one's origin and licence).
var TaggerCorpora = []string{
	"wnut17/wnut17train.conll",
	"broad-twitter-corpus/a.conll",
	"broad-twitter-corpus/b.conll",
	"broad-twitter-corpus/e.conll",
	"broad-twitter-corpus/f.conll",
	"broad-twitter-corpus/g.conll",
	"broad-twitter-corpus/h.conll",
}

// TrainTagger trains the tagger from the corpora and gazetteers in dir
// (internal/pii/traindata) and returns the encoded model, the bytes
// `make train` writes to tagger.bin.gz.
func TrainTagger(dir string) ([]byte, error) {
	gaz, err := readGazetteers(dir)
	if err != nil {
		return nil, err
	}
	m := &tagger{bits: TaggerBits, gaz: gaz}
	m.index()
	lists, err := readNameLists(dir)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var sents []trainSent
	for _, name := range TaggerCorpora {
		ss, err := readCoNLL(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			sents = append(sents, m.augment(s, lists, rng)...)
		}
	}
	m.weights = m.train(sents)
	return m.encode()
}

// CrossValidate trains on every corpus but every fifth WNUT-17 training
// text (with the same augmentation as TrainTagger) and reports, on those
// held-out texts, person and place recall and precision for the rules
// alone, the tagger alone and the two together (what Detect does). A gold
// span is found when a predicted word of its type falls in it; a
// predicted run is correct when it touches a gold span of its type. It is
// how the combination was chosen without looking at evaluation data.
func CrossValidate(dir string, w io.Writer) error {
	gaz, err := readGazetteers(dir)
	if err != nil {
		return err
	}
	lists, err := readNameLists(dir)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	m := &tagger{bits: TaggerBits, gaz: gaz}
	m.index()
	var train, held []trainSent
	for _, name := range TaggerCorpora {
		ss, err := readCoNLL(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		for i, s := range ss {
			if strings.HasPrefix(name, "wnut17") && i%5 == 0 {
				held = append(held, m.prepareSent(s))
			} else {
				train = append(train, m.augment(s, lists, rng)...)
			}
		}
	}
	m.weights = m.train(train)
	for _, mode := range []string{"rules", "tagger", "rules+tagger"} {
		for _, typ := range []uint8{tagBPer, tagBLoc} {
			rule := uint8(rulePerson)
			if typ == tagBLoc {
				rule = ruleLocation
			}
			var gold, found, pred, correct int
			for _, s := range held {
				tags, _ := m.tagWords(s.tw, nil, nil) // as Detect tags
				isPred := func(i int) bool {
					byTagger := tags[i] == typ || tags[i] == typ+1
					byRule := s.tw[i].rule == rule
					return mode == "rules" && byRule || mode == "tagger" && byTagger || mode == "rules+tagger" && (byRule || byTagger)
				}
				isGold := func(i int) bool { return s.gold[i] == typ || s.gold[i] == typ+1 }
				g, fd := runs(len(s.tw), isGold, isPred, func(i int) bool { return s.gold[i] == typ })
				p, c := runs(len(s.tw), isPred, isGold, func(int) bool { return false })
				gold, found, pred, correct = gold+g, found+fd, pred+p, correct+c
			}
			name := map[uint8]string{tagBPer: "PERSON", tagBLoc: "LOCATION"}[typ]
			fmt.Fprintf(w, "%-13s %-8s recall %.3f (%d/%d)  precision %.3f (%d/%d)\n", mode, name,
				float64(found)/float64(max(gold, 1)), found, gold, float64(correct)/float64(max(pred, 1)), correct, pred)
		}
	}
	return nil
}

// runs counts the runs of words where in holds (a new run also starts
// where begins holds) and how many of them have a word where hit holds.
func runs(n int, in, hit, begins func(int) bool) (total, hits int) {
	for i := 0; i < n; {
		if !in(i) {
			i++
			continue
		}
		j, h := i, false
		for ; j < n && in(j) && (j == i || !begins(j)); j++ {
			h = h || hit(j)
		}
		total++
		if h {
			hits++
		}
		i = j
	}
	return total, hits
}

// augment returns the sentence prepared for training and, when it names
// someone or somewhere, two variants: the same text in lower case, and
// the text with each name and place replaced by one drawn from the
// Census and GeoNames lists (in the case the original was written in).
func (m *tagger) augment(s conllSent, lists nameLists, rng *rand.Rand) []trainSent {
	out := []trainSent{m.prepareSent(s)}
	if lc := lowered(s); lc != nil {
		out = append(out, m.prepareSent(*lc))
		out = append(out, m.prepareSent(substituted(s, lists, rng)))
	}
	return out
}

// nameLists are the gazetteers as lists, for substitution.
type nameLists struct {
	first, last, cities []string
}

func readNameLists(dir string) (nameLists, error) {
	var l nameLists
	for _, file := range []string{"dist.male.first", "dist.female.first", "dist.all.last"} {
		names, err := readCensus(dir, file)
		if err != nil {
			return l, err
		}
		for _, n := range names {
			if file == "dist.all.last" {
				if len(l.last) < 20000 {
					l.last = append(l.last, n.name)
				}
			} else {
				l.first = append(l.first, n.name)
			}
		}
	}
	var err error
	l.cities, err = readCities(dir)
	return l, err
}

// ranked is a Census name, lower-cased, and its frequency rank.
type ranked struct {
	name string
	rank int
}

// readCensus reads one of the Census name lists (name, frequency,
// cumulative share, rank per line).
func readCensus(dir, file string) ([]ranked, error) {
	f, err := os.Open(filepath.Join(dir, "census-names", file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ranked
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		rank, err := strconv.Atoi(fs[3])
		if err != nil {
			return nil, fmt.Errorf("%s: rank %q", file, fs[3])
		}
		out = append(out, ranked{strings.ToLower(fs[0]), rank})
	}
	return out, sc.Err()
}

// readCities reads the GeoNames city names, lower-cased, in file order.
func readCities(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "world-cities", "world-cities.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rec := range recs[1:] {
		out = append(out, strings.ToLower(rec[0]))
	}
	return out, nil
}

// substituted replaces each person and location of s by a drawn one.
func substituted(s conllSent, l nameLists, rng *rand.Rand) conllSent {
	var out conllSent
	for i := 0; i < len(s.toks); {
		b, _ := tagOf(s.tags[i])
		if b != tagBPer && b != tagBLoc {
			out.toks = append(out.toks, s.toks[i])
			out.tags = append(out.tags, s.tags[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s.toks) && strings.HasPrefix(s.tags[j], "I-") {
			j++
		}
		orig := s.toks[i]
		var repl []string
		if b == tagBPer {
			repl = append(repl, l.first[rng.IntN(len(l.first))])
			if j-i > 1 || rng.IntN(3) == 0 {
				repl = append(repl, l.last[rng.IntN(len(l.last))])
			}
		} else {
			repl = strings.Fields(l.cities[rng.IntN(len(l.cities))])
		}
		for k, w := range repl {
			if orig != strings.ToLower(orig) {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			tag := "I-" + s.tags[i][2:]
			if k == 0 {
				tag = "B-" + s.tags[i][2:]
			}
			out.toks = append(out.toks, w)
			out.tags = append(out.tags, tag)
		}
		i = j
	}
	return out
}

// lowered returns the sentence in lower case when it names someone or
// somewhere: social-media and chat text often drops capitals, and the
// tagger must learn the context of a name, not only its capital letter.
func lowered(s conllSent) *conllSent {
	named := false
	for _, t := range s.tags {
		if b, _ := tagOf(t); b == tagBPer || b == tagBLoc {
			named = true
		}
	}
	if !named {
		return nil
	}
	out := conllSent{toks: make([]string, len(s.toks)), tags: s.tags}
	for i, t := range s.toks {
		out.toks[i] = strings.ToLower(t)
	}
	return &out
}

// conllSent is one text of a CoNLL file: tokens and BIO tags.
type conllSent struct {
	toks, tags []string
}

func readCoNLL(path string) ([]conllSent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []conllSent
	var cur conllSent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			if len(cur.toks) > 0 {
				out = append(out, cur)
				cur = conllSent{}
			}
			continue
		}
		cur.toks = append(cur.toks, fields[0])
		cur.tags = append(cur.tags, fields[len(fields)-1])
	}
	if len(cur.toks) > 0 {
		out = append(out, cur)
	}
	return out, sc.Err()
}

// tagOf maps a corpus tag to ours: people, places, organisations (WNUT's
// group and corporation, BTC's ORG) and the rest (WNUT's creative works
// and products), which the tagger learns so as not to take them for
// people.
func tagOf(t string) (uint8, bool) {
	if t == "O" || len(t) < 3 {
		return tagO, false
	}
	begin := t[0] == 'B'
	var b uint8
	switch strings.ToLower(t[2:]) {
	case "person", "per":
		b = tagBPer
	case "location", "loc":
		b = tagBLoc
	case "group", "corporation", "org":
		b = tagBOrg
	default:
		b = tagBMisc
	}
	return b, begin
}

// trainSent is a sentence ready for training: per word, the gold tag,
// the candidate flag and the static feature buckets.
type trainSent struct {
	tw    []tword
	gold  []uint8
	feats [][]uint32
}

// prepareSent joins the tokens with spaces (the text the detector would
// see), splits it into words as Detect does, gives each word the tag of
// the token it starts in, and runs the scanners and rules for the rule
// features.
func (m *tagger) prepareSent(s conllSent) trainSent {
	var b strings.Builder
	starts := make([]int, len(s.toks))
	for i, t := range s.toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		starts[i] = b.Len()
		b.WriteString(t)
	}
	text := b.String()
	d := &doc{}
	d.load(text)
	spans := scanNames(d, scanStructured(d, nil))
	ts := trainSent{tw: m.prepare(nil, text, d.lower, d.words, spans)}
	k := 0
	lastTok := -1
	for i, w := range d.words {
		for k+1 < len(starts) && starts[k+1] <= w.start {
			k++
		}
		base, begin := tagOf(s.tags[k])
		g := uint8(tagO)
		if base != tagO {
			g = base + 1
			if begin && k != lastTok {
				g = base
			}
			if i > 0 && ts.gold[i-1] == tagO && g == base+1 {
				g = base // an I after O starts a span
			}
		}
		lastTok = k
		ts.gold = append(ts.gold, g)
		var f []uint32
		if ts.tw[i].cand {
			f = m.static(nil, ts.tw, i)
		}
		ts.feats = append(ts.feats, f)
	}
	return ts
}

// train runs the averaged perceptron and returns the averaged weights
// rounded to int16.
func (m *tagger) train(sents []trainSent) []int16 {
	size := (1 << m.bits) * nTags
	w := make([]int32, size)
	sum := make([]int64, size)
	stamp := make([]int64, size)
	var clock int64
	update := func(f []uint32, tag uint8, delta int32) {
		for _, b := range f {
			i := int(b)*nTags + int(tag)
			sum[i] += (clock - stamp[i]) * int64(w[i])
			stamp[i] = clock
			w[i] += delta
		}
	}
	order := make([]int, len(sents))
	for i := range order {
		order[i] = i
	}
	var f []uint32
	var tags []uint8
	for epoch := 0; epoch < taggerEpochs; epoch++ {
		rng := rand.New(rand.NewPCG(1, uint64(epoch)))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, si := range order {
			s := &sents[si]
			tags = tags[:0]
			for i := range s.tw {
				clock++
				if !s.tw[i].cand {
					tags = append(tags, tagO)
					continue
				}
				f = append(f[:0], s.feats[i]...)
				f = m.dynamic(f, s.tw, i, tags)
				prev := uint8(tagO)
				if i > 0 {
					prev = tags[i-1]
				}
				var scores [nTags]int32
				for _, b := range f {
					for k := 0; k < nTags; k++ {
						scores[k] += w[int(b)*nTags+k]
					}
				}
				pred := uint8(tagO)
				for k := uint8(1); k < nTags; k++ {
					if scores[k] > scores[pred] && allowed(prev, k) {
						pred = k
					}
				}
				if gold := s.gold[i]; pred != gold {
					update(f, gold, 1)
					update(f, pred, -1)
				}
				tags = append(tags, pred)
			}
		}
	}
	var maxAbs float64
	avg := make([]float64, size)
	for i := range w {
		sum[i] += (clock - stamp[i]) * int64(w[i])
		avg[i] = float64(sum[i]) / float64(clock)
		maxAbs = math.Max(maxAbs, math.Abs(avg[i]))
	}
	out := make([]int16, size)
	if maxAbs == 0 {
		return out
	}
	scale := 32767 / maxAbs
	for i, a := range avg {
		out[i] = int16(math.Round(a * scale))
	}
	return out
}

// readGazetteers builds the gazetteer bits from the Census name lists and
// the GeoNames cities in dir.
func readGazetteers(dir string) (map[string]uint8, error) {
	gaz := map[string]uint8{}
	rankClass := func(rank int, top, mid int) uint8 {
		switch {
		case rank <= top:
			return 3
		case rank <= mid:
			return 2
		}
		return 1
	}
	for _, l := range []struct {
		file     string
		off      uint8
		top, mid int
	}{{"dist.male.first", gzFirstOff, 100, 1000}, {"dist.female.first", gzFirstOff, 100, 1000}, {"dist.all.last", gzLastOff, 1000, 10000}} {
		names, err := readCensus(dir, l.file)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			c := rankClass(n.rank, l.top, l.mid) << l.off
			if cur := gaz[n.name] >> l.off & 3; cur < c>>l.off {
				gaz[n.name] = gaz[n.name]&^(3<<l.off) | c
			}
		}
	}
	cities, err := readCities(dir)
	if err != nil {
		return nil, err
	}
	for _, name := range cities {
		// A one-word city name; longer names are found word by word
		// through their capitals.
		if !strings.Contains(name, " ") {
			gaz[name] |= gzCity
		}
	}
	return gaz, nil
}
