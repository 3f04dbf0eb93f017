package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrBomb is returned when a compressed stream expands far beyond any real
// dataset's compression ratio.
var ErrBomb = errors.New("decompressed size exceeds the allowed ratio (possible decompression bomb)")

// Bomb guard: a stream may expand to MaxRatio times its compressed size once
// it has produced more than BombFloor bytes. Conversation text compresses
// about 4-10x; bombs compress about 1000x.
const (
	MaxRatio  = 200
	BombFloor = 64 << 20
)

// Decompress detects gzip and zstd by their magic bytes and returns a reader
// of the decompressed stream (the input itself when not compressed), plus a
// function that releases the decoder.
func Decompress(r io.Reader) (io.Reader, func(), error) {
	counted := &CountingReader{R: r}
	br := bufio.NewReaderSize(counted, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip header: %w", err)
		}
		zr.Multistream(true)
		return &bombGuard{r: zr, compressed: counted}, func() { _ = zr.Close() }, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd header: %w", err)
		}
		return &bombGuard{r: zr, compressed: counted}, zr.Close, nil
	}
	return br, func() {}, nil
}

// CountingReader counts the bytes read through it.
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// Take returns the bytes counted since the last Take.
func (c *CountingReader) Take() int64 { n := c.N; c.N = 0; return n }

type bombGuard struct {
	r          io.Reader
	compressed *CountingReader
	out        int64
}

func (g *bombGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.out += int64(n)
	if g.out > BombFloor && g.out > MaxRatio*g.compressed.N {
		return n, ErrBomb
	}
	return n, err
}

// ErrNotAllowed is returned for a local path outside the allowed roots.
var ErrNotAllowed = errors.New("path is outside the allowed local roots")

// CheckLocalPath refuses a local source path that names no file under
// roots, by its text alone: empty, with '..', or outside every root. The
// file system is not asked, so the API can check a request at submission
// and the answer is the same whether the path exists or not. (LocalFiles
// checks again, symlinks resolved, when the source is read.)
func CheckLocalPath(path string, roots []string) error {
	if path == "" {
		return errors.New("local source needs config.path")
	}
	if strings.Contains(filepath.ToSlash(path), "../") || strings.HasSuffix(path, "..") {
		return fmt.Errorf("%w: '..' is not allowed", ErrNotAllowed)
	}
	if abs, err := filepath.Abs(path); err != nil || !withinNamed(abs, roots) {
		return fmt.Errorf("%w: %s", ErrNotAllowed, path)
	}
	return nil
}

// LocalFiles resolves a local source path (a file, a directory, or a glob)
// to the sorted list of files it names, each confined to one of roots after
// resolving symlinks.
func LocalFiles(path string, roots []string) ([]string, error) {
	if err := CheckLocalPath(path, roots); err != nil {
		return nil, err
	}
	var candidates []string
	if strings.ContainsAny(path, "*?[") {
		m, err := filepath.Glob(path)
		if err != nil {
			return nil, fmt.Errorf("bad glob: %w", err)
		}
		candidates = m
	} else {
		st, err := os.Stat(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: local path %s", ErrNotFound, path)
			}
			return nil, err
		}
		if st.IsDir() {
			ents, err := os.ReadDir(path)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
					candidates = append(candidates, filepath.Join(path, e.Name()))
				}
			}
		} else {
			candidates = []string{path}
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: local path %s matches no files", ErrNotFound, path)
	}
	var out []string
	for _, c := range candidates {
		real, err := filepath.EvalSymlinks(c)
		if err != nil {
			return nil, err
		}
		real, _ = filepath.Abs(real)
		if !within(real, roots) {
			return nil, fmt.Errorf("%w: %s", ErrNotAllowed, c)
		}
		// A FIFO, device or socket would block or never end: only
		// regular files are read.
		if st, err := os.Stat(real); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotAllowed, c)
		}
		out = append(out, real)
	}
	sort.Strings(out)
	return out, nil
}

// withinNamed reports whether p lies under one of roots by name, the roots
// taken as configured or with their links resolved.
func withinNamed(p string, roots []string) bool {
	p = filepath.Clean(p)
	for _, r := range roots {
		for _, rr := range []string{r, evalOr(r)} {
			rr = filepath.Clean(rr)
			if p == rr || strings.HasPrefix(p, rr+string(filepath.Separator)) {
				return true
			}
		}
	}
	return false
}

// LocalURI names a local file in provenance without the machine's
// directories: "local:" and its path relative to the allowed root that
// holds it ("local:exports/chats.jsonl"). Outputs, rejected files and
// events carry it; an absolute path would carry the host's layout and
// often a user name.
func LocalURI(path string, roots []string) string {
	p := filepath.Clean(path)
	best := ""
	for _, r := range roots {
		for _, rr := range []string{r, evalOr(r)} {
			rr = filepath.Clean(rr)
			if rel, err := filepath.Rel(rr, p); err == nil && rel != "." && !strings.HasPrefix(rel, "..") && (best == "" || len(rel) < len(best)) {
				best = rel
			}
		}
	}
	if best == "" {
		best = filepath.Base(p)
	}
	return "local:" + filepath.ToSlash(best)
}

func evalOr(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func within(p string, roots []string) bool {
	for _, r := range roots {
		rr, err := filepath.EvalSymlinks(r)
		if err != nil {
			continue
		}
		rr, _ = filepath.Abs(rr)
		if p == rr || strings.HasPrefix(p, rr+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// FormatFromName returns the format named by a file extension, ignoring
// compression suffixes; auto when the extension says nothing certain.
func FormatFromName(name string) string {
	n := strings.ToLower(name)
	for _, s := range []string{".gz", ".zst", ".zstd"} {
		n = strings.TrimSuffix(n, s)
	}
	switch {
	case strings.HasSuffix(n, ".jsonl"), strings.HasSuffix(n, ".ndjson"):
		return FormatJSONL
	case strings.HasSuffix(n, ".csv"):
		return FormatCSV
	}
	// .json files are JSON arrays or, often, JSON lines: sniff.
	return FormatAuto
}
