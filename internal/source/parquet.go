package source

import (
	"errors"
	"fmt"
	"io"

	json "github.com/goccy/go-json"
	"github.com/parquet-go/parquet-go"
)

// FormatParquet is Apache Parquet; its records are rows, nested lists of
// structs (a messages column) included.
const FormatParquet = "parquet"

// parquetFramer yields a Parquet file's rows as JSON objects, one row group
// at a time and a batch of rows at a time, so memory is bounded by a page
// buffer and a batch whatever the file's size.
type parquetFramer struct {
	file   *parquet.File
	groups []parquet.RowGroup
	g      int
	rd     *parquet.GenericReader[any]
	batch  []any
	n, i   int
	pos    int64
	max    int
}

// NewParquetFramer opens a Parquet file of the given size.
func NewParquetFramer(r io.ReaderAt, size int64, maxRecord int) (f Framer, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("parquet: unreadable file: %v", p)
		}
	}()
	pf, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	return &parquetFramer{file: pf, groups: pf.RowGroups(), batch: make([]any, 64), max: maxRecord}, nil
}

func (f *parquetFramer) Next() (it Item, err error) {
	defer func() {
		// parquet-go panics on some corrupt inputs; a bad file must not
		// crash the process.
		if p := recover(); p != nil {
			it, err = Item{}, fmt.Errorf("parquet: corrupt data near row %d: %v", f.pos+1, p)
		}
	}()
	for f.i >= f.n {
		if f.rd == nil {
			if f.g >= len(f.groups) {
				return Item{}, io.EOF
			}
			f.rd = parquet.NewGenericRowGroupReader[any](f.groups[f.g])
		}
		clear(f.batch)
		n, err := f.rd.Read(f.batch)
		f.n, f.i = n, 0
		if err != nil && !errors.Is(err, io.EOF) {
			return Item{}, fmt.Errorf("parquet: row group %d: %w", f.g, err)
		}
		if n == 0 {
			_ = f.rd.Close()
			f.rd = nil
			f.g++
		}
	}
	row := f.batch[f.i]
	f.batch[f.i] = nil
	f.i++
	f.pos++
	b, err := json.Marshal(row)
	switch {
	case err != nil:
		return Item{Position: f.pos, Err: "parquet row cannot be represented as JSON"}, nil
	case f.max > 0 && len(b) > f.max:
		return Item{Position: f.pos, Err: fmt.Sprintf("record is %d bytes, over the %d-byte limit", len(b), f.max)}, nil
	}
	return Item{Position: f.pos, Data: b}, nil
}
