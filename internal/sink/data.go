package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/gzip"
	pzstd "github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/stage"
)

// Data formats accepted in a request.
const (
	FormatJSONL   = "jsonl"
	FormatCSV     = "csv"
	FormatParquet = "parquet"
)

// Formats lists the data formats.
var Formats = []string{FormatJSONL, FormatCSV, FormatParquet}

// CSVHeader is the first row of a CSV data file: the record's scalar
// fields, then its messages, metadata, annotations and lineage as JSON.
var CSVHeader = []string{"id", "source_name", "source_type", "source_uri", "source_priority", "source_position", "messages", "metadata", "annotations", "lineage"}

// ParquetMessage is one message of a Parquet row.
type ParquetMessage struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

// ParquetRow is one record in a Parquet data file: scalar fields as
// columns, messages as a list of (role, content), metadata, annotations
// and lineage as JSON text.
type ParquetRow struct {
	ID             string           `parquet:"id"`
	SourceName     string           `parquet:"source_name"`
	SourceType     string           `parquet:"source_type"`
	SourceURI      string           `parquet:"source_uri"`
	SourcePriority int32            `parquet:"source_priority"`
	SourcePosition int64            `parquet:"source_position"`
	Messages       []ParquetMessage `parquet:"messages,list"`
	Metadata       string           `parquet:"metadata"`
	Annotations    string           `parquet:"annotations"`
	Lineage        string           `parquet:"lineage"`
}

// DataWriter writes an output's data files: every requested format, each
// split into shards when ShardBytes is set. Records come in as encoded
// canonical records, in the order they are to appear.
type DataWriter struct {
	dir, comp  string
	base       string // file name stem: "data", or "data-<split>"
	formats    []string
	shardBytes int64
	shard      int
	inShard    int64
	open       []recordFile
	files      []events.OutputFile
	records    int64
}

// Records is how many records were written (to each format).
func (d *DataWriter) Records() int64 { return d.records }

type recordFile interface {
	write(line []byte, rec *stage.Record) error
	close() (events.OutputFile, error)
	abort()
}

// NewDataWriter prepares the data files in dir. shardBytes 0 writes one
// file per format; above 0, a new shard starts once a shard holds that
// many bytes of records (as JSON, before compression).
func NewDataWriter(dir string, formats []string, compression string, shardBytes int64) *DataWriter {
	return &DataWriter{dir: dir, comp: compression, formats: formats, shardBytes: shardBytes, base: "data"}
}

func (d *DataWriter) name(format string) string {
	base := d.base
	if d.shardBytes > 0 {
		base = fmt.Sprintf("%s-%05d", d.base, d.shard)
	}
	switch format {
	case FormatParquet:
		return base + ".parquet"
	case FormatCSV:
		return base + ".csv" + Extension(d.comp)
	}
	return base + ".jsonl" + Extension(d.comp)
}

func (d *DataWriter) openShard() error {
	for _, f := range d.formats {
		var rf recordFile
		var err error
		switch f {
		case FormatJSONL:
			var lf *LineFile
			lf, err = Create(d.dir, d.name(f), d.comp)
			rf = jsonlFile{lf}
		case FormatCSV:
			rf, err = newCSVFile(d.dir, d.name(f), d.comp)
		case FormatParquet:
			rf, err = newParquetFile(d.dir, d.name(f), d.comp)
		default:
			err = fmt.Errorf("sink: unknown format %q", f)
		}
		if err != nil {
			d.Abort()
			return err
		}
		d.open = append(d.open, rf)
	}
	return nil
}

// Write adds one encoded canonical record to every format.
func (d *DataWriter) Write(line []byte) error {
	if d.open == nil {
		if err := d.openShard(); err != nil {
			return err
		}
	}
	var rec *stage.Record
	for _, f := range d.formats {
		if f != FormatJSONL {
			rec = &stage.Record{}
			if err := json.Unmarshal(line, rec); err != nil {
				return fmt.Errorf("sink: a staged record is not a canonical record: %w", err)
			}
			break
		}
	}
	for _, f := range d.open {
		if err := f.write(line, rec); err != nil {
			return err
		}
	}
	d.records++
	d.inShard += int64(len(line)) + 1
	if d.shardBytes > 0 && d.inShard >= d.shardBytes {
		if err := d.closeShard(); err != nil {
			return err
		}
	}
	return nil
}

func (d *DataWriter) closeShard() error {
	for i, f := range d.open {
		of, err := f.close()
		if err != nil {
			for _, g := range d.open[i+1:] {
				g.abort()
			}
			d.open = nil
			return err
		}
		d.files = append(d.files, of)
	}
	d.open = nil
	d.shard++
	d.inShard = 0
	return nil
}

// Close finishes the last shard and describes every data file. An output
// with no records still has one (empty) file per format.
func (d *DataWriter) Close() ([]events.OutputFile, error) {
	if d.open == nil && len(d.files) == 0 {
		if err := d.openShard(); err != nil {
			return nil, err
		}
	}
	if d.open != nil {
		if err := d.closeShard(); err != nil {
			return nil, err
		}
	}
	return d.files, nil
}

