package processor

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/wire"
)

// The output stage reads an execution's staged records from every
// partition of the staged topic (the record stages ran wherever the
// records were), and must see them in one order whatever processors ran
// them and whenever: the order of their sources, and within a source the
// order acquisition read them (the sequence number). gather reads each
// partition once into files of its own, one per source, still sealed under
// the execution's data key (nothing is in the clear on disk); each file is
// in sequence order, because a partition holds a source's records in the
// order they were produced. each then merges, source by source, the
// partitions' files by sequence number, once for each pass of the output.

// gathered is an execution's staged records, read once from the topic.
type gathered struct {
	dir string
	// files[s][q] holds source s's records from partition q; the last
	// source slot takes records naming no known source.
	files   [][]*gatherFile
	sources int
	got     int64  // records filed
	seen    seqSet // records filed, by source and sequence number
	frame   []byte // scratch
}

type gatherFile struct {
	f *os.File
	w *bufio.Writer
}

// gatherKinds are the staged kinds the output reads, by their code in a
// gathered file.
var gatherKinds = []string{wire.KindStaged, wire.KindRejected, wire.KindQuarantined}

// gatherWait bounds how long gather waits for staged records it knows of
// to become readable.
const gatherWait = 2 * time.Minute

// gather reads the execution's staged records from every partition into
// files under dir: every one of them, want in all. A transaction's commit
// becomes readable partition by partition (its markers are written one
// partition at a time), so a record whose outcome was counted may not yet
// be readable on its staged partition: gather reads on until it has them
// all.
func (p *Processor) gather(ctx context.Context, x *execState, dir string, want int64) (*gathered, error) {
	from := x.stagedFroms
	parts := make([]int32, len(from))
	for q := range parts {
		parts[q] = int32(q)
	}
	if from == nil { // started by an earlier version: every record is at home
		from, parts = []int64{x.stagedFrom}, []int32{x.partition}
	}
	g, err := newGathered(dir, x, len(parts))
	if err != nil {
		return nil, err
	}
	if err := p.gatherAll(ctx, x, g, parts, from, want); err != nil {
		g.remove()
		return nil, err
	}
	return g, nil
}

// newGathered makes the execution's gathering directory under dir, after
// removing what a crashed attempt of the same execution left there.
func newGathered(dir string, x *execState, parts int) (*gathered, error) {
	prefix := ".gather-" + x.id + "-"
	old, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, o := range old {
		_ = os.RemoveAll(o)
	}
	d, err := os.MkdirTemp(dir, prefix+"*")
	if err != nil {
		return nil, err
	}
	g := &gathered{dir: d, files: make([][]*gatherFile, len(x.req.Sources)+1), sources: len(x.req.Sources)}
	for s := range g.files {
		g.files[s] = make([]*gatherFile, parts)
	}
	return g, nil
}

