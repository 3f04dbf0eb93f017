package fusion

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/pipeline"
)

// Stage is fusion as a dataset stage: every staged record is indexed
// (exact hash and MinHash bands); then one record of each cluster of
// exact and near duplicates is kept, the best ranked (source priority,
// then order), and the ids it absorbed are recorded.
type Stage struct{}

// Name is the stage's name in events.
func (Stage) Name() string { return events.StageFusion }

// Resolve runs the stage when the server allows it and the request asks.
func (Stage) Resolve(req events.Request, env pipeline.Env) pipeline.DatasetRun {
	s, ok := Resolve(req.Fusion)
	if !ok || !env.FusionEnabled {
		return nil
	}
	r := &run{set: s, sources: len(req.Sources)}
	r.idx.SpillBeyond(os.TempDir(), InMemory)
	r.ids.spillDir, r.ids.spillAfter = os.TempDir(), InMemory
	return r
}

// InMemory is how many records' signatures the stage keeps in memory
// before the rest spill to disk: 12.8 MB.
const InMemory = 100_000

type run struct {
	set     Settings
	sources int
	idx     Index
	ids     idList
	buf     []uint64
}

// idList holds every record's id. A record id is 32 hex digits (16 bytes
// of an HMAC), kept as its 16 bytes: 16 bytes a record, where a string
// each would take 64; beyond spillAfter ids (when spillDir is set) they go
// to an encrypted file, read back only for the records fusion removes. An
// id of another form is kept as it is, apart.
type idList struct {
	packed     []byte
	other      map[int]string
	n          int
	spillDir   string
	spillAfter int
	file       *sealedFile
	err        error
}

func (l *idList) add(id string) {
	i := l.n
	l.n++
	var b [16]byte
	if len(id) == 32 && isLowerHex(id) {
		_, _ = hex.Decode(b[:], []byte(id)) // lower-case hex: cannot fail
	} else {
		if l.other == nil {
			l.other = map[int]string{}
		}
		l.other[i] = id
	}
	if l.file == nil && l.spillDir != "" && i >= l.spillAfter && l.err == nil {
		if l.file, l.err = newSealedFile(l.spillDir, 16); l.err == nil {
			for k := 0; k < i; k++ {
				l.file.add(l.packed[16*k : 16*k+16])
			}
			l.packed = nil
		}
	}
	if l.file != nil {
		l.file.add(b[:])
		return
	}
	l.packed = append(l.packed, b[:]...)
}

func (l *idList) at(i int) (string, error) {
	if id, ok := l.other[i]; ok {
		return id, nil
	}
	if l.err != nil {
		return "", l.err
	}
	if l.file == nil {
		return hex.EncodeToString(l.packed[16*i : 16*i+16]), nil
	}
	if err := l.file.finish(); err != nil { // a no-op once flushed
		return "", err
	}
	b, err := l.file.at(i)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (l *idList) close() error {
	err := l.file.close()
	l.file = nil
	return err
}

// isLowerHex is true when s is lower-case hex, the only form that
// encodes back to itself.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// prepared is a record's features with its id: what Observe needs, so
// that a record whose work travelled with it need not be decoded.
type prepared struct {
	Features
	id string
}

// Prepare computes a record's features (its exact hash and signature),
// on whichever core the caller runs it.
func (f *run) Prepare(r *pipeline.StagedRecord) any {
	bp := bufs.Get().(*[]uint64)
	ft, buf := Compute(r.Messages, *bp)
	*bp = buf
	bufs.Put(bp)
	return &prepared{ft, r.ID}
}

// preparedSize is the packed features' size before the id.
const preparedSize = 8 + 4*NumPerm

// EncodePrepared packs a record's features and id: the exact hash, the
// signature (big-endian), then the id.
func (f *run) EncodePrepared(v any) []byte {
	pr := v.(*prepared)
	b := make([]byte, 0, preparedSize+len(pr.id))
	b = binary.BigEndian.AppendUint64(b, pr.Exact)
	for _, x := range pr.Sig {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return append(b, pr.id...)
}

// DecodePrepared unpacks what EncodePrepared packed. Work packed without
// an id (by a version before the id travelled) does not decode: the
// record is then decoded and prepared again.
func (f *run) DecodePrepared(b []byte) (any, error) {
	if len(b) <= preparedSize {
		return nil, fmt.Errorf("fusion: prepared features of %d bytes, want more than %d", len(b), preparedSize)
	}
	pr := &prepared{Features: Features{Exact: binary.BigEndian.Uint64(b)}, id: string(b[preparedSize:])}
	for i := range pr.Sig {
		pr.Sig[i] = binary.BigEndian.Uint32(b[8+4*i:])
	}
	return pr, nil
}

// bufs recycles Prepare's word buffers.
var bufs = sync.Pool{New: func() any { return new([]uint64) }}

// Reads: with its prepared work there, Observe reads nothing of the
// record (the work holds its id); without it, the messages and the id.
func (f *run) Reads() pipeline.Fields { return 0 }

func (f *run) Observe(r *pipeline.StagedRecord) {
	ft, id := (*Features)(nil), r.ID
	if pr, ok := r.Prepared.(*prepared); ok {
		ft, id = &pr.Features, pr.id
	} else {
		var own Features
		own, f.buf = Compute(r.Messages, f.buf)
		ft = &own
	}
	f.idx.Add(ft, Rank{Priority: r.Priority, Source: r.Source, Position: r.Position})
	f.ids.add(id)
}

// Decide keeps one record of each duplicate cluster and records what it
// merged.
func (f *run) Decide(p *pipeline.Plan) error {
	res, err := f.idx.Resolve(f.set.NearThreshold)
	if err != nil {
		return err
	}
	sum := &events.FusionSummary{Records: int64(len(p.Copies)), Clusters: int64(res.Clusters), RemovedExact: int64(res.RemovedExact),
		RemovedNear: int64(res.RemovedNear), NearThreshold: f.set.NearThreshold, KeptPerSource: make([]int64, f.sources)}
	for i, k := range res.Keeper {
		if k != int32(i) {
			p.Copies[i] = 0
			id, err := f.ids.at(i)
			if err != nil {
				return err
			}
			p.Merged.Add(k, id)
			continue
		}
		sum.Kept++
		if s := f.idx.Source(i); s >= 0 && s < len(sum.KeptPerSource) {
			sum.KeptPerSource[s]++
		}
	}
	p.Merged.Sort()
	p.Fusion = sum
	return nil
}

// Close removes the index's spill file.
func (f *run) Close() error { return errors.Join(f.idx.Close(), f.ids.close()) }

func (f *run) Manifest() (string, any) { return Version, f.set }
