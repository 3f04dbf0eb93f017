package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	json "github.com/goccy/go-json"
)

// ReadOptions say how an object's bytes become records.
type ReadOptions struct {
	// Format forces a format (the request's config.format); otherwise the
	// object's own, then its name's, then sniffing.
	Format string
	// MaxRecord bounds one record's size in bytes.
	MaxRecord int
	// Mapping renames top-level fields (input name → canonical input name,
	// for example "prompt" → "question") before validation.
	Mapping map[string]string
	// Attempts bounds reconnections after a dropped connection.
	Attempts int
}

// Counter reports the bytes read from the source so far (compressed bytes,
// as they crossed the wire or left the disk).
type Counter interface{ Take() int64 }

// Formats a request may name.
var Formats = []string{FormatJSONL, FormatJSON, FormatCSV, FormatParquet}

// ObjectFormat decides an object's format.
func ObjectFormat(obj Object, forced string) string {
	if forced != "" {
		return forced
	}
	if obj.Format != "" {
		return obj.Format
	}
	n := strings.ToLower(obj.Name)
	if strings.HasSuffix(n, ".parquet") || strings.HasSuffix(n, ".pq") {
		return FormatParquet
	}
	return FormatFromName(obj.Name)
}

// OpenRecords opens obj and returns a framer of its records and a counter of
// the bytes read. Text formats stream through Resumable (a dropped
// connection resumes at its offset) and the gzip/zstd sniffer; Parquet reads
// ranges.
func OpenRecords(ctx context.Context, src Source, obj Object, opt ReadOptions) (Framer, Counter, func(), error) {
	format := ObjectFormat(obj, opt.Format)
	if format == FormatParquet {
		at, ok := src.(interface {
			OpenAt(context.Context, Object) (ReaderAtCloser, error)
		})
		if !ok || obj.Size < 0 {
			return nil, nil, nil, fmt.Errorf("%w: %s cannot be read as Parquet from this source", ErrConfig, obj.Name)
		}
		ra, err := at.OpenAt(ctx, obj)
		if err != nil {
			return nil, nil, nil, err
		}
		fr, err := NewParquetFramer(ra, obj.Size, opt.MaxRecord)
		if err != nil {
			ra.Close()
			return nil, nil, nil, err
		}
		return mapped(fr, opt.Mapping), &sizeCounter{n: obj.Size}, func() { ra.Close() }, nil
	}
	rs := NewResumable(ctx, src, obj, opt.Attempts)
	cr := &CountingReader{R: rs}
	r, release, err := Decompress(cr)
	if err != nil {
		rs.Close()
		return nil, nil, nil, err
	}
	fr, err := newFramer(r, format, opt.MaxRecord, opt.Mapping)
	if err != nil {
		release()
		rs.Close()
		return nil, nil, nil, err
	}
	if _, isCSV := fr.(*csvFramer); isCSV {
		return fr, cr, func() { release(); rs.Close() }, nil // the header is already mapped
	}
	return mapped(fr, opt.Mapping), cr, func() { release(); rs.Close() }, nil
}

// sizeCounter reports a Parquet file's size once: its reads are ranged and
// out of order, so progress in bytes is counted as the whole file.
type sizeCounter struct{ n int64 }

func (s *sizeCounter) Take() int64 { n := s.n; s.n = 0; return n }

// Each reads every record of obj into fn, stopping at the first error fn or
// the framer returns.
func Each(ctx context.Context, src Source, obj Object, opt ReadOptions, fn func(Item, Counter) error) error {
	fr, cnt, closeFn, err := OpenRecords(ctx, src, obj, opt)
	if err != nil {
		return err
	}
	defer closeFn()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		it, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(it, cnt); err != nil {
			return err
		}
	}
}

type mappingFramer struct {
	Framer
	m map[string]string
}

func mapped(f Framer, m map[string]string) Framer {
	if len(m) == 0 {
		return f
	}
	return &mappingFramer{Framer: f, m: m}
}

func (f *mappingFramer) Next() (Item, error) {
	it, err := f.Framer.Next()
	if err != nil || it.Data == nil {
		return it, err
	}
	it.Data = Rename(it.Data, f.m)
	return it, nil
}

// Rename renames the top-level fields of a JSON object by m. Input that is
// not an object is returned unchanged for validation to reject.
func Rename(data []byte, m map[string]string) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return data
	}
	changed := false
	for from, to := range m {
		v, ok := obj[from]
		if !ok || from == to {
			continue
		}
		delete(obj, from)
		obj[to] = v
		changed = true
	}
	if !changed {
		return data
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return data
	}
	return b
}
