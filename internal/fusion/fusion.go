// Package fusion finds exact and near-duplicate conversations across the
// sources of an execution (stage 7) and picks which record of each
// duplicate cluster to keep.
//
// Exact duplicates share a hash of their normalised text (roles and
// contents, lower-cased, punctuation and spacing ignored). Near duplicates
// are found with MinHash and LSH banding, written here:
//
//   - shingles: word 3-grams of the normalised text (a conversation shorter
//     than three words is one shingle);
//   - a stable 64-bit hash (FNV-1a) per shingle, then NumPerm = 64
//     permutations h_i(x) = (a_i·x + b_i) mod 2^64 (odd a_i, fixed seeds),
//     each keeping its minimum's high 32 bits: the signature;
//   - Bands = 16 bands of Rows = 4 rows: two conversations become
//     candidates when all four values of some band agree. At Jaccard
//     similarity s that happens with probability 1-(1-s^4)^16: 0.9998 at
//     0.8, 0.64 at 0.5;
//   - a candidate pair is a near duplicate when the share of equal
//     signature values (an unbiased estimate of their Jaccard similarity)
//     reaches the threshold (0.8 by default, fusion.near_threshold) plus a
//     margin of 0.05, one standard deviation of the estimate there;
//   - clusters are joined through such pairs, and a record then stays in
//     its cluster only if it is a near duplicate of the record kept (or an
//     exact copy of one), so a chain a~b~c does not remove c for a.
//
// Memory: in memory, 136 bytes a record (exact hash, signature at 16 bits
// a value); beyond SpillBeyond records (100,000 in the pipeline's fusion
// stage) the features and record ids go to encrypted temporary files and
// the index holds only its ranks, as runs (a few bytes a source). Deciding
// then holds 4 bytes a record (the keepers, reusing the union-find's
// parents), two bits a record, and a fixed grouping budget: the keys
// grouped beyond it are spread by bucket over an encrypted temporary
// file and sorted one bucket at a time.
package fusion

import (
	"errors"
	mathbits "math/bits"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/dspipe/dspipe/internal/settings"
	"github.com/dspipe/dspipe/internal/stage"
)

// Version of the fusion logic, in lineage and the manifest.
const Version = "1"

// MinHash parameters (see the package comment).
const (
	NumPerm = 64
	Bands   = 16
	Rows    = NumPerm / Bands
	// DefaultThreshold is the Jaccard similarity at which a candidate pair
	// is a near duplicate.
	DefaultThreshold = 0.8
	// Margin is added to the threshold before the estimate is compared
	// with it: with 64 permutations the estimate's standard deviation near
	// 0.8 is about 0.05, and without the margin half the pairs just below
	// the threshold would pass.
	Margin = 0.05
)

// Signature is a conversation's MinHash signature.
type Signature [NumPerm]uint32

var permA, permB = func() ([NumPerm]uint64, [NumPerm]uint64) {
	var a, b [NumPerm]uint64
	// splitmix64 from a fixed seed: the same permutations in every build.
	x := uint64(0x5eed_f00d_dead_beef)
	next := func() uint64 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	for i := range a {
		a[i] = next() | 1
		b[i] = next()
	}
	return a, b
}()

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// words appends the FNV-1a hashes of the normalised words of s: letters
// and digits, lower-cased; everything else separates words.
func words(s string, out []uint64) []uint64 {
	h, in := uint64(fnvOffset), false
	for i := 0; i < len(s); {
		c := s[i]
		var r rune
		size := 1
		if c < utf8.RuneSelf {
			r = rune(c)
		} else {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		if c < utf8.RuneSelf {
			if c >= 'A' && c <= 'Z' {
				c += 32
			}
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
				h, in = (h^uint64(c))*fnvPrime, true
				continue
			}
		} else if unicode.IsLetter(r) || unicode.IsDigit(r) {
			r = unicode.ToLower(r)
			h, in = (h^uint64(r))*fnvPrime, true
			continue
		}
		if in {
			out = append(out, h)
			h, in = fnvOffset, false
		}
	}
	if in {
		out = append(out, h)
	}
	return out
}

// Features are what fusion needs of one conversation.
type Features struct {
	Exact uint64
	Sig   Signature
}

