package processor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/store"
	"github.com/dspipe/dspipe/internal/wire"
)

// eraseWithdrawn turns a record saying its data subject withdrew consent
// into an erasure of that subject (by pseudonym): executions that start
// afterwards drop the subject's records, and every finished output is
// checked and rewritten without them. The erasure id is derived from the
// record's place, so a replayed record records it once.
func (p *Processor) eraseWithdrawn(x *execState, m wire.Meta, subject string) error {
	if p.cfg.Erase == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", x.id, m.Source, m.Position))
	id := "er_withdrawn_" + hex.EncodeToString(sum[:8])
	e := store.Erasure{ID: id, By: "consent-withdrawn"}
	if strings.HasPrefix(subject, "sid_") {
		e.SourceIDHashes = []string{subject}
	} else {
		e.RecordIDs = []string{subject}
	}
	if err := p.cfg.Erase(ctx, e); err != nil {
		return fmt.Errorf("processor: record the erasure of a withdrawn consent: %w", err)
	}
	if p.cfg.FinishedOutputs == nil {
		return nil
	}
	ids, err := p.cfg.FinishedOutputs(ctx)
	if err != nil {
		return fmt.Errorf("processor: list finished outputs: %w", err)
	}
	for _, other := range ids {
		rec, err := wire.Command{Kind: wire.CmdApplyErasure, ExecutionID: other, UserID: e.By, Message: id}.Record(p.topics.Commands)
		if err != nil {
			return err
		}
		p.produce(rec)
	}
	return p.emit(x, events.Alert{Severity: "warning", Code: "consent_withdrawn", Stage: events.StageValidation,
		Message: fmt.Sprintf("record %d of source %d says its data subject withdrew consent: erasure %s drops the subject from later executions and finished outputs", m.Position, m.Source, id)})
}

// versionSuffix is the ".vN" a rewritten output's directory carries.
var versionSuffix = regexp.MustCompile(`\.v[0-9]+$`)

