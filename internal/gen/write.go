package gen

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Formats the generator writes.
var Formats = []string{"chatml", "sharegpt", "esconv", "alpaca", "qa"}

// Options configure a generated dataset.
type Options struct {
	Dir         string
	Records     int
	Sources     int
	Format      string // one of Formats, or "mixed": source i gets Formats[i%5]
	Compression string // none, gzip, zstd
	Seed        uint64
	DupRate     float64 // share of records that are exact copies of an earlier one in another source
	NearDupRate float64 // share that are near copies
	Skew        string  // see Generator.Skew
	// Array writes JSON formats as one JSON array per file (.json) instead
	// of JSON lines.
	Array bool
	// MaxTurns cuts every conversation to at most this many turns (0: as
	// generated); see Generator.MaxTurns.
	MaxTurns int
}

// Summary describes what was written.
type Summary struct {
	Files   []string `json:"files"`
	Records int      `json:"records"`
	Truth   string   `json:"truth"`
}

type sourceFile struct {
	path   string
	format string
	f      *os.File
	comp   io.WriteCloser
	w      *bufio.Writer
	csv    *csv.Writer
	n      int64
	array  bool
}

// Write generates the dataset, streaming: memory does not grow with Records.
func Write(o Options) (Summary, error) {
	if o.Sources < 1 {
		o.Sources = 1
	}
	if o.Format == "" {
		o.Format = "chatml"
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Summary{}, err
	}
	g := New(o.Seed)
	g.Skew, g.MaxTurns = o.Skew, o.MaxTurns
	var files []*sourceFile
	var sum Summary
	for i := 0; i < o.Sources; i++ {
		format := o.Format
		if format == "mixed" {
			format = Formats[i%len(Formats)]
		}
		sf, err := openSource(o.Dir, i, format, o.Compression, o.Array && format != "qa")
		if err != nil {
			return sum, err
		}
		files = append(files, sf)
		sum.Files = append(sum.Files, sf.path)
	}
	tf, err := os.Create(filepath.Join(o.Dir, "truth.jsonl"))
	if err != nil {
		return sum, err
	}
	defer tf.Close()
	tw := bufio.NewWriter(tf)
	te := json.NewEncoder(tw)
	sum.Truth = tf.Name()

	// recent holds originals (with their source) that later records copy, so
	// memory stays bounded however many records are generated.
	type original struct {
		c   Conversation
		src int
	}
	const ring = 512
	recent := make([]original, 0, ring)
	for i := 0; i < o.Records; i++ {
		src := i % o.Sources
		var c Conversation
		r := g.rng.Float64()
		copyFrom := func() Conversation {
			orig := recent[g.rng.IntN(len(recent))]
			// A planted duplicate always lands in another source than its original.
			src = (orig.src + 1 + g.rng.IntN(o.Sources-1)) % o.Sources
			return orig.c
		}
		switch {
		case len(recent) > 0 && o.Sources > 1 && r < o.DupRate:
			orig := copyFrom()
			c = orig
			c.Truth.DuplicateOf, c.Truth.ID = orig.Truth.ID, fmt.Sprintf("gen-dup-%d", i)
		case len(recent) > 0 && o.Sources > 1 && r < o.DupRate+o.NearDupRate:
			orig := copyFrom()
			c = g.NearDuplicate(orig)
			c.Truth.NearDupOf, c.Truth.ID = orig.Truth.ID, fmt.Sprintf("gen-near-%d", i)
		default:
			c = g.Next()
			if len(recent) < ring {
				recent = append(recent, original{c, src})
			} else {
				recent[g.rng.IntN(ring)] = original{c, src}
			}
		}
		sf := files[src]
		sf.n++
		c.Truth.Source, c.Truth.Position = fmt.Sprintf("source-%d", src+1), sf.n
		if err := sf.write(c); err != nil {
			return sum, err
		}
		if err := te.Encode(c.Truth); err != nil {
			return sum, err
		}
		sum.Records++
	}
	for _, sf := range files {
		if err := sf.close(); err != nil {
			return sum, err
		}
	}
	return sum, tw.Flush()
}

