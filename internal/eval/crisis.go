package eval

import (
	"io"
	"strings"
)

// CrisisLabels are the C-SSRS labels of the evaluation set, in order.
var CrisisLabels = []string{"Supportive", "Indicator", "Ideation", "Behavior", "Attempt"}

// CrisisRow is a gold row (Label) or a prediction (Level).
type CrisisRow struct {
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
	Level string `json:"level,omitempty"`
}

// ReadCrisis reads JSON Lines of CrisisRow.
func ReadCrisis(r io.Reader) ([]CrisisRow, error) { return readJSONL[CrisisRow](r) }

// ReadCrisisFile reads a JSON Lines file of CrisisRow.
func ReadCrisisFile(path string) ([]CrisisRow, error) { return readJSONLFile[CrisisRow](path) }

// CrisisScore is the confusion matrix gold label → predicted level → users.
type CrisisScore struct {
	Matrix map[string]map[string]int
}

var levelRank = map[string]int{"none": 0, "indicator": 1, "ideation": 2, "behavior": 3, "attempt": 4}

// ScoreCrisis matches predictions to gold by id.
func ScoreCrisis(gold, pred []CrisisRow) CrisisScore {
	byID := map[string]string{}
	for _, p := range pred {
		byID[p.ID] = strings.ToLower(p.Level)
	}
	c := CrisisScore{Matrix: map[string]map[string]int{}}
	for _, g := range gold {
		if c.Matrix[g.Label] == nil {
			c.Matrix[g.Label] = map[string]int{}
		}
		lv := byID[g.ID]
		if _, ok := levelRank[lv]; !ok {
			lv = "none"
		}
		c.Matrix[g.Label][lv]++
	}
	return c
}

// FlaggedAtLeast is the share of users with the gold label whose predicted
// level ranks at least rank (2 ideation, 3 behavior).
func (c CrisisScore) FlaggedAtLeast(label string, rank int) float64 {
	return c.Pooled([]string{label}, rank)
}

// Pooled is FlaggedAtLeast over several labels together.
func (c CrisisScore) Pooled(labels []string, rank int) float64 {
	n, hit := 0, 0
	for _, l := range labels {
		for lv, k := range c.Matrix[l] {
			n += k
			if levelRank[lv] >= rank {
				hit += k
			}
		}
	}
	return ratio(hit, n)
}

// MacroF1 is the mean over the five labels of F1, reading the label of
// rank r (Supportive 0 … Attempt 4) as the level of rank r (none 0 …
// attempt 4).
func (c CrisisScore) MacroF1() float64 {
	var sum float64
	for r, label := range CrisisLabels {
		tp, gold, pred := 0, 0, 0
		for _, l := range CrisisLabels {
			for lv, k := range c.Matrix[l] {
				if levelRank[lv] != r {
					continue
				}
				pred += k
				if l == label {
					tp += k
				}
			}
		}
		for _, k := range c.Matrix[label] {
			gold += k
		}
		p, rc := ratio(tp, pred), ratio(tp, gold)
		if p+rc > 0 {
			sum += 2 * p * rc / (p + rc)
		}
	}
	return sum / float64(len(CrisisLabels))
}