// Compute returns a conversation's exact hash and signature. buf is
// scratch space, returned for reuse.
func Compute(msgs []stage.Message, buf []uint64) (Features, []uint64) {
	ws := conversationWords(msgs, buf[:0])
	exact := uint64(fnvOffset)
	for _, w := range ws {
		exact = (exact ^ w) * fnvPrime
		exact ^= exact >> 29
	}
	f := Features{Exact: exact}
	for i := range f.Sig {
		f.Sig[i] = ^uint32(0)
	}
	sig := &f.Sig
	for i := 0; i < max(len(ws)-2, 1); i++ {
		sh := shingle(ws, i)
		// Eight permutations at a time, with min rather than a branch:
		// the multiplications are independent, and which values change
		// is not predictable.
		for p := 0; p < NumPerm; p += 8 {
			a, b := (*[8]uint64)(permA[p:p+8]), (*[8]uint64)(permB[p:p+8])
			s := (*[8]uint32)(sig[p : p+8])
			s[0] = min(s[0], uint32((a[0]*sh+b[0])>>32))
			s[1] = min(s[1], uint32((a[1]*sh+b[1])>>32))
			s[2] = min(s[2], uint32((a[2]*sh+b[2])>>32))
			s[3] = min(s[3], uint32((a[3]*sh+b[3])>>32))
			s[4] = min(s[4], uint32((a[4]*sh+b[4])>>32))
			s[5] = min(s[5], uint32((a[5]*sh+b[5])>>32))
			s[6] = min(s[6], uint32((a[6]*sh+b[6])>>32))
			s[7] = min(s[7], uint32((a[7]*sh+b[7])>>32))
		}
	}
	return f, ws
}

// conversationWords appends the word hashes of a conversation to ws, each
// turn's role first: the role is part of the text (a user turn is not an
// answer).
func conversationWords(msgs []stage.Message, ws []uint64) []uint64 {
	for _, m := range msgs {
		roleHash := uint64(fnvOffset)
		for i := 0; i < len(m.Role); i++ {
			roleHash = (roleHash ^ uint64(m.Role[i])) * fnvPrime
		}
		ws = append(ws, roleHash)
		ws = words(m.Content, ws)
	}
	return ws
}

// eachShingle calls fn with the hash of every word 3-gram (one shingle
// for fewer than three words).
func eachShingle(ws []uint64, fn func(uint64)) {
	for i := 0; i < max(len(ws)-2, 1); i++ {
		fn(shingle(ws, i))
	}
}

// shingle is the hash of the word 3-gram at i (of fewer words at the end).
func shingle(ws []uint64, i int) uint64 {
	sh := uint64(fnvOffset)
	for k := i; k < i+3 && k < len(ws); k++ {
		sh = (sh ^ ws[k]) * fnvPrime
		sh ^= sh >> 31
	}
	return sh
}

// Similarity is the share of equal signature values: an estimate of the
// Jaccard similarity of the two shingle sets.
func Similarity(a, b *Signature) float64 { return similarity(a[:], b[:]) }

func similarity[T uint16 | uint32](a, b []T) float64 {
	eq := 0
	for i := range a {
		if a[i] == b[i] {
			eq++
		}
	}
	return float64(eq) / NumPerm
}

// Rank orders the records of a cluster: the lowest rank is kept. By
// default the source's priority (lower first), then the source's order in
// the request, then the position in the source.
type Rank struct {
	Priority int
	Source   int
	Position int64
}

func (r Rank) less(o Rank) bool {
	if r.Priority != o.Priority {
		return r.Priority < o.Priority
	}
	if r.Source != o.Source {
		return r.Source < o.Source
	}
	return r.Position < o.Position
}

// packed is a signature as the index keeps it: the high 16 bits of each
// value (b-bit MinHash). Two different minima agree on them with
// probability 2^-16, which moves a similarity estimate by less than 0.0001,
// and the index holds half the bytes.
type packed [NumPerm]uint16

func similarity16(a, b *packed) float64 { return similarity(a[:], b[:]) }

// rank is Rank in 16 bytes.
type rank struct {
	priority, source int32
	position         int64
}

func (r rank) less(o rank) bool {
	return Rank{int(r.priority), int(r.source), r.position}.less(Rank{int(o.priority), int(o.source), o.position})
}

// Index collects the features of every record of an execution. In memory
// it holds 136 bytes a record (exact hash and packed signature) and the
// ranks as runs (rankRuns); beyond SpillBeyond records the features go to
// an encrypted file, and the index holds only the ranks' runs.
type Index struct {
	n     int
	exact []uint64 // while in memory
	sigs  []uint16 // NumPerm per record, while in memory
	ranks rankRuns
	// Spilling: beyond spillAfter records (when spillDir is set), the
	// features live in spill.
	spillDir   string
	spillAfter int
	spill      *featFile
	err        error
	a, b       packed // scratch for comparing two signatures read from disk
	// aOf is one more than the record whose features a holds (0: none):
	// a group's first record, or a cluster's keeper, is compared with
	// each other in turn, and is read from disk once.
	aOf    int
	aExact uint64
}