func openSource(dir string, i int, format, compression string, array bool) (*sourceFile, error) {
	ext := ".jsonl"
	if array {
		ext = ".json"
	}
	if format == "qa" {
		ext = ".csv"
	}
	switch compression {
	case "gzip":
		ext += ".gz"
	case "zstd":
		ext += ".zst"
	}
	path := filepath.Join(dir, fmt.Sprintf("source-%d-%s%s", i+1, format, ext))
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	sf := &sourceFile{path: path, format: format, f: f, array: array}
	var w io.Writer = f
	switch compression {
	case "gzip":
		sf.comp = gzip.NewWriter(f)
		w = sf.comp
	case "zstd":
		zw, err := zstd.NewWriter(f)
		if err != nil {
			return nil, err
		}
		sf.comp, w = zw, zw
	}
	sf.w = bufio.NewWriterSize(w, 256<<10)
	if format == "qa" {
		sf.csv = csv.NewWriter(sf.w)
		if err := sf.csv.Write([]string{"questionID", "questionTitle", "questionText", "answerText", "topic"}); err != nil {
			return nil, err
		}
	}
	return sf, nil
}

func (sf *sourceFile) write(c Conversation) error {
	var v any
	switch sf.format {
	case "chatml":
		msgs := make([]map[string]string, len(c.Turns))
		for i, t := range c.Turns {
			msgs[i] = map[string]string{"role": t.Role, "content": t.Content}
		}
		v = map[string]any{"id": c.Truth.ID, "messages": msgs, "topic": c.Topic}
	case "sharegpt":
		conv := make([]map[string]string, len(c.Turns))
		for i, t := range c.Turns {
			from := "human"
			if t.Role == "assistant" {
				from = "gpt"
			}
			conv[i] = map[string]string{"from": from, "value": t.Content}
		}
		v = map[string]any{"id": c.Truth.ID, "conversations": conv}
	case "esconv":
		dialog := make([]map[string]string, len(c.Turns))
		for i, t := range c.Turns {
			sp := "usr"
			if t.Role == "assistant" {
				sp = "sys"
			}
			dialog[i] = map[string]string{"speaker": sp, "text": t.Content}
		}
		v = map[string]any{"emotion_type": "sadness", "problem_type": c.Topic, "situation": "", "dialog": dialog}
	case "alpaca":
		v = map[string]any{"instruction": c.Turns[0].Content, "input": "", "output": c.Turns[1].Content}
	case "qa":
		return sf.csv.Write([]string{strconv.FormatInt(sf.n, 10), c.Topic, c.Turns[0].Content, c.Turns[1].Content, c.Topic})
	default:
		return fmt.Errorf("gen: unknown format %q", sf.format)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if sf.array {
		sep := ",\n"
		if sf.n == 1 {
			sep = "[\n"
		}
		if _, err := sf.w.WriteString(sep); err != nil {
			return err
		}
		_, err = sf.w.Write(b)
		return err
	}
	if _, err := sf.w.Write(b); err != nil {
		return err
	}
	return sf.w.WriteByte('\n')
}

func (sf *sourceFile) close() error {
	if sf.array {
		end := "\n]\n"
		if sf.n == 0 {
			end = "[]\n"
		}
		if _, err := sf.w.WriteString(end); err != nil {
			return err
		}
	}
	if sf.csv != nil {
		sf.csv.Flush()
		if err := sf.csv.Error(); err != nil {
			return err
		}
	}
	if err := sf.w.Flush(); err != nil {
		return err
	}
	if sf.comp != nil {
		if err := sf.comp.Close(); err != nil {
			return err
		}
	}
	return sf.f.Close()
}