// applyErasure rewrites a finished execution's local output without the
// records the erasures in force name: the JSONL data files are read back,
// every kept line is written again through the same data writer (so CSV
// and Parquet follow, byte-identical in content and order but for the
// erased lines, each in its split), quarantine.jsonl is filtered the same
// way, the manifest names the erasure and the previous version, and the
// old directory is deleted once the new one is published. An output
// without JSONL, or on S3, is left as it is (SECURITY.md says to delete or
// rerun it).
func (p *Processor) applyErasure(ctx context.Context, x *execState, erasure string) error {
	if _, ok, _ := sink.ParseS3(x.outputDir); ok || !slices.Contains(x.req.Output.Formats, sink.FormatJSONL) {
		p.log.Warn("processor: an erasure cannot rewrite this output (S3, or no JSONL to read back)", "execution_id", x.id, "erasure", erasure)
		return nil
	}
	erased, err := p.erased()
	if err != nil {
		return err
	}
	out, found, err := p.finishedOutput(x)
	if err != nil || !found {
		return err
	}
	isErased := erasedMatcher(erased)
	// A first pass counts: nothing to erase, nothing to rewrite.
	var removed int64
	for _, n := range out.dataFiles {
		if err := eachLine(filepath.Join(out.dir, n), func(l []byte) error {
			if isErased(l) {
				removed++
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if removed == 0 {
		return nil
	}
	next, err := nextVersion(out.dir)
	if err != nil {
		return fmt.Errorf("processor: erasure %s: %w", erasure, err)
	}
	files, err := p.rewriteOutput(x, out, next, isErased, map[string]any{"erasure": erasure, "removed": removed, "previous_version": filepath.Base(out.dir)})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out.dir); err != nil {
		return err
	}
	return p.emit(x, events.OutputRewritten{Erasure: erasure, Removed: removed, Previous: x.outputDir, OutputDir: next, Files: files})
}

// finishedOutput is a finished execution's local output as its manifest
// describes it.
type finishedOutput struct {
	root, dir string
	manifest  map[string]any
	dataFiles []string // the JSONL data files, in name order
}

// finishedOutput reads an execution's output directory; found is false
// when it is gone (already rewritten by a redelivered command, or deleted).
func (p *Processor) finishedOutput(x *execState) (out finishedOutput, found bool, err error) {
	if out.root, err = sink.Root(p.cfg.OutputRoot); err != nil {
		return out, false, err
	}
	if out.dir, err = sink.Confine(out.root, x.outputDir); err != nil {
		return out, false, err
	}
	b, err := os.ReadFile(filepath.Join(out.dir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		return out, false, nil
	}
	if err != nil || json.Unmarshal(b, &out.manifest) != nil {
		return out, false, fmt.Errorf("processor: read the manifest of %s: %v", x.id, err)
	}
	files, _ := out.manifest["files"].([]any)
	for _, f := range files {
		name, _ := f.(map[string]any)["name"].(string)
		if sink.IsData(name) && strings.Contains(name, ".jsonl") {
			out.dataFiles = append(out.dataFiles, name)
		}
	}
	slices.Sort(out.dataFiles)
	return out, true, nil
}

// erasedMatcher reports whether an encoded record is erased, by its id or
// its source id's pseudonym.
func erasedMatcher(erased map[string]string) func([]byte) bool {
	return func(line []byte) bool {
		var r struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		}
		if json.Unmarshal(line, &r) != nil {
			return false
		}
		if _, ok := erased[r.ID]; ok {
			return true
		}
		sid := r.Metadata["source_id"]
		_, ok := erased[sid]
		return ok && sid != ""
	}
}

// nextVersion is the first free <dir>.vN beside an output.
func nextVersion(dir string) (string, error) {
	base := versionSuffix.ReplaceAllString(dir, "")
	for v := 2; v < 10000; v++ {
		cand := fmt.Sprintf("%s.v%d", base, v)
		if _, err := os.Lstat(cand); errors.Is(err, os.ErrNotExist) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free version beside %s", dir)
}

// rewriteOutput writes the output again into next without the erased
// lines, with the manifest recording the erasure, and publishes it.
func (p *Processor) rewriteOutput(x *execState, out finishedOutput, next string, isErased func([]byte) bool, erasure map[string]any) ([]events.OutputFile, error) {
	st, err := sink.NewStaging(out.root, next)
	if err != nil {
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			st.Abort()
		}
	}()
	files, splits, err := rewriteRecords(st.Dir, x, out, isErased)
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(out.dir, "safety_report.json")); err == nil {
		f, err := sink.WriteFileHashed(st.Dir, "safety_report.json", b)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	m := out.manifest
	m["files"] = files
	if sp, ok := m["output_splits"].([]any); ok {
		for _, s := range sp {
			if s, ok := s.(map[string]any); ok {
				name, _ := s["name"].(string)
				s["records"] = splits[name]
			}
		}
	}
	prior, _ := m["erasures"].([]any)
	m["erasures"] = append(prior, erasure)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	mf, err := sink.WriteFileHashed(st.Dir, "manifest.json", append(mb, '\n'))
	if err != nil {
		return nil, err
	}
	if err := st.Commit(false); err != nil {
		return nil, err
	}
	published = true
	return append(files, mf), nil
}

// rewriteRecords writes the kept lines of the data, rejected and
// quarantine files into dir.
func rewriteRecords(dir string, x *execState, out finishedOutput, isErased func([]byte) bool) ([]events.OutputFile, map[string]int64, error) {
	data := sink.NewSplitWriter(dir, x.req.Output.Formats, outputCompression(x), x.req.Output.ShardBytes, x.req.Output.Splits)
	for _, n := range out.dataFiles {
		if err := eachLine(filepath.Join(out.dir, n), func(l []byte) error {
			if isErased(l) {
				return nil
			}
			return data.Write(l)
		}); err != nil {
			data.Abort()
			return nil, nil, err
		}
	}
	splits := data.Counts()
	files, err := data.Close()
	if err != nil {
		return nil, nil, err
	}
	for _, n := range []string{"rejected.jsonl", "quarantine.jsonl"} {
		lf, err := sink.Create(dir, n, sink.CompressNone)
		if err != nil {
			return nil, nil, err
		}
		if err := eachLine(filepath.Join(out.dir, n), func(l []byte) error {
			if isErased(l) {
				return nil
			}
			return lf.WriteLine(l)
		}); err != nil && !errors.Is(err, os.ErrNotExist) {
			lf.Abort()
			return nil, nil, err
		}
		f, err := lf.Close()
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	return files, splits, nil
}

// outputCompression is the execution's data file compression (none unless
// the request names one).
func outputCompression(x *execState) string {
	if c := x.req.Output.Compression; c != "" {
		return c
	}
	return sink.CompressNone
}

// eachLine hands every line of a possibly compressed JSONL file to fn.
func eachLine(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, release, err := source.Decompress(f)
	if err != nil {
		return err
	}
	defer release()
	br := bufio.NewReaderSize(r, 256<<10)
	for {
		line, err := br.ReadBytes('\n')
		if l := bytes.TrimSuffix(line, []byte("\n")); len(l) > 0 {
			if ferr := fn(l); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
