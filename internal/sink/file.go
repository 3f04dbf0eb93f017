// Package sink implements the output stage's writers: line-oriented data
// files with optional gzip or zstd compression, hashed and counted as they
// are written, placed atomically in a local directory.
package sink

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/dspipe/dspipe/events"
)

// Compression names accepted in a request.
const (
	CompressNone = "none"
	CompressGzip = "gzip"
	CompressZstd = "zstd"
)

// Extension returns the file suffix for a compression.
func Extension(compression string) string {
	switch compression {
	case CompressGzip:
		return ".gz"
	case CompressZstd:
		return ".zst"
	}
	return ""
}

// LineFile writes newline-terminated records to one file, computing the
// SHA-256 and size of the bytes on disk.
type LineFile struct {
	name    string
	f       *os.File
	hash    io.Writer
	sum     func() []byte
	counter *countWriter
	comp    io.WriteCloser
	buf     *bufio.Writer
	w       io.Writer
	records int64
}

// Create opens dir/name for writing with the given compression.
func Create(dir, name, compression string) (*LineFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("sink: create %s: %w", name, err)
	}
	h := sha256.New()
	cw := &countWriter{}
	lf := &LineFile{name: name, f: f, hash: h, sum: func() []byte { return h.Sum(nil) }, counter: cw}
	// One buffer in front of the file: without it every line costs two
	// write system calls.
	lf.buf = bufio.NewWriterSize(io.MultiWriter(f, h, cw), 256<<10)
	raw := lf.buf
	switch compression {
	case CompressGzip:
		zw, _ := gzip.NewWriterLevel(raw, gzip.DefaultCompression)
		// A fixed header (no name, no time) keeps outputs byte-identical.
		lf.comp, lf.w = zw, zw
	case CompressZstd:
		zw, err := zstd.NewWriter(raw, zstd.WithEncoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sink: zstd: %w", err)
		}
		lf.comp, lf.w = zw, zw
	case "", CompressNone:
		lf.w = raw
	default:
		f.Close()
		return nil, fmt.Errorf("sink: unknown compression %q", compression)
	}
	return lf, nil
}

// WriteLine writes one record followed by a newline.
func (l *LineFile) WriteLine(b []byte) error {
	if _, err := l.w.Write(b); err != nil {
		return fmt.Errorf("sink: write %s: %w", l.name, err)
	}
	if _, err := l.w.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("sink: write %s: %w", l.name, err)
	}
	l.records++
	return nil
}

// Close flushes, syncs and closes the file and describes it.
func (l *LineFile) Close() (events.OutputFile, error) {
	if l.comp != nil {
		if err := l.comp.Close(); err != nil {
			l.f.Close()
			return events.OutputFile{}, fmt.Errorf("sink: close %s: %w", l.name, err)
		}
	}
	if err := l.buf.Flush(); err != nil {
		l.f.Close()
		return events.OutputFile{}, fmt.Errorf("sink: flush %s: %w", l.name, err)
	}
	if err := l.f.Sync(); err != nil {
		l.f.Close()
		return events.OutputFile{}, fmt.Errorf("sink: sync %s: %w", l.name, err)
	}
	if err := l.f.Close(); err != nil {
		return events.OutputFile{}, fmt.Errorf("sink: close %s: %w", l.name, err)
	}
	return events.OutputFile{Name: l.name, Records: l.records, Bytes: l.counter.n, SHA256: hex.EncodeToString(l.sum())}, nil
}

// Abort closes and removes the file.
func (l *LineFile) Abort() {
	l.f.Close()
	_ = os.Remove(l.f.Name())
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// WriteFileHashed writes b to dir/name and describes it.
func WriteFileHashed(dir, name string, b []byte) (events.OutputFile, error) {
	lf, err := Create(dir, name, CompressNone)
	if err != nil {
		return events.OutputFile{}, err
	}
	if _, err := lf.w.Write(b); err != nil {
		lf.Abort()
		return events.OutputFile{}, err
	}
	return lf.Close()
}

// Staging is a temporary directory beside the final one; Commit moves it
// into place in one rename, so a crash never leaves a half-written output
// that looks complete.
type Staging struct {
	Dir   string
	final string
}

// NewStaging creates the staging directory for final, which Claim chose
// under root (from Root). Every directory between root and final is
// checked not to be a link.
func NewStaging(root, final string) (*Staging, error) {
	parent := filepath.Dir(final)
	if err := MkdirBeneath(root, parent); err != nil {
		return nil, fmt.Errorf("sink: output parent: %w", err)
	}
	// Leftovers of a crashed attempt are removed first (RemoveAll removes
	// a link, never what it points to).
	if old, _ := filepath.Glob(final + ".partial-*"); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	dir, err := os.MkdirTemp(parent, filepath.Base(final)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("sink: staging dir: %w", err)
	}
	return &Staging{Dir: dir, final: final}, nil
}

// Commit moves the staging directory into place. replaceOwn says the final
// directory, if present, is this execution's own earlier attempt (Claim
// checked) and may be replaced; the rename itself never replaces anything,
// so an output another execution published meanwhile is left alone.
func (s *Staging) Commit(replaceOwn bool) error {
	if replaceOwn {
		if err := os.RemoveAll(s.final); err != nil {
			return fmt.Errorf("sink: replace output: %w", err)
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, s.Dir, unix.AT_FDCWD, s.final, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("%w: %s appeared while this output was written", ErrTaken, filepath.Base(s.final))
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("sink: publish output: %w", err)
		}
		// A file system without RENAME_NOREPLACE: check, then rename.
		if _, err := os.Lstat(s.final); err == nil {
			return fmt.Errorf("%w: %s appeared while this output was written", ErrTaken, filepath.Base(s.final))
		}
		if err := os.Rename(s.Dir, s.final); err != nil {
			return fmt.Errorf("sink: publish output: %w", err)
		}
	}
	if d, err := os.Open(filepath.Dir(s.final)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Abort removes the staging directory.
func (s *Staging) Abort() { _ = os.RemoveAll(s.Dir) }