// SpillBeyond keeps at most n records' features in memory; from then on
// they go to an encrypted file in dir (removed by Close), and clustering
// groups through encrypted files in dir too, so the index's memory is its
// ranks' runs and clustering's is about 4 bytes a record.
func (x *Index) SpillBeyond(dir string, n int) {
	x.spillDir, x.spillAfter = dir, max(n, 1)
}

// Close removes the spill file, if any.
func (x *Index) Close() error {
	err := x.spill.close()
	x.spill = nil
	return err
}

// Add appends record i (the next index) and returns its index.
func (x *Index) Add(f *Features, r Rank) int {
	if x.spill == nil && x.spillDir != "" && x.n >= x.spillAfter && x.err == nil {
		x.startSpill()
	}
	var p packed
	for k, v := range f.Sig {
		p[k] = uint16(v >> 16)
	}
	if x.spill != nil {
		x.spill.add(f.Exact, &p)
	} else {
		x.exact = append(x.exact, f.Exact)
		x.sigs = append(x.sigs, p[:]...)
	}
	x.ranks.add(rank{int32(r.Priority), int32(r.Source), r.Position})
	x.n++
	return x.n - 1
}

// startSpill moves the features held so far to the spill file.
func (x *Index) startSpill() {
	s, err := newFeatFile(x.spillDir)
	if err != nil {
		x.err = err
		return
	}
	for i := range x.exact {
		s.add(x.exact[i], (*packed)(x.sigs[i*NumPerm:(i+1)*NumPerm]))
	}
	x.spill, x.exact, x.sigs = s, nil, nil
}

// Len is the number of records.
func (x *Index) Len() int { return x.n }

// Source is the source of record i.
func (x *Index) Source(i int) int { return int(x.ranks.rankOf(int32(i)).source) }

// featuresAt is record i's exact hash and signature, in p when read from
// disk.
func (x *Index) featuresAt(i int, p *packed) (uint64, *packed) {
	if x.spill == nil {
		return x.exact[i], (*packed)(x.sigs[i*NumPerm : (i+1)*NumPerm])
	}
	e, err := x.spill.at(i, p)
	if err != nil && x.err == nil {
		x.err = err
	}
	return e, p
}

// held is record i's features, read once for as long as i is asked for
// in turn (a group's first record, a cluster's keeper).
func (x *Index) held(i int) (uint64, *packed) {
	if x.spill == nil {
		return x.featuresAt(i, nil)
	}
	if x.aOf != i+1 {
		x.aExact, _ = x.featuresAt(i, &x.a)
		x.aOf = i + 1
	}
	return x.aExact, &x.a
}

// similar is the estimated similarity of records i and j.
func (x *Index) similar(i, j int) float64 {
	_, a := x.held(i)
	_, b := x.featuresAt(j, &x.b)
	return similarity16(a, b)
}

// each calls fn with every record's features, in index order.
func (x *Index) each(fn func(i int32, exact uint64, p *packed)) error {
	if x.spill == nil {
		for i := range x.exact {
			fn(int32(i), x.exact[i], (*packed)(x.sigs[i*NumPerm:(i+1)*NumPerm]))
		}
		return nil
	}
	return x.spill.each(func(i int, exact uint64, p *packed) { fn(int32(i), exact, p) })
}

// Result says, for every record, which record it duplicates.
type Result struct {
	// Keeper[i] is the index of the record kept for i's cluster (i itself
	// when i is kept).
	Keeper []int32
	// Clusters is the number of clusters of two or more records;
	// RemovedExact and RemovedNear count the records removed: in each
	// cluster, every record with the text of one kept or seen before is an
	// exact duplicate, the best ranked record of each other text a near
	// duplicate.
	Clusters, RemovedExact, RemovedNear int
}

