package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Local reads a file, a directory (its regular, non-hidden files) or a glob,
// every file confined to Roots after resolving symlinks.
type Local struct {
	Path  string
	Roots []string
	// ReadFault, when set, wraps every opened file; tests use it to make a
	// read fail mid-file the way a network filesystem can.
	ReadFault func(io.ReadCloser) io.ReadCloser
}

// List resolves the path to its files.
func (l *Local) List(context.Context) ([]Object, error) {
	files, err := LocalFiles(l.Path, l.Roots)
	if err != nil {
		return nil, err
	}
	out := make([]Object, 0, len(files))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, localErr(err, f)
		}
		out = append(out, Object{Name: f, URI: LocalURI(f, l.Roots), Size: st.Size()})
	}
	return out, nil
}

// Open reads a file from off. The file is checked against the roots again:
// a symlink may have been swapped since List.
func (l *Local) Open(_ context.Context, obj Object, off, n int64) (io.ReadCloser, error) {
	files, err := LocalFiles(obj.Name, l.Roots)
	if err != nil {
		return nil, err
	}
	if len(files) != 1 || files[0] != obj.Name {
		return nil, fmt.Errorf("%w: %s changed since it was listed", ErrNotAllowed, obj.Name)
	}
	// O_NONBLOCK: should the file have been swapped for a FIFO since it
	// was checked, opening it must not hang; anything but a regular file
	// is refused.
	f, err := os.OpenFile(obj.Name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, localErr(err, obj.Name)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotAllowed, obj.Name)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	var rc io.ReadCloser = f
	if n >= 0 {
		rc = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(f, n), f}
	}
	if l.ReadFault != nil {
		rc = l.ReadFault(rc)
	}
	return rc, nil
}

// OpenAt gives Parquet direct random access to a local file.
func (l *Local) OpenAt(ctx context.Context, obj Object) (ReaderAtCloser, error) {
	if l.ReadFault != nil {
		return rangeReaderAt(ctx, l, obj), nil
	}
	rc, err := l.Open(ctx, obj, 0, -1)
	if err != nil {
		return nil, err
	}
	return rc.(*os.File), nil
}

func localErr(err error, path string) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: local file %s", ErrNotFound, path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: local file %s", ErrDenied, path)
	}
	return err
}