// gatherAll reads the partitions, in rounds until want records are in.
func (p *Processor) gatherAll(ctx context.Context, x *execState, g *gathered, parts []int32, from []int64, want int64) error {
	next := append([]int64(nil), from...)
	deadline := time.Now().Add(gatherWait)
	for round := 0; g.got < want; round++ {
		if round > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d of the %d staged records are readable after %s", g.got, want, gatherWait)
			}
			if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		for i, q := range parts {
			end, err := p.cfg.Kafka.ReadPartitionUpTo(ctx, p.topics.Staged, q, next[i], func(r *kgo.Record) error {
				if string(r.Key) != x.id {
					return nil
				}
				return g.add(r, i)
			})
			if err != nil {
				return err
			}
			next[i] = end
		}
	}
	if g.got != want {
		return fmt.Errorf("the staged topic holds %d records of the execution, %d were counted", g.got, want)
	}
	for _, fs := range g.files {
		for _, f := range fs {
			if f != nil {
				if err := f.w.Flush(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// add files one staged record read from the i-th partition.
func (g *gathered) add(r *kgo.Record, i int) error {
	m, err := wire.ReadMeta(r)
	if err != nil {
		return err
	}
	code := kindCode(m.Kind)
	if code < 0 {
		return nil
	}
	if !g.seen.add(g.sources, m.Source, m.Seq) {
		return nil // delivered again: the same record, already filed
	}
	s := m.Source
	if s < 0 || s >= g.sources {
		s = g.sources
	}
	f, err := g.file(s, i)
	if err != nil {
		return err
	}
	g.frame = appendFrame(g.frame[:0], byte(code), m, r.Offset, r.Value, r.Headers)
	g.got++
	_, err = f.w.Write(g.frame)
	return err
}

func kindCode(kind string) int {
	for i, k := range gatherKinds {
		if k == kind {
			return i
		}
	}
	return -1
}

// file is source s's file for the i-th partition read, made when first
// needed.
func (g *gathered) file(s, i int) (*gatherFile, error) {
	if f := g.files[s][i]; f != nil {
		return f, nil
	}
	f, err := os.CreateTemp(g.dir, "part-*")
	if err != nil {
		return nil, err
	}
	gf := &gatherFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	g.files[s][i] = gf
	return gf, nil
}

// A frame: kind code (1 byte), source, position, sequence number, topic
// offset (8 bytes each), value length and prepared length (4 bytes each),
// the sealed value, then the sealed prepared values (each: name length,
// 1 byte; name; length, 4 bytes; value).
const frameHeader = 1 + 8*4 + 4 + 4

func appendFrame(b []byte, code byte, m wire.Meta, offset int64, v []byte, headers []kgo.RecordHeader) []byte {
	b = append(b, code)
	b = binary.BigEndian.AppendUint64(b, uint64(int64(m.Source)))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Position))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	at := len(b)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = append(b, v...)
	start := len(b)
	for _, h := range headers {
		name, ok := strings.CutPrefix(h.Key, preparedHeader)
		if !ok || len(name) > 255 {
			continue
		}
		b = append(b, byte(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
		b = append(b, h.Value...)
	}
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-start))
	return b
}

// preparedIn finds a dataset stage's sealed prepared value in a frame's
// prepared part (nil when absent).
func preparedIn(extra []byte, name string) []byte {
	for len(extra) > 0 {
		n := int(extra[0])
		if len(extra) < 1+n+4 {
			return nil
		}
		got := string(extra[1 : 1+n])
		size := int(binary.BigEndian.Uint32(extra[1+n:]))
		extra = extra[1+n+4:]
		if len(extra) < size {
			return nil
		}
		if got == name {
			return extra[:size]
		}
		extra = extra[size:]
	}
	return nil
}

// gatheredRecord is one staged record read back from a gathered file.
type gatheredRecord struct {
	m      wire.Meta
	offset int64
	value  []byte
	// prepared holds the dataset stages' sealed work on the record
	// (preparedIn reads it).
	prepared []byte
}

// reader reads one gathered file's frames in order.
type reader struct {
	r    *bufio.Reader
	head gatheredRecord
	ok   bool
	buf  []byte
}

func (rd *reader) next() error {
	var h [frameHeader]byte
	if _, err := io.ReadFull(rd.r, h[:]); err != nil {
		rd.ok = false
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("gathered staged records: %w", err)
	}
	code := int(h[0])
	if code >= len(gatherKinds) {
		return errors.New("gathered staged records: bad frame")
	}
	vn, pn := int(binary.BigEndian.Uint32(h[33:])), int(binary.BigEndian.Uint32(h[37:]))
	n := vn + pn
	if cap(rd.buf) < n {
		rd.buf = make([]byte, n)
	}
	rd.buf = rd.buf[:n]
	if _, err := io.ReadFull(rd.r, rd.buf); err != nil {
		return fmt.Errorf("gathered staged records: %w", err)
	}
	rd.head = gatheredRecord{
		m: wire.Meta{Kind: gatherKinds[code], Source: int(int64(binary.BigEndian.Uint64(h[1:]))), Position: int64(binary.BigEndian.Uint64(h[9:])),
			Seq: int64(binary.BigEndian.Uint64(h[17:]))},
		offset:   int64(binary.BigEndian.Uint64(h[25:])),
		value:    rd.buf[:vn],
		prepared: rd.buf[vn:],
	}
	rd.ok = true
	return nil
}

// each calls fn for every gathered record: source by source, each source's
// records by sequence number (ties, as records of an earlier version have
// none, in partition then file order). The value is valid during the call.
func (g *gathered) each(fn func(rec *gatheredRecord) error) error {
	for _, fs := range g.files {
		var rds []*reader
		for _, f := range fs {
			if f == nil {
				continue
			}
			if _, err := f.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			rd := &reader{r: bufio.NewReaderSize(f.f, 64<<10)}
			if err := rd.next(); err != nil {
				return err
			}
			rds = append(rds, rd)
		}
		for {
			var min *reader
			for _, rd := range rds {
				if rd.ok && (min == nil || rd.head.m.Seq < min.head.m.Seq) {
					min = rd
				}
			}
			if min == nil {
				break
			}
			if err := fn(&min.head); err != nil {
				return err
			}
			if err := min.next(); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes the gathered files.
func (g *gathered) remove() {
	for _, fs := range g.files {
		for _, f := range fs {
			if f != nil {
				f.f.Close()
			}
		}
	}
	os.RemoveAll(g.dir)
}
