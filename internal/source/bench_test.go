package source

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
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
