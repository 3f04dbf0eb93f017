package fusion

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/dspipe/dspipe/internal/crypt"
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
// by key over buckets of about groupBudget entries in an encrypted
// temporary file (the keys derive from conversation text), then sorts one
// bucket at a time: a group's entries share a bucket, so memory is one
// bucket and a block a bucket, however many records there are.
type grouping struct {
	parts   int
	mem     []keyed   // one part
	pending [][]keyed // a block per bucket, being filled
	blocks  [][]block // where each bucket's blocks are
	file    *os.File
	aead    cipher.AEAD
	end     int64
	sealed  uint64 // blocks written (each one's nonce)
	buf     []byte
	out     []byte
	err     error
}

// block is one sealed block of a bucket.
type block struct {
	off   int64
	n     int32
	nonce uint64
}

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
	g.pending, g.blocks = make([][]keyed, parts), make([][]block, parts)
	a, err := crypt.NewAEAD(crypt.NewKey())
	if err != nil {
		g.err = err
		return g
	}
	f, err := os.CreateTemp(dir, ".fusion-*")
	if err != nil {
		g.err = fmt.Errorf("fusion: spill the grouping: %w", err)
		return g
	}
	g.file, g.aead = f, a
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

// flush seals bucket b's pending entries and appends them to the file.
func (g *grouping) flush(b int) {
	es := g.pending[b]
	if len(es) == 0 || g.err != nil {
		g.pending[b] = es[:0]
		return
	}
	g.buf = g.buf[:0]
	for _, e := range es {
		g.buf = binary.LittleEndian.AppendUint64(g.buf, e.key)
		g.buf = binary.LittleEndian.AppendUint32(g.buf, uint32(e.at))
		g.buf = binary.LittleEndian.AppendUint32(g.buf, uint32(e.i))
		g.buf = binary.LittleEndian.AppendUint64(g.buf, e.sketch)
	}
	g.out = g.aead.Seal(g.out[:0], nonce(int(g.sealed)), g.buf, nil)
	out := g.out
	if _, err := g.file.WriteAt(out, g.end); err != nil {
		g.err = fmt.Errorf("fusion: spill the grouping: %w", err)
		return
	}
	g.blocks[b] = append(g.blocks[b], block{off: g.end, n: int32(len(es)), nonce: g.sealed})
	g.end += int64(len(out))
	g.sealed++
	g.pending[b] = es[:0]
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
	var es []keyed
	var sealed []byte
	for b := range g.parts {
		es = es[:0]
		for _, bl := range g.blocks[b] {
			size := int(bl.n)*keyedBytes + g.aead.Overhead()
			sealed = slices.Grow(sealed[:0], size)[:size]
			if _, err := g.file.ReadAt(sealed, bl.off); err != nil {
				return fmt.Errorf("fusion: read the grouping back: %w", err)
			}
			plain, err := g.aead.Open(sealed[:0], nonce(int(bl.nonce)), sealed, nil)
			if err != nil {
				return fmt.Errorf("fusion: grouping block: %w", err)
			}
			for k := 0; k < len(plain); k += keyedBytes {
				es = append(es, keyed{binary.LittleEndian.Uint64(plain[k:]), int32(binary.LittleEndian.Uint32(plain[k+8:])),
					int32(binary.LittleEndian.Uint32(plain[k+12:])), binary.LittleEndian.Uint64(plain[k+16:])})
			}
		}
		g.blocks[b] = nil
		eachGroup(es, fn)
	}
	return g.err
}

// close removes the file, if any.
func (g *grouping) close() error {
	if g.file == nil {
		return nil
	}
	name := g.file.Name()
	err := errors.Join(g.file.Close(), os.Remove(name))
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
