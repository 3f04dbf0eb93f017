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

// sigFile holds the index's signatures on disk once there are more than
// the index keeps in memory (Index.SpillBeyond): 144 bytes a record, so
// the index holds only its exact hashes and ranks (24 bytes a record).
// Signatures are derived from conversation text, so they are encrypted
// (AES-256-GCM) under a key made for this index and never written down:
// the file is unreadable after the process ends, and it is removed when
// the index is closed. The record's number is the nonce.
type sigFile struct {
	f    *os.File
	w    *bufio.Writer
	aead cipher.AEAD
	n    int // records written
	rec  [sigSealed]byte
	got  [sigSealed]byte // the record at reads
	sig  packed
	err  error
}

const (
	sigBytes  = NumPerm * 2
	sigSealed = sigBytes + 16
)

func newSigFile(dir string) (*sigFile, error) {
	a, err := crypt.NewAEAD(crypt.NewKey())
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".fusion-*")
	if err != nil {
		return nil, fmt.Errorf("fusion: spill the index: %w", err)
	}
	return &sigFile{f: f, w: bufio.NewWriterSize(f, 256<<10), aead: a}, nil
}

func nonce(i int) []byte {
	var n [12]byte
	binary.LittleEndian.PutUint64(n[:], uint64(i))
	return n[:]
}

// add appends the next record's signature.
func (s *sigFile) add(p *packed) {
	var plain [sigBytes]byte
	for k, v := range p {
		binary.LittleEndian.PutUint16(plain[2*k:], v)
	}
	out := s.aead.Seal(s.rec[:0], nonce(s.n), plain[:], nil)
	if _, err := s.w.Write(out); err != nil && s.err == nil {
		s.err = err
	}
	s.n++
}

// open decrypts one sealed record into p.
func (s *sigFile) open(i int, sealed []byte, p *packed) error {
	plain, err := s.aead.Open(sealed[:0], nonce(i), sealed, nil)
	if err != nil {
		return fmt.Errorf("fusion: spilled signature %d: %w", i, err)
	}
	for k := range p {
		p[k] = binary.LittleEndian.Uint16(plain[2*k:])
	}
	return nil
}

// finish flushes what was written, before the file is read.
func (s *sigFile) finish() error {
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = err
	}
	return s.err
}

// at reads record i's signature (for a candidate pair).
func (s *sigFile) at(i int, p *packed) error {
	if _, err := s.f.ReadAt(s.got[:], int64(i)*sigSealed); err != nil {
		return fmt.Errorf("fusion: read spilled signature %d: %w", i, err)
	}
	return s.open(i, s.got[:], p)
}

// each reads every signature in order (one band's pass).
func (s *sigFile) each(fn func(i int, p *packed)) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, int64(s.n)*sigSealed), 256<<10)
	var buf [sigSealed]byte
	var p packed
	for i := 0; i < s.n; i++ {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return fmt.Errorf("fusion: read spilled signatures: %w", err)
		}
		if err := s.open(i, buf[:], &p); err != nil {
			return err
		}
		fn(i, &p)
	}
	return nil
}

func (s *sigFile) close() error {
	if s == nil || s.f == nil {
		return nil
	}
	name := s.f.Name()
	err := errors.Join(s.f.Close(), os.Remove(name))
	s.f = nil
	return err
}
