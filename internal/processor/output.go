package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	gojson "github.com/goccy/go-json"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

// The output stage, in parts with one job each: the destination, the plan
// (fusion and balancing, plan.go), copying the staged records
// (outwriter.go), verifying the counts, the manifest (manifest.go), and
// publishing (a rename, then an upload for S3).

// OutputVersion is the output stage's logic version.
const OutputVersion = "1"

// finalize runs the output stage: it reads the execution's staged records
// from the staged topic, writes the data and rejected files and the
// manifest into a staging directory, publishes it with one rename, and
// completes the execution. Rerunning it after a crash rewrites the same
// bytes.
func (p *Processor) finalize(ctx context.Context, x *execState) error {
	res, ok := p.prepared[x.id]
	if !ok {
		res = p.writeOutputRetrying(ctx, x)
	}
	delete(p.prepared, x.id)
	if res.err != nil {
		if ctx.Err() != nil {
			return res.err
		}
		return p.fail(ctx, x, events.StageOutput, events.CategoryStorage, "output stage failed: "+res.err.Error())
	}
	if err := p.emitDatasetStages(x, res); err != nil {
		return err
	}
	run := p.stagesRun(x)
	names := make([]string, len(run))
	for i, s := range run {
		names[i] = s.Name
	}
	if err := p.emit(x, events.ExecutionCompleted{Counts: x.counts, PerSource: append([]int64(nil), x.perSource...), NoConsent: append([]int64(nil), x.noConsent...),
		StagesRun: names, OutputDir: res.dir, Files: res.files}); err != nil {
		return err
	}
	return p.schedule(ctx)
}

// emitDatasetStages completes fusion and balancing (which ran inside the
// output stage's first pass) and the output stage.
func (p *Processor) emitDatasetStages(x *execState, res outputResult) error {
	if f := res.fusion; f != nil {
		if err := p.emit(x, events.StageCompleted{Stage: events.StageFusion, DurationMS: res.fusionMS, Fusion: f,
			Counts: events.Counts{Received: f.Records, Valid: f.Kept, Total: x.counts.Total}}); err != nil {
			return err
		}
	}
	if b := res.balancing; b != nil {
		if err := p.emit(x, events.StageCompleted{Stage: events.StageBalancing, DurationMS: res.fusionMS, Balancing: b,
			Counts: events.Counts{Received: b.Records, Valid: b.Selected, Total: x.counts.Total}}); err != nil {
			return err
		}
	}
	dur := p.cfg.Now().Sub(x.stages[events.StageOutput]).Milliseconds()
	out := events.Counts{Received: x.counts.Valid, Valid: res.records, Total: x.counts.Total}
	return p.emit(x, events.StageCompleted{Stage: events.StageOutput, Counts: out, DurationMS: dur})
}

// outputResult is the outcome of writing one execution's output.
type outputResult struct {
	files     []events.OutputFile
	dir       string
	err       error
	fusion    *events.FusionSummary
	balancing *events.BalancingSummary
	fusionMS  int64
	records   int64 // data records written
}

// prepareOutputs writes the output of every execution whose finalize
// command is in this poll, before the transaction that completes it opens.
func (p *Processor) prepareOutputs(ctx context.Context, fs kgo.Fetches) error {
	var err error
	fs.EachRecord(func(r *kgo.Record) {
		if err != nil || r.Topic != p.topics.Commands {
			return
		}
		c, derr := wire.DecodeCommand(r)
		if derr != nil || c.Kind != wire.CmdFinalize {
			return
		}
		if err = p.ensureLoaded(ctx, r.Partition); err != nil {
			return
		}
		x := p.execs[c.ExecutionID]
		if x == nil || x.status != statusFinalizing {
			return
		}
		res := p.writeOutputRetrying(ctx, x)
		if ctx.Err() != nil {
			err = ctx.Err()
			return
		}
		p.prepared[x.id] = res
	})
	return err
}

// outputError is an output stage failure: the step that failed, and
// whether trying again may succeed (the broker or S3 did not answer)
// rather than not (a full disk, a destination taken, access denied).
type outputError struct {
	step      string
	err       error
	retryable bool
}

