package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"

	"github.com/dspipe/dspipe/internal/gen"
)

// readResult is what `dsctl read` reports.
type readResult struct {
	Format    string
	FileBytes int64
	Records   int64   `json:"records"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	MBPerS    float64 `json:"mb_per_s"`
	RecPerS   float64 `json:"records_per_s"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// TextMBPerS is the decompressed text read per second.
	TextMBPerS float64
}

type benchMsg struct {
	Role    string `json:"role" parquet:"role"`
	Content string `json:"content" parquet:"content"`
}

type benchRow struct {
	ID       string     `json:"id" parquet:"id"`
	Topic    string     `json:"topic" parquet:"topic"`
	Messages []benchMsg `json:"messages" parquet:"messages,list"`
}

// pool is a set of generated conversations the big files cycle through
// (with unique ids), so writing gigabytes does not wait on the generator.
func pool(n int) []benchRow {
	g := gen.New(7)
	out := make([]benchRow, n)
	for i := range out {
		c := g.Next()
		r := benchRow{Topic: c.Topic}
		for _, t := range c.Turns {
			r.Messages = append(r.Messages, benchMsg{Role: t.Role, Content: t.Content})
		}
		out[i] = r
	}
	return out
}

// writeJSONLZst writes about textBytes of JSON lines, zstd-compressed.
func writeJSONLZst(path string, textBytes int64, rows []benchRow) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(zw, 1<<20)
	var n int64
	for i := 0; n < textBytes; i++ {
		r := rows[i%len(rows)]
		r.ID = fmt.Sprintf("c-%d", i)
		b, _ := json.Marshal(r)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return 0, err
		}
		n += int64(len(b))
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return n, zw.Close()
}

// writeParquet writes rows until the file reaches about fileBytes.
func writeParquet(path string, fileBytes int64, rows []benchRow) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cw := &countWriter{w: bufio.NewWriterSize(f, 1<<20)}
	w := parquet.NewGenericWriter[benchRow](cw, parquet.MaxRowsPerRowGroup(20000))
	batch := make([]benchRow, 0, 1000)
	var text int64
	for i := 0; cw.n < fileBytes; i++ {
		r := rows[i%len(rows)]
		r.ID = fmt.Sprintf("c-%d", i)
		for _, m := range r.Messages {
			text += int64(len(m.Content))
		}
		batch = append(batch, r)
		if len(batch) == cap(batch) {
			if _, err := w.Write(batch); err != nil {
				return 0, err
			}
			batch = batch[:0]
		}
	}
	if _, err := w.Write(batch); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return text, cw.w.(*bufio.Writer).Flush()
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readWithDsctl runs `bin/dsctl read` on a file as its own process, so its
// peak RSS is the reader's alone.
func readWithDsctl(dir, path, format string) (readResult, error) {
	cmd := exec.Command("bin/dsctl", "read", "-c", "path="+path)
	cmd.Env = append(os.Environ(), "DSPIPE_LOCAL_ROOTS="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return readResult{}, fmt.Errorf("dsctl read %s: %w", filepath.Base(path), err)
	}
	var r readResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("dsctl read output: %w: %s", err, strings.TrimSpace(string(out)))
	}
	r.Format = format
	if st, err := os.Stat(path); err == nil {
		r.FileBytes = st.Size()
	}
	return r, nil
}

// acquisitionBench writes a 2 GB (of text) JSONL.zst file and a 1 GB
// Parquet file and reads each through the local source.
func acquisitionBench(dir string, jsonlText, parquetBytes int64) ([]readResult, error) {
	rows := pool(20000)
	var out []readResult
	zst := filepath.Join(dir, "big.jsonl.zst")
	fmt.Fprintf(os.Stderr, "writing %.1f GB of JSONL (zstd)...\n", float64(jsonlText)/1e9)
	text, err := writeJSONLZst(zst, jsonlText, rows)
	if err != nil {
		return nil, err
	}
	r, err := readWithDsctl(dir, zst, fmt.Sprintf("JSONL, zstd (%.1f GB of text)", float64(text)/1e9))
	if err != nil {
		return nil, err
	}
	r.TextMBPerS = float64(text) / 1e6 / r.Seconds
	out = append(out, r)
	os.Remove(zst)

	pq := filepath.Join(dir, "big.parquet")
	fmt.Fprintf(os.Stderr, "writing a %.1f GB Parquet file...\n", float64(parquetBytes)/1e9)
	text, err = writeParquet(pq, parquetBytes, rows)
	if err != nil {
		return nil, err
	}
	r, err = readWithDsctl(dir, pq, "Parquet")
	if err != nil {
		return nil, err
	}
	r.TextMBPerS = float64(text) / 1e6 / r.Seconds
	out = append(out, r)
	os.Remove(pq)
	return out, nil
}
