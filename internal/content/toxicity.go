package content

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dspipe/dspipe/internal/modelfile"
)

// The toxicity model: two logistic regressions over hashed word
// unigrams, word bigrams and character 4-grams (which see through
// spelling games), one for hate (contempt for a group) and one for
// toxicity (insults, abuse, threats at someone). It is trained by `make
// train` (toxicity_train.go) from the openly licensed data in traindata/
// (see its NOTICE); the weights are embedded.
//
// Calibration: the classes are weighted to equal prior during training,
// and the scores are then moved to the prior of the text this service
// sees (toxPrior): 0.5 means even odds that annotators would call the
// sentence hateful (or toxic) when one sentence in fifty is hateful and
// one in twenty toxic. A text's score is that of its worst sentence.

//go:embed toxicity.bin.gz
var toxicityGz []byte

// toxBits is log2 of the number of hashed feature buckets.
const toxBits = 18

const toxMagic = "dspipe-tox/1\n"

// Model outputs.
const (
	outHate = iota
	outToxic
	nOut
)

// toxModel is a trained model: per bucket, one weight per output,
// quantised to int16 with one scale; and one bias per output.
type toxModel struct {
	weights []int16 // bucket*nOut + output
	scale   float64
	bias    [nOut]float64
}

// toxicity returns the embedded model, decoded once. A model that does
// not decode is a build defect (TestToxicityModelIsReproducible), so it
// panics.
var toxicity = sync.OnceValue(func() *toxModel {
	m, err := decodeTox(toxicityGz)
	if err != nil {
		panic(err)
	}
	return m
})

func (m *toxModel) encode() ([]byte, error) {
	var raw bytes.Buffer
	_ = binary.Write(&raw, binary.LittleEndian, math.Float64bits(m.scale))
	for _, b := range m.bias {
		_ = binary.Write(&raw, binary.LittleEndian, math.Float64bits(b))
	}
	_ = binary.Write(&raw, binary.LittleEndian, m.weights)
	return modelfile.Encode(toxMagic, raw.Bytes())
}

func decodeTox(gz []byte) (*toxModel, error) {
	raw, err := modelfile.Decode(toxMagic, gz)
	if err != nil {
		return nil, fmt.Errorf("content: toxicity model: %w", err)
	}
	size := (1 << toxBits) * nOut
	if len(raw) != 8*(1+nOut)+2*size {
		return nil, errors.New("content: toxicity model: wrong size")
	}
	m := &toxModel{scale: math.Float64frombits(binary.LittleEndian.Uint64(raw))}
	raw = raw[8:]
	for i := range m.bias {
		m.bias[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw))
		raw = raw[8:]
	}
	m.weights = make([]int16, size)
	for i := range m.weights {
		m.weights[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return m, nil
}

// toxPrior is the share of hateful and of toxic sentences the scores
// assume (see the calibration note above).
var toxPrior = [nOut]float64{0.02, 0.05}

// priorShift moves a balanced-prior logit to toxPrior.
var priorShift = func() (s [nOut]float64) {
	for k, p := range toxPrior {
		s[k] = math.Log(p / (1 - p))
	}
	return s
}()

// worst returns, per output, the highest score of any sentence of text
// (split at . ! ? and line breaks), at the prior of toxPrior.
func (m *toxModel) worst(text string, buf []uint32) ([nOut]float64, []uint32) {
	var best [nOut]float64
	buf = m.sentences(text, buf, func(_ int, p [nOut]float64) {
		for k := range p {
			best[k] = math.Max(best[k], p[k])
		}
	})
	return best, buf
}

// sentences calls fn with each non-empty sentence's index (sentence i
// lies between the i-th and the next . ! ? or line break, as hostility
// counts them) and its scores at the prior of toxPrior.
func (m *toxModel) sentences(text string, buf []uint32, fn func(i int, p [nOut]float64)) []uint32 {
	start, n := 0, 0
	for i := 0; i <= len(text); i++ {
		if i < len(text) && !isBoundary(text[i]) {
			continue
		}
		if i > start {
			var z [nOut]float64
			z, buf = m.logits(text[start:i], buf)
			var p [nOut]float64
			for k := range z {
				p[k] = 1 / (1 + math.Exp(-(z[k] + priorShift[k])))
			}
			fn(n, p)
		}
		start = i + 1
		n++
	}
	return buf
}

// score returns the probability of each output for the text, at the
// balanced prior the model was trained with.
func (m *toxModel) score(text string, buf []uint32) ([nOut]float64, []uint32) {
	z, buf := m.logits(text, buf)
	var p [nOut]float64
	for k := range p {
		p[k] = 1 / (1 + math.Exp(-z[k]))
	}
	return p, buf
}

// logits returns the model's logit of each output for the text.
func (m *toxModel) logits(text string, buf []uint32) ([nOut]float64, []uint32) {
	buf = toxFeatures(buf[:0], text)
	var sum [nOut]int64
	for _, b := range buf {
		w := (*[nOut]int16)(m.weights[int(b)*nOut:]) // one bounds check, the loop unrolled
		for k := range sum {
			sum[k] += int64(w[k])
		}
	}
	var z [nOut]float64
	norm := 1 / math.Sqrt(float64(max(len(buf), 1)))
	for k := range z {
		z[k] = float64(sum[k])/m.scale*norm + m.bias[k]
	}
	return z, buf
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// toxFeatures appends the feature buckets of text: each word, each pair
// of words, and each 4-gram of characters of "<word>" for words of five
// letters or more. Text is
// lower-cased (ASCII), a letter repeated more than twice counts twice,
// and handles, links and markup entities are skipped (the training
// tweets are full of them; they say nothing about toxicity).
func toxFeatures(f []uint32, text string) []uint32 {
	const mask = 1<<toxBits - 1
	var word [64]byte
	var prev uint64
	hasPrev := false
	i := 0
	for i < len(text) {
		c := lowerByte(text[i])
		if !toxWordByte(c) {
			i++
			continue
		}
		// Skip @handles, links and entities whole.
		if i > 0 && (text[i-1] == '@' || text[i-1] == '&' || text[i-1] == '#' && i > 1 && text[i-2] == '&') || hasPrefixFold(text[i:], "http") {
			for i < len(text) && text[i] != ' ' && text[i] != '\n' {
				i++
			}
			hasPrev = false
			continue
		}
		n := 0
		word[n] = '<'
		n++
		for i < len(text) {
			c := lowerByte(text[i])
			if !toxWordByte(c) {
				break
			}
			if n < len(word)-1 && !(n >= 3 && word[n-1] == c && word[n-2] == c) {
				word[n] = c
				n++
			}
			i++
		}
		word[n] = '>'
		n++
		w := word[1 : n-1]
		if string(w) == "rt" {
			continue
		}
		h := hashBytes(fnvOffset, w)
		f = append(f, uint32(h&mask))
		if hasPrev {
			f = append(f, uint32(mix(prev, h)&mask))
		}
		prev, hasPrev = h, true
		// Short words are features whole; only longer ones, where a
		// misspelling hides, are also taken apart.
		if n >= 7 {
			for k := 0; k+4 <= n; k++ {
				f = append(f, uint32(hashBytes(fnvOffset^0x9e3779b97f4a7c15, word[k:k+4])&mask))
			}
		}
	}
	return f
}

func toxWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '\'' || c >= 0x80
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if lowerByte(s[i]) != p[i] {
			return false
		}
	}
	return true
}

func hashBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func mix(a, b uint64) uint64 {
	h := a*fnvPrime ^ b
	h *= fnvPrime
	return h ^ h>>31
}
