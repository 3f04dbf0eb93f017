// Package source implements stage 1, acquisition: opening a source, detecting
// compression by magic bytes, and framing the byte stream into records
// (JSONL, JSON array, CSV) with bounded memory. A record that cannot be
// framed becomes an Item with a reason instead of stopping the source.
package source

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Item is one framed record, or the reason a record could not be framed.
type Item struct {
	// Position is the 1-based line (JSONL), element (JSON array) or data row
	// (CSV) in its file.
	Position int64
	Data     []byte
	// Err is set when the record is unusable; Data is then nil.
	Err string
}

// Framer yields the records of one file. Next returns io.EOF at the end and
// any other error when the stream cannot continue.
type Framer interface {
	Next() (Item, error)
}

// Formats recognised by NewFramer.
const (
	FormatAuto  = ""
	FormatJSONL = "jsonl"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// NewFramer sniffs the first non-space byte when format is auto: '[' is a
// JSON array, '{' JSON lines, anything else CSV.
func NewFramer(r io.Reader, format string, maxRecord int) (Framer, error) {
	return newFramer(r, format, maxRecord, nil)
}

// newFramer is NewFramer with CSV header names renamed by mapping first.
func newFramer(r io.Reader, format string, maxRecord int, mapping map[string]string) (Framer, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if format == FormatAuto {
		format = sniff(br)
	}
	switch format {
	case FormatJSONL:
		return &jsonlFramer{r: br, max: maxRecord}, nil
	case FormatJSON:
		return &arrayFramer{r: br, max: maxRecord}, nil
	case FormatCSV:
		return newCSVFramer(br, maxRecord, mapping)
	}
	return nil, fmt.Errorf("%w: unknown format %q (use jsonl, json, csv or parquet)", ErrConfig, format)
}

func sniff(br *bufio.Reader) string {
	for i := 1; i <= 4096; i++ {
		b, err := br.Peek(i)
		if err != nil {
			return FormatJSONL // empty or tiny: JSONL yields nothing or a clear rejection
		}
		switch c := b[i-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		case 0xEF, 0xBB, 0xBF: // UTF-8 byte order mark
			continue
		case '[':
			return FormatJSON
		case '{':
			return FormatJSONL
		default:
			return FormatCSV
		}
	}
	return FormatCSV
}

type jsonlFramer struct {
	r    *bufio.Reader
	max  int
	line int64
	buf  []byte
}

func (f *jsonlFramer) Next() (Item, error) {
	for {
		f.buf = f.buf[:0]
		over := false
		for {
			chunk, err := f.r.ReadSlice('\n')
			if !over {
				if len(f.buf)+len(chunk) > f.max+1 { // +1 for the newline
					over = true
					f.buf = f.buf[:0]
				} else {
					f.buf = append(f.buf, chunk...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return Item{}, err
			}
			if len(chunk) == 0 && errors.Is(err, io.EOF) && len(f.buf) == 0 && !over {
				return Item{}, io.EOF
			}
			break
		}
		f.line++
		if over {
			return Item{Position: f.line, Err: fmt.Sprintf("line exceeds the %d-byte record limit", f.max)}, nil
		}
		line := bytes.TrimSpace(f.buf)
		if f.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			continue
		}
		return Item{Position: f.line, Data: append([]byte(nil), line...)}, nil
	}
}

// arrayFramer splits a top-level JSON array into its elements with a small
// state machine, so an element's size, not the file's, bounds memory.
type arrayFramer struct {
	r       *bufio.Reader
	max     int
	started bool
	done    bool
	elem    int64
}

func (f *arrayFramer) Next() (Item, error) {
	if f.done {
		return Item{}, io.EOF
	}
	if !f.started {
		if err := f.skipTo('['); err != nil {
			return Item{}, err
		}
		f.started = true
	}
	// Skip separators up to the element or the closing bracket.
seek:
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			f.done = true
			return Item{}, fmt.Errorf("truncated JSON array after element %d", f.elem)
		}
		switch c {
		case ' ', '\t', '\r', '\n', ',':
			continue
		case ']':
			f.done = true
			return Item{}, io.EOF
		}
		_ = f.r.UnreadByte()
		break seek
	}
	f.elem++
	var buf []byte
	depth, inStr, esc, over := 0, false, false, false
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			f.done = true
			return Item{Position: f.elem, Err: "truncated JSON: the file ends inside this element"}, nil
		}
		if !over {
			if len(buf) >= f.max {
				over, buf = true, nil
			} else {
				buf = append(buf, c)
			}
		}
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 { // a closing bracket of the outer array: a bare scalar ended
				_ = f.r.UnreadByte()
				if !over {
					buf = buf[:len(buf)-1]
				}
				return f.item(buf, over), nil
			}
			if depth == 0 {
				return f.item(buf, over), nil
			}
		case ',':
			if depth == 0 {
				if !over {
					buf = buf[:len(buf)-1]
				}
				return f.item(buf, over), nil
			}
		}
	}
}

