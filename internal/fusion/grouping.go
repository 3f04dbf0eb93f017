package fusion

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// groupBudget is how many entries one grouping sorts in memory at a time:
// 16 MB.
var groupBudget = 700_000

// keyed is a record under a key, with its place in rank order and its
// sketch (the low bit of each packed signature value; see
// Index.Resolve).
type keyed struct {
	key    uint64
	at     int32
	i      int32
	sketch uint64
}

const keyedBytes = 24

// blockEntries is how many entries a bucket gathers before they are
// sealed and written as one block: 24 KB.
const blockEntries = 1024

// grouping collects (key, place, record) entries and hands them back
// grouped by key, each group in rank order. Up to groupBudget entries it
// sorts them in memory. Beyond, when it has a directory, it spreads them
// by key over buckets of about groupBudget entries, written as blocks to
// an encrypted temporary file (a sealedFile: the keys derive from
// conversation text), then sorts one bucket at a time: a group's entries
// share a bucket, so memory is one bucket and a block a bucket, however
// many records there are.
type grouping struct {
	parts   int
	mem     []keyed   // one part
	pending [][]keyed // a block per bucket, being filled
	blocks  [][]int   // each bucket's blocks, by number in file
	file    *sealedFile
	buf     []byte
	err     error
}

// A block is its entries' count, then blockEntries entries (the last of
// a bucket padded).
const blockBytes = 4 + blockEntries*keyedBytes

// newGrouping expects about entries entries; dir is where buckets go
// ("": everything stays in memory).
func newGrouping(dir string, entries int) *grouping {
	parts := 1
	if dir != "" && entries > groupBudget {
		parts = (entries + groupBudget - 1) / groupBudget
	}
	g := &grouping{parts: parts}
	if parts == 1 {
		g.mem = make([]keyed, 0, entries)
		return g
	}
	g.pending, g.blocks = make([][]keyed, parts), make([][]int, parts)
	g.file, g.err = newSealedFile(dir, blockBytes)
	g.buf = make([]byte, blockBytes)
	return g
}

// bucketOf spreads keys over buckets with a multiplicative hash: keys
// made with FNV share low bits too often to be taken as they are.
func (g *grouping) bucketOf(key uint64) int {
	return int(((key * 0x9e3779b97f4a7c15) >> 32) % uint64(g.parts))
}

func (g *grouping) add(k keyed) {
	if g.parts == 1 {
		g.mem = append(g.mem, k)
		return
	}
	b := g.bucketOf(k.key)
	if g.pending[b] == nil {
		g.pending[b] = make([]keyed, 0, blockEntries)
	}
	g.pending[b] = append(g.pending[b], k)
	if len(g.pending[b]) == blockEntries {
		g.flush(b)
	}
}

// flush seals bucket b's pending entries as the file's next block.
func (g *grouping) flush(b int) {
	es := g.pending[b]
	g.pending[b] = es[:0]
	if len(es) == 0 || g.err != nil {
		return
	}
	clear(g.buf)
	binary.LittleEndian.PutUint32(g.buf, uint32(len(es)))
	for k, e := range es {
		at := g.buf[4+k*keyedBytes:]
		binary.LittleEndian.PutUint64(at, e.key)
		binary.LittleEndian.PutUint32(at[8:], uint32(e.at))
		binary.LittleEndian.PutUint32(at[12:], uint32(e.i))
		binary.LittleEndian.PutUint64(at[16:], e.sketch)
	}
	g.blocks[b] = append(g.blocks[b], g.file.n)
	g.file.add(g.buf)
}

// each calls fn with the first entry of each group of equal keys, in
// rank order, and each other entry of the group, in rank order. It
// removes the file.
func (g *grouping) each(fn func(first, other *keyed)) error {
	defer g.close()
	if g.err != nil {
		return g.err
	}
	if g.parts == 1 {
		eachGroup(g.mem, fn)
		return nil
	}
	for b := range g.parts {
		g.flush(b)
		g.pending[b] = nil
	}
	if err := g.file.finish(); err != nil {
		return fmt.Errorf("fusion: spill the grouping: %w", err)
	}
	var es []keyed
	for b := range g.parts {
		es = es[:0]
		for _, n := range g.blocks[b] {
			plain, err := g.file.at(n)
			if err != nil {
				return err
			}
			count := int(binary.LittleEndian.Uint32(plain))
			for k := range count {
				at := plain[4+k*keyedBytes:]
				es = append(es, keyed{binary.LittleEndian.Uint64(at), int32(binary.LittleEndian.Uint32(at[8:])),
					int32(binary.LittleEndian.Uint32(at[12:])), binary.LittleEndian.Uint64(at[16:])})
			}
		}
		g.blocks[b] = nil
		eachGroup(es, fn)
	}
	return nil
}

// close removes the file, if any.
func (g *grouping) close() error {
	err := g.file.close()
	g.file = nil
	return err
}

// eachGroup sorts ks by key, then by place in rank order, and calls fn
// with the first entry of each group of equal keys and each other entry
// of the group, in rank order.
func eachGroup(ks []keyed, fn func(first, other *keyed)) {
	slices.SortFunc(ks, func(a, b keyed) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return int(a.at - b.at)
	})
	for g := 0; g < len(ks); {
		e := g + 1
		for e < len(ks) && ks[e].key == ks[g].key {
			fn(&ks[g], &ks[e])
			e++
		}
		g = e
	}
}
