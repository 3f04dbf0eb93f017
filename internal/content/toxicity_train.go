package content

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Training of the toxicity model (toxicity.go): stochastic gradient
// descent on the logistic loss, examples in a seeded order, every
// product rounded explicitly (no fused multiply-add), weights rounded to
// int16 at the end, so TrainToxicity gives the same bytes on every run.

const (
	toxEpochs = 8
	toxRate   = 0.5
)

// toxExample is one training text with a target per output (the share of
// annotators who said yes; -1 where the source does not say).
type toxExample struct {
	text   string
	target [nOut]float64
}

// TrainToxicity trains the model from the files in dir
// (internal/content/traindata) and returns the encoded model, the bytes
// `make train` writes to toxicity.bin.gz.
func TrainToxicity(dir string) ([]byte, error) {
	ex, err := readToxData(dir)
	if err != nil {
		return nil, err
	}
	return trainTox(ex).encode()
}

func readToxData(dir string) ([]toxExample, error) {
	var ex []toxExample
	// Davidson et al.: per tweet, how many annotators said hate speech,
	// offensive language, neither.
	rows, err := readCSV(filepath.Join(dir, "davidson-hate-offensive", "labeled_data.csv"))
	if err != nil {
		return nil, err
	}
	for i, r := range rows[1:] {
		if len(r) < 7 {
			return nil, fmt.Errorf("davidson: row %d: %d fields", i+2, len(r))
		}
		n, e1 := strconv.Atoi(r[1])
		hate, e2 := strconv.Atoi(r[2])
		off, e3 := strconv.Atoi(r[3])
		if e1 != nil || e2 != nil || e3 != nil || n == 0 {
			return nil, fmt.Errorf("davidson: row %d: bad counts", i+2)
		}
		ex = append(ex, toxExample{text: r[6], target: [nOut]float64{float64(hate) / float64(n), float64(hate+off) / float64(n)}})
	}
	// Surge AI: toxic or not; says nothing about hate.
	rows, err = readCSV(filepath.Join(dir, "surge-toxicity", "toxicity_en.csv"))
	if err != nil {
		return nil, err
	}
	for i, r := range rows[1:] {
		if len(r) < 2 {
			return nil, fmt.Errorf("surge: row %d: %d fields", i+2, len(r))
		}
		y := 0.0
		if r[1] == "Toxic" {
			y = 1
		}
		ex = append(ex, toxExample{text: r[0], target: [nOut]float64{-1, y}})
	}
	return ex, nil
}

func readCSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var rows [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rows = append(rows, rec)
	}
}

func trainTox(ex []toxExample) *toxModel {
	size := (1 << toxBits) * nOut
	w := make([]float64, size)
	var bias [nOut]float64
	// Class weights: positives and negatives weigh the same in total.
	var pos, cnt [nOut]float64
	for _, e := range ex {
		for k, y := range e.target {
			if y >= 0 {
				pos[k] += y
				cnt[k]++
			}
		}
	}
	var wPos, wNeg [nOut]float64
	for k := range pos {
		wPos[k] = cnt[k] / (2 * pos[k])
		wNeg[k] = cnt[k] / (2 * (cnt[k] - pos[k]))
	}
	feats := make([][]uint32, len(ex))
	for i, e := range ex {
		feats[i] = toxFeatures(nil, e.text)
	}
	order := make([]int, len(ex))
	for i := range order {
		order[i] = i
	}
	for epoch := 0; epoch < toxEpochs; epoch++ {
		rng := rand.New(rand.NewPCG(3, uint64(epoch)))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		rate := toxRate / float64(1+epoch)
		for _, i := range order {
			f := feats[i]
			if len(f) == 0 {
				continue
			}
			norm := 1 / math.Sqrt(float64(len(f)))
			for k, y := range ex[i].target {
				if y < 0 {
					continue
				}
				z := bias[k]
				for _, b := range f {
					z += float64(w[int(b)*nOut+k] * norm)
				}
				p := 1 / (1 + math.Exp(-z))
				g := float64((p-y)*(float64(y*wPos[k])+float64((1-y)*wNeg[k]))) * rate
				for _, b := range f {
					w[int(b)*nOut+k] -= float64(g * norm)
				}
				bias[k] -= g
			}
		}
	}
	m := &toxModel{weights: make([]int16, size), bias: bias}
	var maxAbs float64
	for _, x := range w {
		maxAbs = math.Max(maxAbs, math.Abs(x))
	}
	m.scale = 1
	if maxAbs > 0 {
		m.scale = 32767 / maxAbs
	}
	for i, x := range w {
		m.weights[i] = int16(math.Round(float64(x * m.scale)))
	}
	return m
}
