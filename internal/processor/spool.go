package processor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dspipe/dspipe/internal/crypt"
)

// spools hold one source's kept records each, in log order, until the data
// file is written in source order. With a data key, every spooled record
// is encrypted (AES-256-GCM, bound to its spool and line): record text is
// never at rest in plaintext inside the service. Records are framed by a
// 4-byte length.
type spools struct {
	dir   string
	files []*os.File
	ws    []*bufio.Writer
	lines []int64
	id    string
	dk    *crypt.DataKey
	buf   []byte
	ad    []byte
}

func newSpools(dir string, n int, id string, dk *crypt.DataKey) (*spools, error) {
	s := &spools{dir: dir, id: id, dk: dk}
	for i := 0; i < max(n, 1); i++ {
		f, err := os.CreateTemp(dir, ".spool-*")
		if err != nil {
			s.remove()
			return nil, err
		}
		s.files = append(s.files, f)
		s.ws = append(s.ws, bufio.NewWriterSize(f, 256<<10))
		s.lines = append(s.lines, 0)
	}
	return s, nil
}

func (s *spools) write(src int, v []byte) error {
	if src < 0 || src >= len(s.ws) {
		src = 0
	}
	if s.dk != nil {
		s.ad = crypt.AD(s.ad[:0], s.id, crypt.PlaceSpool, "", src, s.lines[src])
		s.buf = s.dk.Seal(s.buf[:0], v, s.ad)
		v = s.buf
	}
	s.lines[src]++
	w := s.ws[src]
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(v)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	_, err := w.Write(v)
	return err
}

// drain hands every spooled record to fn, source by source.
func (s *spools) drain(fn func([]byte) error) error {
	var frame, plain []byte
	for i, f := range s.files {
		if err := s.ws[i].Flush(); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r := bufio.NewReaderSize(f, 256<<10)
		for line := int64(0); ; line++ {
			var n [4]byte
			if _, err := io.ReadFull(r, n[:]); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("spool %d: %w", i, err)
			}
			size := int(binary.BigEndian.Uint32(n[:]))
			if cap(frame) < size {
				frame = make([]byte, size)
			}
			frame = frame[:size]
			if _, err := io.ReadFull(r, frame); err != nil {
				return fmt.Errorf("spool %d: %w", i, err)
			}
			v := frame
			if s.dk != nil {
				var err error
				s.ad = crypt.AD(s.ad[:0], s.id, crypt.PlaceSpool, "", i, line)
				if plain, err = s.dk.Open(plain[:0], frame, s.ad); err != nil {
					return fmt.Errorf("spool %d record %d: %w", i, line, err)
				}
				v = plain
			}
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *spools) remove() {
	for _, f := range s.files {
		f.Close()
		os.Remove(f.Name())
	}
	s.files, s.ws = nil, nil
}
