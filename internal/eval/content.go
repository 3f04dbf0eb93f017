package eval

import (
	"io"
	"sort"
)

// ContentLabels maps the moderation set's label keys to our categories.
var ContentLabels = []struct{ Key, Category string }{
	{"S", "sexual"}, {"S3", "sexual_minors"}, {"H", "hate"}, {"HR", "harassment"},
	{"V", "violence"}, {"V2", "violence_graphic"}, {"SH", "self_harm"},
}

// ContentRow is a gold row (Labels: 1 yes, 0 no, missing unknown) or a
// prediction (Categories: scores).
type ContentRow struct {
	ID         string             `json:"id"`
	Labels     map[string]int     `json:"labels,omitempty"`
	Categories map[string]float64 `json:"categories,omitempty"`
}

// ReadContent reads JSON Lines of ContentRow.
func ReadContent(r io.Reader) ([]ContentRow, error) { return readJSONL[ContentRow](r) }

// ReadContentFile reads a JSON Lines file of ContentRow.
func ReadContentFile(path string) ([]ContentRow, error) { return readJSONLFile[ContentRow](path) }

// CategoryScore is one category's figures at a threshold.
type CategoryScore struct {
	Positives, Negatives int
	TP, FP, FN           int
	AUC                  float64
	AUPRC                float64 // average precision
}

func (c CategoryScore) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }
func (c CategoryScore) Recall() float64    { return ratio(c.TP, c.TP+c.FN) }

// ScoreContent scores each category over the rows where it is labelled.
func ScoreContent(gold, pred []ContentRow, threshold float64) map[string]CategoryScore {
	byID := map[string]ContentRow{}
	for _, p := range pred {
		byID[p.ID] = p
	}
	out := map[string]CategoryScore{}
	for _, l := range ContentLabels {
		var c CategoryScore
		var pos, neg []float64
		for _, g := range gold {
			y, ok := g.Labels[l.Key]
			if !ok {
				continue
			}
			s := byID[g.ID].Categories[l.Category]
			if y == 1 {
				pos = append(pos, s)
				if s >= threshold {
					c.TP++
				} else {
					c.FN++
				}
			} else {
				neg = append(neg, s)
				if s >= threshold {
					c.FP++
				}
			}
		}
		c.Positives, c.Negatives, c.AUC, c.AUPRC = len(pos), len(neg), auc(pos, neg), averagePrecision(pos, neg)
		out[l.Category] = c
	}
	out[AnyCategory] = scoreAny(gold, byID, threshold)
	return out
}

// AnyCategory is the key of ScoreContent's pooled figures: a text is
// positive when any of its labels is yes, negative when every label it
// has is no; its score is its highest category score.
const AnyCategory = "any"

func scoreAny(gold []ContentRow, byID map[string]ContentRow, threshold float64) CategoryScore {
	var c CategoryScore
	var pos, neg []float64
	for _, g := range gold {
		if len(g.Labels) == 0 {
			continue
		}
		y := 0
		for _, v := range g.Labels {
			y = max(y, v)
		}
		var s float64
		for _, l := range ContentLabels {
			s = max(s, byID[g.ID].Categories[l.Category])
		}
		switch {
		case y == 1 && s >= threshold:
			c.TP++
		case y == 1:
			c.FN++
		case s >= threshold:
			c.FP++
		}
		if y == 1 {
			pos = append(pos, s)
		} else {
			neg = append(neg, s)
		}
	}
	c.Positives, c.Negatives, c.AUC, c.AUPRC = len(pos), len(neg), auc(pos, neg), averagePrecision(pos, neg)
	return c
}

// averagePrecision is the area under the precision-recall curve as
// average precision: the mean, over positives, of the precision at the
// score of each positive (texts with equal scores are taken together,
// so ties do not depend on input order).
func averagePrecision(pos, neg []float64) float64 {
	if len(pos) == 0 {
		return 0
	}
	all := scored(pos, neg)
	sort.Slice(all, func(i, j int) bool { return all[i].s > all[j].s })
	var tp, seen int
	var sum float64
	for i := 0; i < len(all); {
		j, p := i, 0
		for j < len(all) && all[j].s == all[i].s {
			if all[j].pos {
				p++
			}
			j++
		}
		tp += p
		seen = j
		sum += float64(p) * float64(tp) / float64(seen)
		i = j
	}
	return sum / float64(len(pos))
}

// item is a score and whether its text is a positive.
type item struct {
	s   float64
	pos bool
}

// scored joins positives' and negatives' scores, unsorted.
func scored(pos, neg []float64) []item {
	all := make([]item, 0, len(pos)+len(neg))
	for _, s := range pos {
		all = append(all, item{s, true})
	}
	for _, s := range neg {
		all = append(all, item{s, false})
	}
	return all
}

// auc is the probability that a random positive scores above a random
// negative (ties count half), by sorting: O(n log n).
func auc(pos, neg []float64) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return 0
	}
	all := scored(pos, neg)
	sort.Slice(all, func(i, j int) bool { return all[i].s < all[j].s })
	// Sum of positive ranks with ties averaged (Mann-Whitney U).
	var rankSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].s == all[i].s {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks are 1-based: (i+1 + j) / 2
		for k := i; k < j; k++ {
			if all[k].pos {
				rankSum += avg
			}
		}
		i = j
	}
	np, nn := float64(len(pos)), float64(len(neg))
	return (rankSum - np*(np+1)/2) / (np * nn)
}
