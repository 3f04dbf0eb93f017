package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
)

// frameAll reads every item; the error is the one that stopped the stream.
func frameAll(t *testing.T, data []byte, format string, max int) ([]Item, error) {
	t.Helper()
	r, release, err := Decompress(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer release()
	f, err := NewFramer(r, format, max)
	if err != nil {
		return nil, err
	}
	var items []Item
	for {
		it, err := f.Next()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
}

func TestJSONLFramesLinesWithLineNumbers(t *testing.T) {
	t.Parallel()
	items, err := frameAll(t, []byte("{\"a\":1}\n\n  {\"b\":2}  \r\n{\"c\":3}"), FormatAuto, 1024)
	require.NoError(t, err)
	require.Len(t, items, 3)
	require.Equal(t, []int64{1, 3, 4}, []int64{items[0].Position, items[1].Position, items[2].Position})
	require.Equal(t, `{"b":2}`, string(items[1].Data))
}

func TestOversizedLineIsRejectedAndTheRestKept(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 50<<20) // a 50 MB line
	items, err := frameAll(t, []byte("{\"a\":1}\n"+big+"\n{\"c\":3}\n"), FormatJSONL, 1<<20)
	require.NoError(t, err)
	require.Len(t, items, 3)
	require.Contains(t, items[1].Err, "exceeds")
	require.Nil(t, items[1].Data)
	require.Equal(t, int64(2), items[1].Position)
	require.Equal(t, `{"c":3}`, string(items[2].Data))
}

func TestJSONArrayElementsAndTruncation(t *testing.T) {
	t.Parallel()
	items, err := frameAll(t, []byte(` [ {"a":"x]},"}, {"b":[1,2]} ,3 ] `), FormatAuto, 1024)
	require.NoError(t, err)
	require.Len(t, items, 3)
	require.Equal(t, `{"a":"x]},"}`, string(items[0].Data))
	require.Equal(t, `{"b":[1,2]}`, string(items[1].Data))
	require.Equal(t, `3`, string(items[2].Data))

	items, err = frameAll(t, []byte(`[{"a":1},{"b":`), FormatJSON, 1024)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Contains(t, items[1].Err, "truncated")
}

func TestEmptyFileYieldsNothing(t *testing.T) {
	t.Parallel()
	items, err := frameAll(t, nil, FormatAuto, 1024)
	require.NoError(t, err)
	require.Empty(t, items)
}

func TestCSVMapsHeaderAndRejectsBadRows(t *testing.T) {
	t.Parallel()
	in := "questionText,answerText,topic\n\"multi\nline\",fine,a\nonly-two,fields\n\"ok\",\"yes\",b\n"
	items, err := frameAll(t, []byte(in), FormatCSV, 1024)
	require.NoError(t, err)
	require.Len(t, items, 3)
	require.JSONEq(t, `{"questionText":"multi\nline","answerText":"fine","topic":"a"}`, string(items[0].Data))
	require.Contains(t, items[1].Err, "2 fields")
	require.Equal(t, int64(2), items[1].Position)
}

func TestCSVWithWrongColumnsFailsWithTheColumnsFound(t *testing.T) {
	t.Parallel()
	_, err := frameAll(t, []byte("foo,bar\n1,2\n"), FormatCSV, 1024)
	require.ErrorContains(t, err, "none of the expected columns")
	require.ErrorContains(t, err, "foo, bar")
}

func TestCompressionDetectedByMagicBytes(t *testing.T) {
	t.Parallel()
	plain := []byte("{\"a\":1}\n{\"a\":2}\n")
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write(plain)
	require.NoError(t, gw.Close())
	zw, _ := zstd.NewWriter(&zs)
	_, _ = zw.Write(plain)
	require.NoError(t, zw.Close())
	for name, data := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		items, err := frameAll(t, data, FormatAuto, 1024)
		require.NoError(t, err, name)
		require.Len(t, items, 2, name)
	}
}

func TestGzipBombIsStopped(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 1024; i++ { // 1 GiB of zeros compresses to about 1 MB
		_, _ = gw.Write(zeros)
	}
	require.NoError(t, gw.Close())
	_, err := frameAll(t, gz.Bytes(), FormatJSONL, 1<<20)
	require.ErrorIs(t, err, ErrBomb)
}

