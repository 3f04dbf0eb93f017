package source

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// BenchmarkFramerJSONL measures framing throughput on 1 KiB lines.
func BenchmarkFramerJSONL(b *testing.B) {
	line := `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 200) + `"}]}` + "\n"
	data := bytes.Repeat([]byte(line), 4096)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		f, err := NewFramer(bytes.NewReader(data), FormatJSONL, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := f.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFramerParquet measures Parquet rows (a nested messages list)
// becoming JSON records; bytes are the file's.
func BenchmarkFramerParquet(b *testing.B) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[fuzzRow](&buf, parquet.MaxRowsPerRowGroup(2000))
	rows := make([]fuzzRow, 8192)
	for i := range rows {
		rows[i] = fuzzRow{ID: "c-" + strings.Repeat("x", i%7), Messages: []fuzzMsg{
			{"user", strings.Repeat("I have been feeling low and cannot sleep. ", 5)},
			{"assistant", strings.Repeat("That sounds hard; a steady routine can help. ", 5)},
		}}
	}
	if _, err := w.Write(rows); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := NewParquetFramer(bytes.NewReader(data), int64(len(data)), 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			if _, err := f.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(rows) {
			b.Fatalf("%d rows, want %d", n, len(rows))
		}
	}
}