func (e *outputError) Error() string { return e.step + ": " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

func permanent(step string, err error) error { return &outputError{step: step, err: err} }
func transient(step string, err error) error {
	return &outputError{step: step, err: err, retryable: true}
}

// s3Error classifies an S3 failure: throttling, server errors and lost
// connections are retried; a destination taken or access refused is not.
func s3Error(step string, err error) error {
	if errors.Is(err, sink.ErrTaken) || errors.Is(err, context.Canceled) {
		return permanent(step, err)
	}
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() {
		return transient(step, err)
	}
	var code interface{ HTTPStatusCode() int }
	if errors.As(err, &code) && code.HTTPStatusCode() < 500 {
		return permanent(step, err)
	}
	return transient(step, err)
}

// writeOutputRetrying writes the output, trying again with backoff (as
// sources are read) while the failure is retryable. Every attempt rewrites
// the same bytes into a fresh staging directory.
func (p *Processor) writeOutputRetrying(ctx context.Context, x *execState) outputResult {
	delay := p.cfg.OutputRetryBase
	for attempt := 1; ; attempt++ {
		res := p.writeOutput(ctx, x)
		var oe *outputError
		if res.err == nil || attempt >= p.cfg.OutputAttempts || !errors.As(res.err, &oe) || !oe.retryable {
			return res
		}
		p.log.Warn("processor: output stage failed; trying again", "execution_id", x.id, "attempt", attempt, "err", res.err)
		if err := clock.Sleep(ctx, delay); err != nil {
			return outputResult{err: err}
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// writeOutput writes one execution's output once.
func (p *Processor) writeOutput(ctx context.Context, x *execState) (res outputResult) {
	dst, err := p.destination(x)
	if err != nil {
		return outputResult{err: err}
	}
	g, err := p.gather(ctx, x, dst.root, x.counts.Received)
	if err != nil {
		if ctx.Err() != nil {
			return outputResult{err: ctx.Err()}
		}
		return outputResult{err: transient("read the staged records", err)}
	}
	defer g.remove()
	var plan *dataPlan
	if len(p.datasetsFor(x)) > 0 {
		start := p.cfg.Now()
		if plan, err = p.planDataset(ctx, x, g); err != nil {
			return outputResult{err: transient("fusion and balancing: read the staged records", err)}
		}
		res.fusion, res.balancing, res.fusionMS = plan.Fusion, plan.Balancing, p.cfg.Now().Sub(start).Milliseconds()
	}
	w, err := newOutputWriter(dst.root, dst.final, x)
	if err != nil {
		return outputResult{err: permanent("create the output files", err)}
	}
	defer w.Abort()
	if err := p.copyStaged(ctx, x, g, plan, w); err != nil {
		return outputResult{err: err}
	}
	inputSplits, err := w.finishRecords()
	if err != nil {
		return outputResult{err: permanent("write the data files", err)}
	}
	res.records = w.dataRecords
	if err := verifyCounts(x, plan, w); err != nil {
		return outputResult{err: permanent("verify the output", err)}
	}
	if err := p.writeReports(x, plan, res, w, inputSplits); err != nil {
		return outputResult{err: permanent("write the manifest", err)}
	}
	if res.dir, err = p.publish(ctx, x, dst, w); err != nil {
		return outputResult{err: err}
	}
	res.files = w.files
	return res
}

// destination is where an execution's output goes: a directory under the
// output root, claimed for this execution; for S3 a local staging
// directory first, then the bucket and prefix.
type destination struct {
	root, final string
	s3          *sink.S3Destination
	owner       sink.Ownership
}

func (p *Processor) destination(x *execState) (destination, error) {
	d := destination{owner: sink.Ownership{ExecutionID: x.id, UserID: x.user}}
	dest := x.req.Output.Destination
	if dest == "" {
		dest = x.id
	}
	s3dest, toS3, err := sink.ParseS3(dest)
	if err != nil {
		return d, permanent("output destination", err)
	}
	if toS3 {
		// Written locally first, then uploaded.
		d.s3, dest = &s3dest, filepath.Join(".s3-staging", x.id)
	}
	if d.root, err = sink.Root(p.cfg.OutputRoot); err != nil {
		return d, permanent("output root", err)
	}
	want, err := sink.Confine(d.root, dest)
	if err != nil {
		return d, permanent("output destination", err)
	}
	d.final, err = sink.Claim(d.root, want, d.owner, x.req.Output.Overwrite == events.OverwriteNewVersion)
	if err != nil {
		return d, permanent("output destination", err)
	}
	return d, nil
}

// copyStaged reads the execution's gathered records into the writer: each
// kept record as many times as the plan says (with the fusion lineage of
// what it merged, or the balancing repeat), rejected and quarantined
// records into their files.
func (p *Processor) copyStaged(ctx context.Context, x *execState, g *gathered, plan *dataPlan, w *outputWriter) error {
	err := g.each(func(r *gatheredRecord) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := r.m
		v, err := p.openStaged(x, m, r.value)
		if err != nil {
			return err
		}
		if m.Kind != wire.KindStaged {
			return w.write(m.Kind, v)
		}
		i := w.staged
		w.staged++
		return keepStaged(w, plan, i, v)
	})
	var oe *outputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oe):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return permanent("read the gathered staged records", err)
}

// keepStaged writes the i-th staged (valid) record as the plan says.
func keepStaged(w *outputWriter, plan *dataPlan, i int64, v []byte) error {
	if plan == nil {
		return w.write(wire.KindStaged, v)
	}
	if i >= int64(len(plan.Copies)) {
		return permanent("copy the staged records", errors.New("the staged topic changed between the output stage's passes"))
	}
	copies := plan.Copies[i]
	if copies == 0 {
		return nil
	}
	var err error
	if merged := plan.Merged.Of(int32(i)); len(merged) > 0 {
		if v, err = withLineage(v, stage.Lineage{Stage: events.StageFusion, Version: fusion.Version, Merged: merged}); err != nil {
			return permanent("copy the staged records", err)
		}
	}
	if err := w.write(wire.KindStaged, v); err != nil {
		return permanent("spool the kept records", err)
	}
	for k := 1; k < int(copies); k++ {
		rep, err := withLineage(v, stage.Lineage{Stage: events.StageBalancing, Version: balance.Version, Repeat: k})
		if err != nil {
			return permanent("copy the staged records", err)
		}
		if err := w.write(wire.KindStaged, rep); err != nil {
			return permanent("spool the kept records", err)
		}
	}
	return nil
}

// verifyCounts checks that the files hold exactly the records the
// execution's events counted: every valid record read back, as many data
// records as the plan wants, every rejected and quarantined record.
func verifyCounts(x *execState, plan *dataPlan, w *outputWriter) error {
	var quarantined int64
	if x.Safety != nil {
		quarantined = x.Safety.Quarantined
	}
	want := wantData(plan, x.counts.Valid)
	rf, qf := w.file("rejected.jsonl"), w.file("quarantine.jsonl")
	if w.staged != x.counts.Valid || w.dataRecords != want || rf.Records != x.counts.Rejected || qf.Records != quarantined {
		return fmt.Errorf("staged topic holds %d valid (%d written), %d rejected and %d quarantined records, expected %d (%d), %d and %d",
			w.staged, w.dataRecords, rf.Records, qf.Records, x.counts.Valid, want, x.counts.Rejected, quarantined)
	}
	return nil
}

// writeReports writes safety_report.json (when the safety stage ran) and
// the manifest, last, so that it lists every other file.
func (p *Processor) writeReports(x *execState, plan *dataPlan, res outputResult, w *outputWriter, inputSplits map[string]int64) error {
	if x.Safety != nil {
		b, err := json.MarshalIndent(safetyReport(x.Safety), "", "  ")
		if err != nil {
			return err
		}
		if err := w.writeFile("safety_report.json", append(b, '\n')); err != nil {
			return err
		}
	}
	m := p.manifest(x, plan, res, w, inputSplits)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return w.writeFile("manifest.json", append(b, '\n'))
}

// publish renames the staging directory into place (only this execution's
// own earlier attempt is ever replaced) and, for S3, uploads it.
func (p *Processor) publish(ctx context.Context, x *execState, d destination, w *outputWriter) (string, error) {
	o, exists, _ := sink.OwnerOf(d.final)
	if err := w.Commit(exists && o.ExecutionID == x.id); err != nil {
		return "", permanent("publish the output directory", err)
	}
	if d.s3 == nil {
		return d.final, nil
	}
	if p.s3 == nil {
		c, err := sink.NewS3Client(ctx, p.cfg.OutputS3Region, p.cfg.OutputS3Endpoint)
		if err != nil {
			return "", permanent("S3 client", err)
		}
		p.s3 = c
	}
	names := make([]string, len(w.files))
	for i, f := range w.files {
		names[i] = f.Name
	}
	// An S3 prefix belongs to one execution for ever, like a directory.
	s3dest, err := sink.ClaimS3(ctx, p.s3, *d.s3, d.owner, x.req.Output.Overwrite == events.OverwriteNewVersion)
	if err != nil {
		return "", s3Error("claim the S3 destination", err)
	}
	if err := sink.UploadDir(ctx, p.s3, s3dest, d.final, names, &d.owner); err != nil {
		return "", s3Error("upload the output", err)
	}
	_ = os.RemoveAll(d.final)
	return s3dest.String(), nil
}

// withLineage appends an entry to an encoded canonical record's lineage.
func withLineage(v []byte, l stage.Lineage) ([]byte, error) {
	var rec stage.Record
	if err := gojson.Unmarshal(v, &rec); err != nil {
		return nil, err
	}
	rec.Lineage = append(rec.Lineage, l)
	return gojson.Marshal(rec) // writes what encoding/json writes, faster
}

// splitOf finds metadata.split in an encoded canonical record without
// decoding it (the output stage sees every record).
func splitOf(line []byte) string {
	k := bytes.Index(line, []byte(`"split":"`))
	if k < 0 {
		return ""
	}
	rest := line[k+len(`"split":"`):]
	e := bytes.IndexByte(rest, '"')
	if e < 0 || e > 64 {
		return ""
	}
	return string(rest[:e])
}
