package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/quality"
	"github.com/dspipe/dspipe/internal/safety"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

// OutputVersion is the output stage's logic version.
const OutputVersion = "1"

// Manifest describes an output directory: what went in, what came out, with
// which settings and code versions, and the SHA-256 of every file.
type Manifest struct {
	ExecutionID string              `json:"execution_id"`
	UserID      string              `json:"user_id"`
	Request     events.Request      `json:"request"`
	Counts      events.Counts       `json:"counts"`
	Sources     []ManifestSource    `json:"sources"`
	Stages      []ManifestStage     `json:"stages"`
	Files       []events.OutputFile `json:"files"`
	// Safety is the safety report: identifiers found and masked per type,
	// conversations per crisis level, records quarantined.
	Safety *events.SafetySummary `json:"safety,omitempty"`
	// Quality and Bias are those stages' reports: the score histogram and
	// rules failed; mentions per axis and group with the bias score.
	Quality *events.QualitySummary `json:"quality,omitempty"`
	Bias    *events.BiasSummary    `json:"bias,omitempty"`
}

// ManifestSource is one source's figures.
type ManifestSource struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Valid int64  `json:"valid"`
}

// ManifestStage is one stage that ran.
type ManifestStage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// stagesRun lists the stages that really ran for an execution, in order.
func (p *Processor) stagesRun(x *execState) []ManifestStage {
	st := []ManifestStage{
		{events.StageAcquisition, "1"},
		{events.StageValidation, stage.ValidationVersion},
		{events.StageStandardization, stage.StandardizationVersion},
	}
	run := p.stagesFor(x)
	if run.quality != nil {
		st = append(st, ManifestStage{events.StageQuality, quality.Version})
	}
	if run.safety != nil {
		st = append(st, ManifestStage{events.StageSafety, safety.Version})
	}
	if run.bias != nil {
		st = append(st, ManifestStage{events.StageBias, bias.Version})
	}
	return append(st, ManifestStage{events.StageOutput, OutputVersion})
}

// finalize runs the output stage: it reads the execution's staged records
// from the staged topic, writes the data and rejected files and the
// manifest into a staging directory, publishes it with one rename, and
// completes the execution. Rerunning it after a crash rewrites the same
// bytes.
func (p *Processor) finalize(ctx context.Context, x *execState) error {
	res, ok := p.prepared[x.id]
	if !ok {
		res.files, res.dir, res.err = p.writeOutput(ctx, x)
	}
	delete(p.prepared, x.id)
	files, dir, err := res.files, res.dir, res.err
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		reason := "output stage failed: " + err.Error()
		if err := p.emit(x, events.StageFailed{Stage: events.StageOutput, Reason: reason, Category: events.CategoryStorage}); err != nil {
			return err
		}
		if err := p.emit(x, events.ExecutionFailed{Stage: events.StageOutput, Reason: reason, Category: events.CategoryStorage}); err != nil {
			return err
		}
		return p.schedule(ctx)
	}
	var written int64
	for _, f := range files {
		if strings.HasPrefix(f.Name, "data.") {
			written += f.Records
		}
	}
	dur := p.cfg.Now().Sub(x.stages[events.StageOutput]).Milliseconds()
	out := events.Counts{Received: x.counts.Valid, Valid: written, Total: x.counts.Total}
	if err := p.emit(x, events.StageCompleted{Stage: events.StageOutput, Counts: out, DurationMS: dur}); err != nil {
		return err
	}
	run := p.stagesRun(x)
	names := make([]string, len(run))
	for i, s := range run {
		names[i] = s.Name
	}
	if err := p.emit(x, events.ExecutionCompleted{Counts: x.counts, PerSource: append([]int64(nil), x.perSource...),
		StagesRun: names, OutputDir: dir, Files: files}); err != nil {
		return err
	}
	return p.schedule(ctx)
}

// outputResult is the outcome of writing one execution's output.
type outputResult struct {
	files []events.OutputFile
	dir   string
	err   error
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
		var res outputResult
		res.files, res.dir, res.err = p.writeOutput(ctx, x)
		if ctx.Err() != nil {
			err = ctx.Err()
			return
		}
		p.prepared[x.id] = res
	})
	return err
}