// Resolve clusters the records: exact duplicates, then near duplicates at
// or above threshold (0: DefaultThreshold; 1 or more: exact only). An
// error is a spilled index that could not be written or read back.
//
// Memory: the keepers (4 bytes a record, the result), two bits a record,
// and the grouping's budget; the features are read from disk in order
// (and for the candidate pairs) when spilled.
func (x *Index) Resolve(threshold float64) (Result, error) {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	if x.spill != nil {
		if err := x.spill.finish(); err != nil && x.err == nil {
			x.err = err
		}
	}
	if x.err != nil {
		return Result{}, x.err
	}
	x.ranks.seal()
	n := x.n
	// keeper is first the union-find's parents: each root is the best
	// ranked record of its set, the one that would be kept.
	keeper := make([]int32, n)
	for i := range keeper {
		keeper[i] = int32(i)
	}
	find := func(i int32) int32 {
		for keeper[i] != i {
			keeper[i] = keeper[keeper[i]]
			i = keeper[i]
		}
		return i
	}
	union := func(a, b int32) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if x.ranks.place(rb) < x.ranks.place(ra) {
			ra, rb = rb, ra
		}
		keeper[rb] = ra
	}
	// Records are grouped by key (exact hash, then each band's key) in
	// rank order, never in the order they arrived (which depends on how
	// concurrent sources interleaved), so the same records give the same
	// clusters; the first of a group in rank order is its representative.
	// Clusters do not depend on the order groups are met in: they are the
	// connected components of the similar pairs, each kept by its best
	// ranked record.
	isExact := newBits(n)
	if err := x.group(n, func(i int32, exact uint64, _ *packed, add func(uint64)) { add(exact) }, func(first, other *keyed) {
		union(first.i, other.i)
		isExact.set(other.i)
	}); err != nil {
		return Result{}, err
	}
	if threshold < 1 {
		// Only one record per exact group takes part in banding.
		err := x.group(Bands*(n-isExact.count()), func(i int32, _ uint64, s *packed, add func(uint64)) {
			if isExact.has(i) {
				return
			}
			for b := 0; b < Bands; b++ {
				key := uint64(b) * 0x9e3779b97f4a7c15
				for r := 0; r < Rows; r++ {
					key = (key ^ uint64(s[b*Rows+r])) * fnvPrime
				}
				add(key)
			}
		}, func(j, i *keyed) {
			if find(j.i) != find(i.i) && sketchAllows(j.sketch, i.sketch, threshold+Margin) &&
				x.similar(int(j.i), int(i.i)) >= threshold+Margin {
				union(j.i, i.i)
			}
		})
		if err != nil {
			return Result{}, err
		}
	}
	for i := range keeper {
		keeper[i] = find(int32(i)) // every record now points at its root
	}
	// Chains (a like b, b like c) can join records that are not alike: a
	// record stays unless it is close to the one kept. No record points at
	// one let go, so the keepers are changed in place.
	err := x.each(func(i int32, exact uint64, s *packed) {
		k := keeper[i]
		if k == i {
			return
		}
		if ke, ks := x.held(int(k)); ke != exact && similarity16(ks, s) < threshold+Margin {
			keeper[i] = i
		}
	})
	if err == nil {
		err = x.err
	}
	if err != nil {
		return Result{}, err
	}
	// Records let go above still lose to an exact copy of themselves: the
	// best ranked record kept with the same text.
	kept := 0
	for i, k := range keeper {
		if k == int32(i) {
			kept++
		}
	}
	if err := x.group(kept, func(i int32, exact uint64, _ *packed, add func(uint64)) {
		if keeper[i] == i {
			add(exact)
		}
	}, func(best, i *keyed) { keeper[i.i] = best.i }); err != nil {
		return Result{}, err
	}
	res := Result{Keeper: keeper}
	clustered := newBits(n)
	for i := range keeper {
		k := keeper[i]
		if k == int32(i) {
			continue
		}
		if keeper[k] != k {
			k = keeper[k] // a keeper that lost to its exact copy
			keeper[i] = k
		}
		clustered.set(k)
		// A removed record that is not its text's representative has the
		// text of one kept or of one removed before it (exact copies share
		// their fate); a representative's text is new to the cluster.
		if isExact.has(int32(i)) {
			res.RemovedExact++
		} else {
			res.RemovedNear++
		}
	}
	res.Clusters = clustered.count()
	return res, x.err
}

