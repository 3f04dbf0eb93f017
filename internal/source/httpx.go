package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrPrivateAddress is returned when a request-supplied endpoint resolves to
// a loopback, private or link-local address and those are not allowed.
var ErrPrivateAddress = errors.New("endpoint resolves to a private or loopback address (set DSPIPE_ALLOW_PRIVATE_ENDPOINTS=true to allow)")

// guardedClient is an HTTP client that refuses, at connect time (so DNS
// rebinding cannot get around it), addresses a request may not reach.
func guardedClient(allowPrivate bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	guardTransport(tr, allowPrivate)
	return &http.Client{Transport: tr}
}

// guardTransport makes tr dial only addresses a request may reach.
func guardTransport(tr *http.Transport, allowPrivate bool) {
	d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if a := ap.Addr().Unmap(); a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() {
				return fmt.Errorf("%w: %s", ErrPrivateAddress, a)
			}
			return nil
		}
	}
	tr.DialContext = d.DialContext
	tr.Proxy = nil
	tr.ResponseHeaderTimeout = 60 * time.Second
}

// rangeHeader is the HTTP Range for n bytes from off (to the end when n < 0),
// or "" for the whole object.
func rangeHeader(off, n int64) string {
	switch {
	case n >= 0:
		return fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	case off > 0:
		return fmt.Sprintf("bytes=%d-", off)
	}
	return ""
}

// statusErr maps an HTTP status to the source errors, with what to do.
func statusErr(what string, code int, hint string) error {
	switch {
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %s (HTTP 404)", ErrNotFound, what)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: %s (HTTP %d)%s", ErrDenied, what, code, hint)
	case code == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %s: range not satisfiable (the object changed?)", ErrConfig, what)
	}
	return fmt.Errorf("%s: HTTP %d", what, code)
}

// ReaderAtCloser is random access to one object, for Parquet.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// rangeReaderAt reads ranges of an object through Source.Open, retrying
// dropped connections like Resumable.
type rangeReader struct {
	ctx context.Context
	src Source
	obj Object
}

func rangeReaderAt(ctx context.Context, src Source, obj Object) *rangeReader {
	return &rangeReader{ctx: ctx, src: src, obj: obj}
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if r.obj.Size >= 0 && off >= r.obj.Size {
		return 0, io.EOF
	}
	want := int64(len(p))
	if r.obj.Size >= 0 && off+want > r.obj.Size {
		want = r.obj.Size - off
	}
	got := 0
	for attempt := 1; ; attempt++ {
		rc, err := r.src.Open(r.ctx, r.obj, off+int64(got), want-int64(got))
		if err == nil {
			var n int
			n, err = io.ReadFull(rc, p[got:want])
			rc.Close()
			got += n
			if err == nil {
				break
			}
		}
		if r.ctx.Err() != nil || Permanent(err) || attempt > 5 {
			return got, err
		}
		select {
		case <-time.After(Backoff(attempt, 50*time.Millisecond, 2*time.Second)):
		case <-r.ctx.Done():
			return got, r.ctx.Err()
		}
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

func (r *rangeReader) Size() int64 { return r.obj.Size }

func (r *rangeReader) Close() error { return nil }
