package pipeline

import (
	"bytes"
	"slices"
)

// Merged lists, for each kept record, the ids of the records merged into
// it, packed: one removed record takes its id's bytes and 8 more, where a
// map of string slices takes about 100, so the plan of ten million
// records with a million duplicates holds 40 MB, not 100.
type Merged struct {
	keeper []int32
	end    []uint32 // where each id ends in ids
	ids    []byte
	sorted bool
}

// Add records that the record with id was merged into keeper.
func (m *Merged) Add(keeper int32, id string) {
	m.keeper = append(m.keeper, keeper)
	m.ids = append(m.ids, id...)
	m.end = append(m.end, uint32(len(m.ids)))
	m.sorted = false
}

// Len is how many ids were merged.
func (m *Merged) Len() int { return len(m.keeper) }

func (m *Merged) id(k int) []byte {
	start := uint32(0)
	if k > 0 {
		start = m.end[k-1]
	}
	return m.ids[start:m.end[k]]
}

// sort orders the entries by keeper, then id.
func (m *Merged) sort() {
	if m.sorted {
		return
	}
	order := make([]int32, len(m.keeper))
	for k := range order {
		order[k] = int32(k)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if m.keeper[a] != m.keeper[b] {
			return int(m.keeper[a] - m.keeper[b])
		}
		return bytes.Compare(m.id(int(a)), m.id(int(b)))
	})
	s := Merged{keeper: make([]int32, 0, len(order)), end: make([]uint32, 0, len(order)), ids: make([]byte, 0, len(m.ids)), sorted: true}
	for _, k := range order {
		s.keeper = append(s.keeper, m.keeper[k])
		s.ids = append(s.ids, m.id(int(k))...)
		s.end = append(s.end, uint32(len(s.ids)))
	}
	*m = s
}

// Of is the ids merged into keeper, in order (nil when none).
func (m *Merged) Of(keeper int32) []string {
	m.sort()
	k, _ := slices.BinarySearch(m.keeper, keeper)
	var out []string
	for ; k < len(m.keeper) && m.keeper[k] == keeper; k++ {
		out = append(out, string(m.id(k)))
	}
	return out
}

// All is every keeper's merged ids (for tests and small plans).
func (m *Merged) All() map[int32][]string {
	out := map[int32][]string{}
	m.sort()
	for k, keeper := range m.keeper {
		out[keeper] = append(out[keeper], string(m.id(k)))
	}
	return out
}