func (f *arrayFramer) item(buf []byte, over bool) Item {
	if over {
		return Item{Position: f.elem, Err: fmt.Sprintf("element exceeds the %d-byte record limit", f.max)}
	}
	return Item{Position: f.elem, Data: bytes.TrimSpace(buf)}
}

func (f *arrayFramer) skipTo(want byte) error {
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return fmt.Errorf("expected a JSON array: %w", io.ErrUnexpectedEOF)
		}
		if c == want {
			return nil
		}
	}
}

// knownColumns are the CSV headers standardization understands.
var knownColumns = map[string]bool{
	"question": true, "answer": true, "questiontext": true, "answertext": true, "questiontitle": true,
	"instruction": true, "output": true, "text": true,
}

type csvFramer struct {
	cr     *csv.Reader
	guard  *guard
	header []string
	row    int64
}

// guard fails a read once a single CSV record has consumed more than max
// bytes, so one unterminated quote cannot buffer a whole file.
type guard struct {
	r     io.Reader
	max   int
	since int
}

var errRecordTooLarge = errors.New("record too large")

func (g *guard) Read(p []byte) (int, error) {
	if g.since > g.max {
		return 0, errRecordTooLarge
	}
	n, err := g.r.Read(p)
	g.since += n
	return n, err
}

// emptyFramer is a file with no records.
type emptyFramer struct{}

func (emptyFramer) Next() (Item, error) { return Item{}, io.EOF }

func newCSVFramer(r io.Reader, max int, mapping map[string]string) (Framer, error) {
	g := &guard{r: r, max: max + 64<<10}
	cr := csv.NewReader(g)
	cr.ReuseRecord = false
	cr.LazyQuotes = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return emptyFramer{}, nil // an empty file holds no records
	}
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\xEF\xBB\xBF")
	}
	for i, h := range header {
		if to, ok := mapping[strings.TrimSpace(h)]; ok {
			header[i] = to
		}
	}
	found := false
	for _, h := range header {
		if knownColumns[strings.ToLower(strings.TrimSpace(h))] {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: CSV header has none of the expected columns (question/answer, questionText/answerText, instruction/output, text; map others with the source's mapping); found %d columns: %s",
			ErrConfig, len(header), strings.Join(trimAll(header, 20), ", "))
	}
	cr.FieldsPerRecord = len(header)
	return &csvFramer{cr: cr, guard: g, header: header}, nil
}

func trimAll(ss []string, n int) []string {
	if len(ss) > n {
		ss = ss[:n]
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		out[i] = s
	}
	return out
}

func (f *csvFramer) Next() (Item, error) {
	f.guard.since = 0
	rec, err := f.cr.Read()
	if errors.Is(err, io.EOF) {
		return Item{}, io.EOF
	}
	f.row++
	if errors.Is(err, errRecordTooLarge) {
		return Item{}, fmt.Errorf("CSV row %d exceeds the %d-byte record limit; the rest of the file cannot be framed", f.row, f.guard.max)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return Item{Position: f.row, Err: fmt.Sprintf("CSV row has %d fields, header has %d", len(rec), len(f.header))}, nil
		}
		return Item{Position: f.row, Err: "CSV parse error: " + pe.Err.Error()}, nil
	}
	if err != nil {
		return Item{}, err
	}
	for _, v := range rec {
		if !utf8.ValidString(v) {
			return Item{Position: f.row, Err: "not valid UTF-8"}, nil
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, h := range f.header {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(h)
		v, _ := json.Marshal(rec[i])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return Item{Position: f.row, Data: b.Bytes()}, nil
}
