package pipeline

import (
	"bytes"
	"slices"
	"sort"
)

// Merged lists, for each kept record, the ids of the records merged into
// it, packed: one removed record takes its id's bytes and 12 more, where a
// map of string slices takes about 100, so the plan of ten million
// records with a million duplicates holds 44 MB, not 100.
type Merged struct {
	keeper []int32
	end    []uint32 // where each id ends in ids
	ids    []byte
	order  []int32 // the entries by keeper, then id (nil: not sorted yet)
}

// Add records that the record with id was merged into keeper.
func (m *Merged) Add(keeper int32, id string) {
	m.keeper = append(m.keeper, keeper)
	m.ids = append(m.ids, id...)
	m.end = append(m.end, uint32(len(m.ids)))
	m.order = nil
}

// Len is how many ids were merged.
func (m *Merged) Len() int { return len(m.keeper) }

func (m *Merged) id(k int32) []byte {
	start := uint32(0)
	if k > 0 {
		start = m.end[k-1]
	}
	return m.ids[start:m.end[k]]
}

// Sort orders the entries by keeper, then id, once every id is added, so
// that Of and All only read (Of sorts first otherwise).
func (m *Merged) Sort() { m.sort() }

// sort orders the entries by keeper, then id.
func (m *Merged) sort() {
	if m.order != nil || len(m.keeper) == 0 {
		return
	}
	m.order = make([]int32, len(m.keeper))
	for k := range m.order {
		m.order[k] = int32(k)
	}
	slices.SortFunc(m.order, func(a, b int32) int {
		if m.keeper[a] != m.keeper[b] {
			return int(m.keeper[a] - m.keeper[b])
		}
		return bytes.Compare(m.id(a), m.id(b))
	})
}

// Of is the ids merged into keeper, in order (nil when none).
func (m *Merged) Of(keeper int32) []string {
	m.sort()
	k := sort.Search(len(m.order), func(k int) bool { return m.keeper[m.order[k]] >= keeper })
	var out []string
	for ; k < len(m.order) && m.keeper[m.order[k]] == keeper; k++ {
		out = append(out, string(m.id(m.order[k])))
	}
	return out
}

// All is every keeper's merged ids (for tests and small plans).
func (m *Merged) All() map[int32][]string {
	out := map[int32][]string{}
	m.sort()
	for _, k := range m.order {
		out[m.keeper[k]] = append(out[m.keeper[k]], string(m.id(k)))
	}
	return out
}
