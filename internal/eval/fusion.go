package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/gen"
)

// FusionScore is fusion measured on generated sources with planted exact
// and near duplicates.
type FusionScore struct {
	Records, PlantedExact, PlantedNear int
	ExactFound, NearFound              int
	Removed, RemovedJustified          int
	Clusters                           int
}

// ScoreFusion writes a generated dataset of n conversations over three
// sources (three formats) into dir, reads it back through standardization,
// runs fusion at threshold and scores it. A planted pair is found when both
// records end in one cluster; a removal is justified when the removed
// record's exact Jaccard similarity with the record kept for it reaches the
// threshold (a chance duplicate of the generator's small phrase pools is a
// duplicate too).
func ScoreFusion(dir string, n int, seed uint64, threshold float64) (FusionScore, error) {
	sum, err := gen.Write(gen.Options{Dir: dir, Records: n, Sources: 3, Format: "mixed", Seed: seed, DupRate: 0.05, NearDupRate: 0.05})
	if err != nil {
		return FusionScore{}, err
	}
	type key struct {
		src string
		pos int64
	}
	truth := map[key]gen.Truth{}
	f, err := os.Open(sum.Truth)
	if err != nil {
		return FusionScore{}, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tr gen.Truth
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			f.Close()
			return FusionScore{}, err
		}
		truth[key{tr.Source, tr.Position}] = tr
	}
	f.Close()
	var idx fusion.Index
	var lines []AnalyzeLine
	var ids []string
	for i, file := range sum.Files {
		convs, err := StandardizedFile(file)
		if err != nil {
			return FusionScore{}, err
		}
		src := fmt.Sprintf("source-%d", i+1)
		for _, c := range convs {
			var pos int64
			fmt.Sscan(c.ID, &pos)
			ft, _ := fusion.Compute(c.Messages, nil)
			idx.Add(&ft, fusion.Rank{Priority: i, Source: i, Position: pos})
			lines = append(lines, c)
			ids = append(ids, truth[key{src, pos}].ID)
		}
	}
	res, err := idx.Resolve(threshold)
	if err != nil {
		return FusionScore{}, err
	}
	s := FusionScore{Records: idx.Len(), Clusters: res.Clusters}
	where := map[string]int{}
	for i, id := range ids {
		where[id] = i
	}
	byID := map[string]gen.Truth{}
	for _, t := range truth {
		byID[t.ID] = t
	}
	for i, id := range ids {
		tr := byID[id]
		orig := tr.DuplicateOf
		if orig == "" {
			orig = tr.NearDupOf
		}
		if orig == "" {
			continue
		}
		j, ok := where[orig]
		same := ok && res.Keeper[i] == res.Keeper[j]
		if tr.DuplicateOf != "" {
			s.PlantedExact++
			if same {
				s.ExactFound++
			}
		} else {
			s.PlantedNear++
			if same {
				s.NearFound++
			}
		}
	}
	for i, k := range res.Keeper {
		if k == int32(i) {
			continue
		}
		s.Removed++
		if fusion.Jaccard(lines[i].Messages, lines[k].Messages) >= threshold {
			s.RemovedJustified++
		}
	}
	return s, nil
}