// group reads every record's features once, lets keys add the keys it is
// grouped under (about entries in all), and calls fn for each group as
// eachGroup does.
func (x *Index) group(entries int, keys func(i int32, exact uint64, s *packed, add func(uint64)), fn func(first, other *keyed)) error {
	dir := x.spillDir
	if x.spill == nil {
		dir = ""
	}
	g := newGrouping(dir, entries)
	var e keyed
	add := func(key uint64) {
		e.key = key
		g.add(e)
	}
	if err := x.each(func(r int32, exact uint64, s *packed) {
		e = keyed{at: x.ranks.place(r), i: r, sketch: sketch(s)}
		keys(r, exact, s, add)
	}); err != nil {
		_ = g.close()
		return err
	}
	return g.each(fn)
}

// sketch is the low bit of each packed signature value. Two records'
// sketches agree wherever their values do, so the share of agreeing bits
// is never below their similarity: a pair whose sketches agree on too
// few bits is not similar enough, decided without reading a signature
// back from disk. Unrelated conversations agree on about half the bits
// beyond their similarity, so the pairs the bands bring together that are
// not alike are mostly turned away here.
func sketch(s *packed) uint64 {
	var b uint64
	for k, v := range s {
		b |= uint64(v&1) << k
	}
	return b
}

// sketchAllows says whether two sketches leave the similarity of their
// records at or above t possible.
func sketchAllows(a, b uint64, t float64) bool {
	return float64(mathbits.OnesCount64(^(a^b)))/NumPerm >= t
}

// bits is a set of record indexes.
type bits []uint64

func newBits(n int) bits        { return make(bits, (n+63)/64) }
func (b bits) set(i int32)      { b[i/64] |= 1 << (i % 64) }
func (b bits) has(i int32) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bits) count() (n int) {
	for _, w := range b {
		n += mathbits.OnesCount64(w)
	}
	return n
}

// Members lists, for each kept record with duplicates, the records merged
// into it, in index order.
func (r Result) Members() map[int32][]int32 {
	m := map[int32][]int32{}
	for i, k := range r.Keeper {
		if k != int32(i) {
			m[k] = append(m[k], int32(i))
		}
	}
	for k := range m {
		slices.Sort(m[k])
	}
	return m
}

// Settings are a request's fusion object with defaults applied.
type Settings struct {
	// NearThreshold: estimated Jaccard similarity for near duplicates; 1
	// keeps exact duplicate removal only.
	NearThreshold float64 `json:"near_threshold"`
	// Keep says which record of a cluster stays: "priority" (the source's
	// priority, then its order in the request, then the position).
	Keep string `json:"keep"`
	// Bands, Rows and NumPerm are reported in the manifest.
	Bands   int `json:"bands"`
	Rows    int `json:"rows"`
	NumPerm int `json:"num_perm"`
}

// RequestSettings is the fusion object a request may carry.
type RequestSettings struct {
	Enabled       *bool    `json:"enabled,omitempty"`
	NearThreshold *float64 `json:"near_threshold,omitempty"`
	Keep          string   `json:"keep,omitempty"`
}

// ParseRequest validates a request's fusion object.
func ParseRequest(raw []byte) (RequestSettings, error) {
	r, absent, err := settings.Object[RequestSettings](raw, "fusion", "enabled, near_threshold and keep")
	if absent || err != nil {
		return r, err
	}
	if t := r.NearThreshold; t != nil && (*t < 0.01 || *t > 1) {
		return r, errors.New("fusion.near_threshold: must be between 0.01 and 1 (1: exact duplicates only)")
	}
	switch r.Keep {
	case "", "priority":
	default:
		return r, errors.New("fusion.keep: must be priority (the highest-priority source's record is kept)")
	}
	return r, nil
}

// Resolve applies the defaults; ok is false when the stage is off.
func Resolve(raw []byte) (Settings, bool) {
	r, _ := ParseRequest(raw) // validated by the API already
	s := Settings{NearThreshold: DefaultThreshold, Keep: "priority", Bands: Bands, Rows: Rows, NumPerm: NumPerm}
	if r.Enabled != nil && !*r.Enabled {
		return s, false
	}
	if r.NearThreshold != nil {
		s.NearThreshold = *r.NearThreshold
	}
	return s, true
}

// Jaccard is the exact Jaccard similarity of two conversations' shingle
// sets (what the signature estimates), for evaluation.
func Jaccard(a, b []stage.Message) float64 {
	set := func(ms []stage.Message) map[uint64]bool {
		out := map[uint64]bool{}
		eachShingle(conversationWords(ms, nil), func(sh uint64) { out[sh] = true })
		return out
	}
	sa, sb := set(a), set(b)
	inter := 0
	for k := range sa {
		if sb[k] {
			inter++
		}
	}
	union := len(sa) + len(sb) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}
