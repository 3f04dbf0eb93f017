package fusion

import (
	"bufio"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dspipe/dspipe/internal/crypt"
)

// sealedFile is a temporary file of fixed-size records, each encrypted
// (AES-256-GCM) under a key made for the file and never written down, the
// record's number being the nonce: what fusion spills (signatures, record
// ids) is derived from conversation text, so it is unreadable after the
// process ends, and the file is removed when closed. Records are appended,
// then read back in order or one at a time.
type sealedFile struct {
	f    *os.File
	w    *bufio.Writer
	aead cipher.AEAD
	size int // plaintext bytes a record
	n    int // records written
	rec  []byte
	got  []byte // the record at reads
	err  error
}

func newSealedFile(dir string, size int) (*sealedFile, error) {
	a, err := crypt.NewAEAD(crypt.NewKey())
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".fusion-*")
	if err != nil {
		return nil, fmt.Errorf("fusion: spill the index: %w", err)
	}
	return &sealedFile{f: f, w: bufio.NewWriterSize(f, 256<<10), aead: a, size: size,
		rec: make([]byte, 0, size+16), got: make([]byte, size+16)}, nil
}

func (s *sealedFile) sealed() int { return s.size + 16 }

func nonce(i int) []byte {
	var n [12]byte
	binary.LittleEndian.PutUint64(n[:], uint64(i))
	return n[:]
}

// add appends the next record.
func (s *sealedFile) add(plain []byte) {
	out := s.aead.Seal(s.rec[:0], nonce(s.n), plain, nil)
	if _, err := s.w.Write(out); err != nil && s.err == nil {
		s.err = err
	}
	s.n++
}

// finish flushes what was written, before the file is read.
func (s *sealedFile) finish() error {
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = err
	}
	return s.err
}

// at reads record i; the plaintext is valid until the next call.
func (s *sealedFile) at(i int) ([]byte, error) {
	if _, err := s.f.ReadAt(s.got, int64(i)*int64(s.sealed())); err != nil {
		return nil, fmt.Errorf("fusion: read spilled record %d: %w", i, err)
	}
	plain, err := s.aead.Open(s.got[:0], nonce(i), s.got, nil)
	if err != nil {
		return nil, fmt.Errorf("fusion: spilled record %d: %w", i, err)
	}
	return plain, nil
}

// each reads every record in order; each plaintext is valid during its
// call.
func (s *sealedFile) each(fn func(i int, plain []byte)) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, int64(s.n)*int64(s.sealed())), 256<<10)
	buf := make([]byte, s.sealed())
	for i := 0; i < s.n; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("fusion: read spilled records: %w", err)
		}
		plain, err := s.aead.Open(buf[:0], nonce(i), buf, nil)
		if err != nil {
			return fmt.Errorf("fusion: spilled record %d: %w", i, err)
		}
		fn(i, plain)
	}
	return nil
}

func (s *sealedFile) close() error {
	if s == nil || s.f == nil {
		return nil
	}
	name := s.f.Name()
	err := errors.Join(s.f.Close(), os.Remove(name))
	s.f = nil
	return err
}

// featFile holds the index's features on disk once there are more than
// the index keeps in memory (Index.SpillBeyond): the exact hash and the
// packed signature, 152 bytes a record sealed.
type featFile struct {
	*sealedFile
	plain [featBytes]byte
}

const (
	featBytes  = 8 + NumPerm*2
	featSealed = featBytes + 16
)

func newFeatFile(dir string) (*featFile, error) {
	s, err := newSealedFile(dir, featBytes)
	if err != nil {
		return nil, err
	}
	return &featFile{sealedFile: s}, nil
}

// add appends the next record's features.
func (s *featFile) add(exact uint64, p *packed) {
	binary.LittleEndian.PutUint64(s.plain[:], exact)
	for k, v := range p {
		binary.LittleEndian.PutUint16(s.plain[8+2*k:], v)
	}
	s.sealedFile.add(s.plain[:])
}

func unpack(plain []byte, p *packed) uint64 {
	for k := range p {
		p[k] = binary.LittleEndian.Uint16(plain[8+2*k:])
	}
	return binary.LittleEndian.Uint64(plain)
}

// at reads record i's features (for a candidate pair, a keeper).
func (s *featFile) at(i int, p *packed) (uint64, error) {
	plain, err := s.sealedFile.at(i)
	if err != nil {
		return 0, err
	}
	return unpack(plain, p), nil
}

// each reads every record's features in order.
func (s *featFile) each(fn func(i int, exact uint64, p *packed)) error {
	var p packed
	return s.sealedFile.each(func(i int, plain []byte) {
		e := unpack(plain, &p)
		fn(i, e, &p)
	})
}

func (s *featFile) close() error {
	if s == nil {
		return nil
	}
	return s.sealedFile.close()
}