func (p *Processor) writeOutput(ctx context.Context, x *execState) ([]events.OutputFile, string, error) {
	dest := x.req.Output.Destination
	if dest == "" {
		dest = x.id
	}
	final, err := sink.Confine(p.cfg.OutputRoot, dest)
	if err != nil {
		return nil, "", err
	}
	st, err := sink.NewStaging(final)
	if err != nil {
		return nil, "", err
	}
	ok := false
	defer func() {
		if !ok {
			st.Abort()
		}
	}()
	comp := x.req.Output.Compression
	if comp == "" {
		comp = sink.CompressNone
	}
	data, err := sink.Create(st.Dir, "data.jsonl"+sink.Extension(comp), comp)
	if err != nil {
		return nil, "", err
	}
	rejected, err := sink.Create(st.Dir, "rejected.jsonl", sink.CompressNone)
	if err != nil {
		data.Abort()
		return nil, "", err
	}
	// Quarantined records are kept, masked, for human review, never mixed
	// with the training data.
	quarantine, err := sink.Create(st.Dir, "quarantine.jsonl", sink.CompressNone)
	if err != nil {
		data.Abort()
		rejected.Abort()
		return nil, "", err
	}
	key := x.id
	err = p.cfg.Kafka.ReadPartition(ctx, p.topics.Staged, x.partition, x.stagedFrom, func(r *kgo.Record) error {
		if string(r.Key) != key {
			return nil
		}
		m, err := wire.ReadMeta(r)
		if err != nil {
			return err
		}
		switch m.Kind {
		case wire.KindStaged:
			return data.WriteLine(r.Value)
		case wire.KindRejected:
			return rejected.WriteLine(r.Value)
		case wire.KindQuarantined:
			return quarantine.WriteLine(r.Value)
		}
		return nil
	})
	if err != nil {
		data.Abort()
		rejected.Abort()
		quarantine.Abort()
		return nil, "", fmt.Errorf("read staged records: %w", err)
	}
	df, err := data.Close()
	if err != nil {
		rejected.Abort()
		quarantine.Abort()
		return nil, "", err
	}
	rf, err := rejected.Close()
	if err != nil {
		quarantine.Abort()
		return nil, "", err
	}
	qf, err := quarantine.Close()
	if err != nil {
		return nil, "", err
	}
	var quarantined int64
	if x.safety != nil {
		quarantined = x.safety.Quarantined
	}
	if df.Records != x.counts.Valid || rf.Records != x.counts.Rejected || qf.Records != quarantined {
		return nil, "", fmt.Errorf("staged topic holds %d valid, %d rejected and %d quarantined records, expected %d, %d and %d",
			df.Records, rf.Records, qf.Records, x.counts.Valid, x.counts.Rejected, quarantined)
	}
	files := []events.OutputFile{df, rf, qf}
	m := Manifest{ExecutionID: x.id, UserID: x.user, Request: redact(x.req), Counts: x.counts, Stages: p.stagesRun(x), Files: files, Safety: x.safety.Clone(),
		Quality: x.quality.Clone(), Bias: p.biasSummary(x)}
	for i, s := range x.req.Sources {
		m.Sources = append(m.Sources, ManifestSource{Name: s.DisplayName(i), Type: s.Type, Valid: x.perSource[i]})
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, "", err
	}
	mf, err := sink.WriteFileHashed(st.Dir, "manifest.json", append(mb, '\n'))
	if err != nil {
		return nil, "", err
	}
	if err := st.Commit(); err != nil {
		return nil, "", err
	}
	ok = true
	return append(files, mf), final, nil
}

// redact blanks configuration values that look like secrets; references
// such as ${AWS_SECRET_ACCESS_KEY} are kept, as they reveal nothing.
func redact(r events.Request) events.Request {
	out := r
	out.Sources = make([]events.SourceSpec, len(r.Sources))
	for i, s := range r.Sources {
		c := make(map[string]string, len(s.Config))
		for k, v := range s.Config {
			lk := strings.ToLower(k)
			secret := strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "password") ||
				strings.Contains(lk, "access_key") || strings.Contains(lk, "credential")
			if secret && !(strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}")) {
				v = "[REDACTED]"
			}
			c[k] = v
		}
		s.Config = c
		out.Sources[i] = s
	}
	return out
}
