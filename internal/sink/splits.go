package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"regexp"

	"github.com/dspipe/dspipe/events"
)

// Output splits: the data written as one file set per named split
// (data-train.jsonl, data-validation.jsonl, ...), each record in the split
// its id hashes to. The assignment depends on the record id alone, so a
// rerun, an erasure rewrite and a record's balancing copies all land in the
// same split, and no record is in two.

// MaxSplits is how many splits an output may have.
const MaxSplits = 10

var splitName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// CheckSplits says what is wrong with a request's output.splits, if
// anything.
func CheckSplits(splits []events.Split) error {
	if len(splits) == 0 {
		return nil
	}
	if len(splits) < 2 || len(splits) > MaxSplits {
		return fmt.Errorf("output.splits: give 2 to %d splits (or none for one data file set)", MaxSplits)
	}
	seen := map[string]bool{}
	sum := 0.0
	for i, s := range splits {
		if !splitName.MatchString(s.Name) {
			return fmt.Errorf("output.splits[%d].name: use 1 to 32 lower-case letters, digits or _, starting with a letter (e.g. train)", i)
		}
		if seen[s.Name] {
			return fmt.Errorf("output.splits[%d].name: %q is listed twice", i, s.Name)
		}
		seen[s.Name] = true
		if !(s.Fraction > 0 && s.Fraction <= 1) {
			return fmt.Errorf("output.splits[%d].fraction: must be above 0 and at most 1", i)
		}
		sum += s.Fraction
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("output.splits: the fractions add up to %.6g; they must add up to 1", sum)
	}
	return nil
}

// Splitter assigns record ids to splits.
type Splitter struct {
	names  []string
	bounds []uint64 // upper bound (exclusive) of each split's hash range; the last is open
}

// NewSplitter divides the 64-bit hash space by the splits' fractions in
// their order.
func NewSplitter(splits []events.Split) Splitter {
	s := Splitter{}
	acc := 0.0
	for _, sp := range splits {
		acc += sp.Fraction
		s.names = append(s.names, sp.Name)
		b := uint64(math.MaxUint64)
		if acc < 1 {
			b = uint64(acc * math.MaxUint64)
		}
		s.bounds = append(s.bounds, b)
	}
	return s
}

// Of is the index of the split a record id belongs to.
func (s Splitter) Of(id string) int {
	h := sha256.Sum256([]byte("dspipe-split\x00" + id))
	v := binary.BigEndian.Uint64(h[:8])
	for i, b := range s.bounds[:len(s.bounds)-1] {
		if v < b {
			return i
		}
	}
	return len(s.bounds) - 1
}

// SplitWriter writes data records to one DataWriter per split (or to one
// plain DataWriter when there are no splits).
type SplitWriter struct {
	split   Splitter
	writers []*DataWriter
	counts  []int64
}

// NewSplitWriter writes data files into dir: data.<ext> (and shards) with
// no splits, data-<split>.<ext> per split otherwise.
func NewSplitWriter(dir string, formats []string, compression string, shardBytes int64, splits []events.Split) *SplitWriter {
	w := &SplitWriter{}
	if len(splits) == 0 {
		w.writers = []*DataWriter{NewDataWriter(dir, formats, compression, shardBytes)}
		w.counts = make([]int64, 1)
		return w
	}
	w.split = NewSplitter(splits)
	for _, s := range splits {
		d := NewDataWriter(dir, formats, compression, shardBytes)
		d.base = "data-" + s.Name
		w.writers = append(w.writers, d)
	}
	w.counts = make([]int64, len(splits))
	return w
}

// Write adds one encoded canonical record to its split.
func (w *SplitWriter) Write(line []byte) error {
	i := 0
	if len(w.writers) > 1 {
		id, err := recordID(line)
		if err != nil {
			return err
		}
		i = w.split.Of(id)
	}
	w.counts[i]++
	return w.writers[i].Write(line)
}

// Records is how many records were written in all.
func (w *SplitWriter) Records() int64 {
	var n int64
	for _, c := range w.counts {
		n += c
	}
	return n
}

// Counts is how many records each split got, by name (nil without splits).
func (w *SplitWriter) Counts() map[string]int64 {
	if len(w.split.names) == 0 {
		return nil
	}
	m := make(map[string]int64, len(w.counts))
	for i, n := range w.split.names {
		m[n] = w.counts[i]
	}
	return m
}

// Close finishes every split's files and describes them, split by split.
func (w *SplitWriter) Close() ([]events.OutputFile, error) {
	var files []events.OutputFile
	for i, d := range w.writers {
		f, err := d.Close()
		if err != nil {
			for _, rest := range w.writers[i+1:] {
				rest.Abort()
			}
			return nil, err
		}
		files = append(files, f...)
	}
	return files, nil
}

// Abort removes what was written.
func (w *SplitWriter) Abort() {
	for _, d := range w.writers {
		d.Abort()
	}
}

// recordID reads a canonical record's id, which its encoding puts first.
func recordID(line []byte) (string, error) {
	const prefix = `{"id":`
	if bytes.HasPrefix(line, []byte(prefix)) {
		rest := line[len(prefix):]
		if len(rest) > 0 && rest[0] == '"' {
			if e := bytes.IndexByte(rest[1:], '"'); e >= 0 && bytes.IndexByte(rest[1:1+e], '\\') < 0 {
				return string(rest[1 : 1+e]), nil
			}
		}
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(line, &r); err != nil || r.ID == "" {
		return "", fmt.Errorf("sink: a data record has no id to assign it a split")
	}
	return r.ID, nil
}