func TestLocalFilesConfinedToRoots(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.jsonl"), []byte("{}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.jsonl"), []byte("{}\n"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.jsonl"), filepath.Join(root, "link.jsonl")))

	files, err := LocalFiles(filepath.Join(root, "a.jsonl"), []string{root})
	require.NoError(t, err)
	require.Len(t, files, 1)
	_, err = LocalFiles(filepath.Join(root, "link.jsonl"), []string{root})
	require.ErrorIs(t, err, ErrNotAllowed, "a symlink out of the root is refused")
	_, err = LocalFiles(root+"/../x", []string{root})
	require.ErrorIs(t, err, ErrNotAllowed)
	_, err = LocalFiles(filepath.Join(outside, "secret.jsonl"), []string{root})
	require.ErrorIs(t, err, ErrNotAllowed)
	_, err = LocalFiles(filepath.Join(root, "missing.jsonl"), []string{root})
	require.ErrorContains(t, err, "not found")
}

// TestOutsideTheRootsExistingAndMissingAnswerAlike: the refusal of a path
// outside the roots says nothing about whether it exists.
func TestOutsideTheRootsExistingAndMissingAnswerAlike(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "there.jsonl"), []byte("{}\n"), 0o600))
	_, errThere := LocalFiles(filepath.Join(outside, "there.jsonl"), []string{root})
	_, errMissing := LocalFiles(filepath.Join(outside, "missing.jsonl"), []string{root})
	require.ErrorIs(t, errThere, ErrNotAllowed)
	require.ErrorIs(t, errMissing, ErrNotAllowed)
	strip := func(err error) string { return strings.ReplaceAll(err.Error(), "missing.jsonl", "there.jsonl") }
	require.Equal(t, strip(errThere), strip(errMissing))
	_, errDir := LocalFiles(filepath.Join(outside, "nodir", "x.jsonl"), []string{root})
	require.ErrorIs(t, errDir, ErrNotAllowed)
}

// TestAFIFOIsRefusedNotRead: a named pipe given as a local source would
// block ingest for ever; anything but a regular file is refused at once.
func TestAFIFOIsRefusedNotRead(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fifo := filepath.Join(root, "pipe.jsonl")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() {
		_, err := LocalFiles(fifo, []string{root})
		if err == nil {
			l := &Local{Path: fifo, Roots: []string{root}}
			var rc io.ReadCloser
			if rc, err = l.Open(context.Background(), Object{Name: fifo}, 0, -1); err == nil {
				rc.Close()
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrNotAllowed)
		require.ErrorContains(t, err, "not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("a FIFO blocked the source")
	}
	_, err := LocalFiles(root, []string{root})
	require.Error(t, err, "a directory's FIFOs are skipped; with nothing else it holds no files")
}

func FuzzFramers(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":"), "jsonl")
	f.Add([]byte(`[{"a":"\"]"},{`), "json")
	f.Add([]byte("question,answer\n\"a\",b\nc"), "csv")
	f.Add([]byte{0x1f, 0x8b, 0, 0}, "")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		if format != FormatJSONL && format != FormatJSON && format != FormatCSV {
			format = FormatAuto
		}
		r, release, err := Decompress(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer release()
		fr, err := NewFramer(r, format, 256)
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			it, err := fr.Next()
			if err != nil {
				return
			}
			if len(it.Data) > 256+64<<10 {
				t.Fatalf("item of %d bytes exceeds the bound", len(it.Data))
			}
			if it.Err == "" && it.Position <= 0 {
				t.Fatalf("item without a position")
			}
		}
	})
}

type fuzzMsg struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type fuzzRow struct {
	ID       string    `parquet:"id"`
	Messages []fuzzMsg `parquet:"messages,list"`
}

// FuzzParquet feeds arbitrary bytes to the Parquet framer: it may refuse
// them, but must never panic or hang.
func FuzzParquet(f *testing.F) {
	var b bytes.Buffer
	w := parquet.NewGenericWriter[fuzzRow](&b)
	_, _ = w.Write([]fuzzRow{{ID: "a", Messages: []fuzzMsg{{"user", "hi"}, {"assistant", "hello"}}}, {ID: "b"}})
	_ = w.Close()
	f.Add(b.Bytes())
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := NewParquetFramer(bytes.NewReader(data), int64(len(data)), 1<<20)
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			if _, err := fr.Next(); err != nil {
				return
			}
		}
	})
}

func TestLocalURIHasNoMachinePath(t *testing.T) {
	root := t.TempDir()
	require.Equal(t, "local:a/b.jsonl", LocalURI(filepath.Join(root, "a", "b.jsonl"), []string{root}))
	require.Equal(t, "local:b.jsonl", LocalURI("/elsewhere/b.jsonl", []string{root}), "outside every root: the file name only")
}
