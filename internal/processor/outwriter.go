package processor

import (
	"encoding/json"
	"fmt"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/wire"
)

// outputWriter writes one execution's output into a staging directory
// beside its final place. It owns every file it opens: Abort removes
// whatever exists (safe to call at any point, and again), Commit publishes
// the directory with one rename.
//
// Records come in source order, and within a source in acquisition order
// (gather.go), so the data files do not depend on how the sources'
// records interleaved in the log or which processors ran them: same input
// and settings, same bytes. Quarantined records are kept, masked, for
// human review, never mixed with the training data.
type outputWriter struct {
	st         *sink.Staging
	rejected   *sink.LineFile
	quarantine *sink.LineFile
	data       *sink.SplitWriter

	rejectedBy  map[string]int64 // rejected records by the stage that rejected them
	staged      int64            // valid records read back
	dataRecords int64            // data records written
	splitCounts map[string]int64 // data records per output split (nil without splits)
	inputSplits map[string]int64 // data records per metadata.split of the input
	files       []events.OutputFile
	committed   bool
}

func newOutputWriter(root, final string, x *execState) (w *outputWriter, err error) {
	w = &outputWriter{rejectedBy: map[string]int64{}, inputSplits: map[string]int64{}}
	defer func() {
		if err != nil {
			w.Abort()
		}
	}()
	if w.st, err = sink.NewStaging(root, final); err != nil {
		return nil, err
	}
	if w.rejected, err = sink.Create(w.st.Dir, "rejected.jsonl", sink.CompressNone); err != nil {
		return nil, err
	}
	if w.quarantine, err = sink.Create(w.st.Dir, "quarantine.jsonl", sink.CompressNone); err != nil {
		return nil, err
	}
	formats := x.req.Output.Formats
	if len(formats) == 0 {
		formats = []string{sink.FormatJSONL}
	}
	w.data = sink.NewSplitWriter(w.st.Dir, formats, outputCompression(x), x.req.Output.ShardBytes, x.req.Output.Splits)
	return w, nil
}

// write files one record read back from the staged topic.
func (w *outputWriter) write(kind string, v []byte) error {
	switch kind {
	case wire.KindRejected:
		var rj wire.Rejection
		if json.Unmarshal(v, &rj) == nil {
			w.rejectedBy[rj.Stage]++
		}
		return w.rejected.WriteLine(v)
	case wire.KindQuarantined:
		return w.quarantine.WriteLine(v)
	}
	if s := splitOf(v); s != "" {
		w.inputSplits[s]++
	}
	return w.data.Write(v)
}

// finishRecords closes the rejected, quarantine and data files; it returns
// the data records per metadata.split of the input.
func (w *outputWriter) finishRecords() (inputSplits map[string]int64, err error) {
	rf, err := w.rejected.Close()
	w.rejected = nil
	if err != nil {
		return nil, err
	}
	qf, err := w.quarantine.Close()
	w.quarantine = nil
	if err != nil {
		return nil, err
	}
	w.dataRecords, w.splitCounts = w.data.Records(), w.data.Counts()
	dataFiles, err := w.data.Close()
	w.data = nil
	if err != nil {
		return nil, err
	}
	w.files = append(append(w.files, dataFiles...), rf, qf)
	return w.inputSplits, nil
}

// file returns the description of the named file written so far.
func (w *outputWriter) file(name string) events.OutputFile {
	for _, f := range w.files {
		if f.Name == name {
			return f
		}
	}
	return events.OutputFile{}
}

// writeFile adds a whole file (a report, the manifest) with its hash.
func (w *outputWriter) writeFile(name string, b []byte) error {
	f, err := sink.WriteFileHashed(w.st.Dir, name, b)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	w.files = append(w.files, f)
	return nil
}

// Commit publishes the staging directory as the final one; replaceOwn
// lets it replace this execution's own earlier attempt.
func (w *outputWriter) Commit(replaceOwn bool) error {
	if err := w.st.Commit(replaceOwn); err != nil {
		return err
	}
	w.committed = true
	return nil
}

// Abort removes everything written, unless committed.
func (w *outputWriter) Abort() {
	if w.committed {
		return
	}
	if w.rejected != nil {
		w.rejected.Abort()
		w.rejected = nil
	}
	if w.quarantine != nil {
		w.quarantine.Abort()
		w.quarantine = nil
	}
	if w.data != nil {
		w.data.Abort()
		w.data = nil
	}
	if w.st != nil {
		w.st.Abort()
	}
}
