// Package eval scores the detectors' output against the labelled sets in
// ../shared/eval (read at run time, never copied into the repository).
package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// GoldSpan is a labelled span (byte offsets, end exclusive).
type GoldSpan struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Type  string `json:"type"`
}

// PIIRow is a gold row or a prediction row.
type PIIRow struct {
	ID    string     `json:"id"`
	Text  string     `json:"text,omitempty"`
	Spans []GoldSpan `json:"spans"`
}

// readJSONL reads JSON Lines of T.
func readJSONL[T any](r io.Reader) ([]T, error) {
	var rows []T
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var row T
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// readJSONLFile reads a JSON Lines file of T.
func readJSONLFile[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readJSONL[T](f)
}

// ReadPII reads JSON Lines of PIIRow.
func ReadPII(r io.Reader) ([]PIIRow, error) { return readJSONL[PIIRow](r) }

// ReadPIIFile reads a JSON Lines file of PIIRow.
func ReadPIIFile(path string) ([]PIIRow, error) { return readJSONLFile[PIIRow](path) }

// Counts are one type's figures under one matching rule.
type Counts struct {
	Gold, Pred         int
	GoldFound, PredHit int // gold spans matched by a prediction; predictions matching a gold span
}

func (c Counts) Recall() float64    { return ratio(c.GoldFound, c.Gold) }
func (c Counts) Precision() float64 { return ratio(c.PredHit, c.Pred) }
func (c Counts) F1() float64 {
	p, r := c.Precision(), c.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// PIIScore holds per-type counts for overlap and exact matching.
type PIIScore struct {
	Overlap, Exact map[string]*Counts
}

// ScorePII matches predictions to gold by row id. Under overlap matching a
// gold span is found when a prediction of the same type shares a byte with
// it, and a prediction hits when it shares a byte with a gold span of its
// type; under exact matching the offsets must be equal. The type "ANY"
// pools every type and ignores type.
func ScorePII(gold, pred []PIIRow) PIIScore {
	byID := map[string]PIIRow{}
	for _, p := range pred {
		byID[p.ID] = p
	}
	sc := PIIScore{Overlap: map[string]*Counts{}, Exact: map[string]*Counts{}}
	get := func(m map[string]*Counts, t string) *Counts {
		if m[t] == nil {
			m[t] = &Counts{}
		}
		return m[t]
	}
	for _, g := range gold {
		p := byID[g.ID]
		for _, gs := range g.Spans {
			for _, typ := range []string{gs.Type, "ANY"} {
				get(sc.Overlap, typ).Gold++
				get(sc.Exact, typ).Gold++
				if matches(gs, p.Spans, typ == "ANY", false) {
					get(sc.Overlap, typ).GoldFound++
				}
				if matches(gs, p.Spans, typ == "ANY", true) {
					get(sc.Exact, typ).GoldFound++
				}
			}
		}
		for _, ps := range p.Spans {
			for _, typ := range []string{ps.Type, "ANY"} {
				get(sc.Overlap, typ).Pred++
				get(sc.Exact, typ).Pred++
				if matches(ps, g.Spans, typ == "ANY", false) {
					get(sc.Overlap, typ).PredHit++
				}
				if matches(ps, g.Spans, typ == "ANY", true) {
					get(sc.Exact, typ).PredHit++
				}
			}
		}
	}
	return sc
}

func matches(s GoldSpan, others []GoldSpan, anyType, exact bool) bool {
	for _, o := range others {
		if !anyType && o.Type != s.Type {
			continue
		}
		if exact && o.Start == s.Start && o.End == s.End || !exact && o.Start < s.End && s.Start < o.End {
			return true
		}
	}
	return false
}

// Pool sums the counts of the given types.
func Pool(m map[string]*Counts, types []string) Counts {
	var c Counts
	for _, t := range types {
		if x := m[t]; x != nil {
			c.Gold += x.Gold
			c.Pred += x.Pred
			c.GoldFound += x.GoldFound
			c.PredHit += x.PredHit
		}
	}
	return c
}

// Types lists the types present, sorted.
func Types(m map[string]*Counts) []string {
	var ts []string
	for t := range m {
		if t != "ANY" {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	return ts
}

// ScoreRemoval scores de-identification rather than labelling: a gold span
// of one of types is found when any predicted span of one of types
// overlaps it, whatever the two types are, and such a prediction hits when
// it overlaps a gold span of one of types. Safe Harbor asks for the
// identifiers to be removed; an address whose city the gold calls LOCATION
// and we call ADDRESS is removed all the same. skip drops gold spans from
// the count (nil keeps all).
func ScoreRemoval(gold, pred []PIIRow, types []string, skip func(text string, s GoldSpan) bool) Counts {
	in := map[string]bool{}
	for _, t := range types {
		in[t] = true
	}
	keep := func(ss []GoldSpan, text string, gold bool) []GoldSpan {
		var out []GoldSpan
		for _, s := range ss {
			if in[s.Type] && !(gold && skip != nil && skip(text, s)) {
				out = append(out, s)
			}
		}
		return out
	}
	byID := map[string]PIIRow{}
	for _, p := range pred {
		byID[p.ID] = p
	}
	var c Counts
	for _, g := range gold {
		gs, ps := keep(g.Spans, g.Text, true), keep(byID[g.ID].Spans, g.Text, false)
		c.Gold += len(gs)
		c.Pred += len(ps)
		for _, s := range gs {
			if matches(s, ps, true, false) {
				c.GoldFound++
			}
		}
		for _, s := range ps {
			if matches(s, gs, true, false) {
				c.PredHit++
			}
		}
	}
	return c
}

// BareYear reports whether a gold span is a DATE that is only a year
// ("founded in 1977"): Safe Harbor lets the year stay.
func BareYear(text string, s GoldSpan) bool {
	if s.Type != "DATE" || s.End-s.Start != 4 || s.End > len(text) {
		return false
	}
	for _, c := range []byte(text[s.Start:s.End]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
