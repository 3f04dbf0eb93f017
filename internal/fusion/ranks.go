package fusion

import (
	"slices"
	"sort"
)

// rankRuns holds every record's rank as runs: records added one after the
// other from one source, at consecutive positions, share a run. Records
// arrive so in the pipeline (gathered by source, then position), so the
// ranks take a few bytes a source and a gap (a record validation
// rejected), not 16 bytes a record.
type rankRuns struct {
	runs []rankRun
	n    int32
	// After seal: where each record stands in rank order. When the runs
	// do not interleave (each run's ranks all come before or all after
	// another's), a run's first place is enough; otherwise every record's
	// place is kept.
	first []int32 // per run
	at    []int32 // per record, when runs interleave
}

// rankRun is a run's first record: its rank and index.
type rankRun struct {
	rank
	start int32
}

func (r *rankRuns) add(k rank) {
	if m := len(r.runs); m > 0 {
		last := &r.runs[m-1]
		if last.priority == k.priority && last.source == k.source && last.position+int64(r.n-last.start) == k.position {
			r.n++
			return
		}
	}
	r.runs = append(r.runs, rankRun{k, r.n})
	r.n++
}

// runOf is the run holding record i.
func (r *rankRuns) runOf(i int32) int {
	return sort.Search(len(r.runs), func(j int) bool { return r.runs[j].start > i }) - 1
}

// rankOf is record i's rank.
func (r *rankRuns) rankOf(i int32) rank {
	run := r.runs[r.runOf(i)]
	run.position += int64(i - run.start)
	return run.rank
}

// last is run j's last rank.
func (r *rankRuns) last(j int) rank {
	end := r.n
	if j+1 < len(r.runs) {
		end = r.runs[j+1].start
	}
	k := r.runs[j].rank
	k.position += int64(end - 1 - r.runs[j].start)
	return k
}

// seal works out every record's place in rank order (ties: the earlier
// added first); place answers from then on.
func (r *rankRuns) seal() {
	if r.first != nil || r.at != nil {
		return
	}
	order := make([]int, len(r.runs))
	for j := range order {
		order[j] = j
	}
	slices.SortFunc(order, func(a, b int) int {
		return compareRank(r.runs[a].rank, r.runs[b].rank, r.runs[a].start, r.runs[b].start)
	})
	apart := true
	for k := 1; k < len(order) && apart; k++ {
		apart = r.last(order[k-1]).less(r.runs[order[k]].rank)
	}
	if apart {
		r.first = make([]int32, len(r.runs))
		next := int32(0)
		for _, j := range order {
			r.first[j] = next
			next += int32(r.last(j).position-r.runs[j].position) + 1
		}
		return
	}
	byRank := make([]int32, r.n)
	for i := range byRank {
		byRank[i] = int32(i)
	}
	slices.SortFunc(byRank, func(a, b int32) int { return compareRank(r.rankOf(a), r.rankOf(b), a, b) })
	places := make([]int32, r.n)
	for k, i := range byRank {
		places[i] = int32(k)
	}
	r.at = places
}

// place is record i's place in rank order (after seal).
func (r *rankRuns) place(i int32) int32 {
	if r.at != nil {
		return r.at[i]
	}
	j := r.runOf(i)
	return r.first[j] + i - r.runs[j].start
}

func compareRank(a, b rank, ia, ib int32) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return int(ia - ib)
}