// Abort removes what was written.
func (d *DataWriter) Abort() {
	for _, f := range d.open {
		f.abort()
	}
	d.open = nil
	for _, f := range d.files {
		os.Remove(filepath.Join(d.dir, f.Name))
	}
}

type jsonlFile struct{ *LineFile }

func (j jsonlFile) write(line []byte, _ *stage.Record) error { return j.WriteLine(line) }
func (j jsonlFile) close() (events.OutputFile, error)        { return j.Close() }
func (j jsonlFile) abort()                                   { j.Abort() }

type csvFile struct {
	lf  *LineFile
	buf bytes.Buffer
	w   *csv.Writer
}

func newCSVFile(dir, name, comp string) (*csvFile, error) {
	lf, err := Create(dir, name, comp)
	if err != nil {
		return nil, err
	}
	c := &csvFile{lf: lf}
	c.w = csv.NewWriter(&c.buf)
	if err := c.row(CSVHeader); err != nil {
		lf.Abort()
		return nil, err
	}
	lf.records = 0 // the header is not a record
	return c, nil
}

func (c *csvFile) row(fields []string) error {
	c.buf.Reset()
	if err := c.w.Write(fields); err != nil {
		return err
	}
	c.w.Flush()
	return c.lf.WriteLine(bytes.TrimSuffix(c.buf.Bytes(), []byte("\n")))
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (c *csvFile) write(_ []byte, r *stage.Record) error {
	return c.row([]string{r.ID, r.Source.Name, r.Source.Type, r.Source.URI, fmt.Sprint(r.Source.Priority), fmt.Sprint(r.Source.Position),
		jsonText(r.Messages), jsonText(r.Metadata), jsonText(r.Annotations), jsonText(r.Lineage)})
}
func (c *csvFile) close() (events.OutputFile, error) { return c.lf.Close() }
func (c *csvFile) abort()                            { c.lf.Abort() }

// hashedFile counts and hashes what is written to a file.
type hashedFile struct {
	name string
	f    *os.File
	h    io.Writer
	sum  func() []byte
	n    int64
}

func (h *hashedFile) Write(p []byte) (int, error) {
	n, err := h.f.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

type parquetFile struct {
	out     *hashedFile
	w       *parquet.GenericWriter[ParquetRow]
	records int64
	row     [1]ParquetRow
}

func newParquetFile(dir, name, comp string) (*parquetFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("sink: create %s: %w", name, err)
	}
	sh := sha256.New()
	hf := &hashedFile{name: name, f: f, h: sh, sum: func() []byte { return sh.Sum(nil) }}
	opts := []parquet.WriterOption{parquet.MaxRowsPerRowGroup(20000), parquet.CreatedBy("dspipe", "1", "")}
	switch comp {
	case CompressZstd:
		opts = append(opts, parquet.Compression(&pzstd.Codec{}))
	case CompressGzip:
		opts = append(opts, parquet.Compression(&gzip.Codec{}))
	}
	return &parquetFile{out: hf, w: parquet.NewGenericWriter[ParquetRow](hf, opts...)}, nil
}

func (p *parquetFile) write(_ []byte, r *stage.Record) error {
	row := &p.row[0]
	*row = ParquetRow{ID: r.ID, SourceName: r.Source.Name, SourceType: r.Source.Type, SourceURI: r.Source.URI,
		SourcePriority: int32(r.Source.Priority), SourcePosition: r.Source.Position,
		Metadata: jsonText(r.Metadata), Annotations: jsonText(r.Annotations), Lineage: jsonText(r.Lineage)}
	row.Messages = row.Messages[:0]
	for _, m := range r.Messages {
		row.Messages = append(row.Messages, ParquetMessage{Role: m.Role, Content: m.Content})
	}
	if _, err := p.w.Write(p.row[:]); err != nil {
		return fmt.Errorf("sink: write %s: %w", p.out.name, err)
	}
	p.records++
	return nil
}

func (p *parquetFile) close() (events.OutputFile, error) {
	if err := p.w.Close(); err != nil {
		p.abort()
		return events.OutputFile{}, fmt.Errorf("sink: close %s: %w", p.out.name, err)
	}
	if err := p.out.f.Sync(); err != nil {
		p.out.f.Close()
		return events.OutputFile{}, err
	}
	if err := p.out.f.Close(); err != nil {
		return events.OutputFile{}, err
	}
	return events.OutputFile{Name: p.out.name, Records: p.records, Bytes: p.out.n, SHA256: hex.EncodeToString(p.out.sum())}, nil
}

func (p *parquetFile) abort() {
	p.out.f.Close()
	os.Remove(p.out.f.Name())
}

// IsData reports whether an output file name is a data file.
func IsData(name string) bool {
	return strings.HasPrefix(name, "data.") || strings.HasPrefix(name, "data-")
}
