package processor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/quality"
	"github.com/dspipe/dspipe/internal/safety"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/crypt"
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
	// Fusion is the fusion report (clusters, records removed) and
	// FusionSettings the MinHash parameters and threshold it ran with.
	Fusion         *events.FusionSummary `json:"fusion,omitempty"`
	FusionSettings *fusion.Settings      `json:"fusion_settings,omitempty"`
	// Balancing is the achieved distribution against the target, and
	// BalancingSettings the request's settings.
	Balancing         *events.BalancingSummary `json:"balancing,omitempty"`
	BalancingSettings *balance.Settings        `json:"balancing_settings,omitempty"`
	// RejectedByStage counts rejected records per stage; Splits counts
	// output records per metadata.split (train, test, ...) when the
	// records have one.
	RejectedByStage map[string]int64 `json:"rejected_by_stage"`
	Splits          map[string]int64 `json:"splits,omitempty"`
	// OutputSplits are the request's output.splits with the records each
	// got (files data-<name>.*), in the request's order.
	OutputSplits []ManifestSplit `json:"output_splits,omitempty"`
}

// ManifestSplit is one output split in the manifest.
type ManifestSplit struct {
	Name     string  `json:"name"`
	Fraction float64 `json:"fraction"`
	Records  int64   `json:"records"`
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

// safetyHarborTypes are the identifier types of the safety report, in the
// order of HIPAA Safe Harbor's list that they cover.
var safetyHarborTypes = []string{"PERSON", "ADDRESS", "LOCATION", "ZIP", "DATE", "AGE", "PHONE", "EMAIL", "SSN", "ID", "ACCOUNT",
	"CREDIT_CARD", "URL", "IP_ADDRESS"}

// safetyReport is safety_report.json: per Safe Harbor identifier type how
// many were found and masked (every detected span is masked), then the
// crisis, content and quarantine figures. Counts only.
func safetyReport(s *events.SafetySummary) map[string]any {
	types := map[string]map[string]int64{}
	for _, t := range safetyHarborTypes {
		types[t] = map[string]int64{"found": s.PII[t], "masked": s.PII[t]}
	}
	for t, n := range s.PII {
		if _, ok := types[t]; !ok {
			types[t] = map[string]int64{"found": n, "masked": n}
		}
	}
	return map[string]any{"safe_harbor_identifiers": types, "records_with_identifiers": s.RecordsWithPII, "crisis_levels": s.Crisis,
		"quarantined_for_review": s.Quarantined, "content_flagged": s.Content, "review_flags": s.Flags, "blocked": s.Blocked}
}

// ManifestSource is one source's figures: records valid after the
// per-record stages, and records in the output after fusion.
type ManifestSource struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Valid  int64  `json:"valid"`
	Output int64  `json:"output"`
	// NoConsent counts the records rejected for want of consent.
	NoConsent int64 `json:"no_consent"`
}

// ManifestStage is one stage that ran.
type ManifestStage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Settings are the settings the stage ran with, after defaults.
	Settings any `json:"settings,omitempty"`
}

// stagesRun lists the stages that really ran for an execution, in order,
// with their versions and settings.
func (p *Processor) stagesRun(x *execState) []ManifestStage {
	st := []ManifestStage{
		{Name: events.StageAcquisition, Version: "1", Settings: map[string]any{"sources": len(x.req.Sources)}},
		{Name: events.StageValidation, Version: stage.ValidationVersion, Settings: map[string]int{"max_record_bytes": p.cfg.Limits.MaxRecordBytes, "max_messages": p.cfg.Limits.MaxMessages}},
		{Name: events.StageStandardization, Version: stage.StandardizationVersion},
	}
	run := p.stagesFor(x)
	if run.quality != nil {
		st = append(st, ManifestStage{events.StageQuality, quality.Version, *run.quality})
	}
	if run.safety != nil {
		st = append(st, ManifestStage{events.StageSafety, safety.Version, run.safety.Settings})
	}
	if run.bias != nil {
		st = append(st, ManifestStage{events.StageBias, bias.Version, *run.bias})
	}
	if f := p.fusionFor(x); f != nil {
		st = append(st, ManifestStage{events.StageFusion, fusion.Version, *f})
	}
	if b := balancingFor(x); b != nil {
		st = append(st, ManifestStage{events.StageBalancing, balance.Version, *b})
	}
	return append(st, ManifestStage{events.StageOutput, OutputVersion, x.req.Output})
}

// finalize runs the output stage: it reads the execution's staged records
// from the staged topic, writes the data and rejected files and the
// manifest into a staging directory, publishes it with one rename, and
// completes the execution. Rerunning it after a crash rewrites the same
// bytes.
func (p *Processor) finalize(ctx context.Context, x *execState) error {
	res, ok := p.prepared[x.id]
	if !ok {
		res = p.writeOutput(ctx, x)
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
	written := res.records
	if res.fusion != nil {
		// Fusion and balancing ran inside the output stage's first pass.
		f := res.fusion
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
	out := events.Counts{Received: x.counts.Valid, Valid: written, Total: x.counts.Total}
	if err := p.emit(x, events.StageCompleted{Stage: events.StageOutput, Counts: out, DurationMS: dur}); err != nil {
		return err
	}
	run := p.stagesRun(x)
	names := make([]string, len(run))
	for i, s := range run {
		names[i] = s.Name
	}
	if err := p.emit(x, events.ExecutionCompleted{Counts: x.counts, PerSource: append([]int64(nil), x.perSource...), NoConsent: append([]int64(nil), x.noConsent...),
		StagesRun: names, OutputDir: dir, Files: files}); err != nil {
		return err
	}
	return p.schedule(ctx)
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
		res := p.writeOutput(ctx, x)
		if ctx.Err() != nil {
			err = ctx.Err()
			return
		}
		p.prepared[x.id] = res
	})
	return err
}

// dataPlan is what the dataset stages decided about an execution's
// staged records, by their order in the staged topic.
type dataPlan struct {
	// copies is how many times each staged record is written: 0 when
	// fusion removed it or balancing left it out, more than 1 when
	// balancing oversampled it.
	copies    []int32
	merged    map[int32][]string
	fusion    *events.FusionSummary
	balancing *events.BalancingSummary
}

// planDataset is the output stage's first pass: it reads the execution's
// staged records and runs fusion (set, nil when off) and then balancing
// (bal, nil when off) over them.
func (p *Processor) planDataset(ctx context.Context, x *execState, set *fusion.Settings, bal *balance.Settings) (*dataPlan, error) {
	var idx fusion.Index
	var ids []string
	var srcOf []int32
	var groups []string
	var buf []uint64
	var rec struct {
		ID          string                     `json:"id"`
		Messages    []stage.Message            `json:"messages"`
		Metadata    map[string]string          `json:"metadata"`
		Annotations map[string]json.RawMessage `json:"annotations"`
	}
	err := p.cfg.Kafka.ReadPartition(ctx, p.topics.Staged, x.partition, x.stagedFrom, func(r *kgo.Record) error {
		if string(r.Key) != x.id {
			return nil
		}
		m, err := wire.ReadMeta(r)
		if err != nil || m.Kind != wire.KindStaged {
			return err
		}
		v, err := p.openStaged(x, m, r.Value)
		if err != nil {
			return err
		}
		rec.ID, rec.Messages, rec.Metadata, rec.Annotations = "", rec.Messages[:0], nil, nil
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("staged record at offset %d: %w", r.Offset, err)
		}
		if bal != nil {
			groups = append(groups, groupOf(bal.Key, x, m.Source, rec.Metadata, rec.Annotations))
		}
		var f fusion.Features
		if set != nil {
			f, buf = fusion.Compute(rec.Messages, buf)
		}
		prio := 0
		if m.Source >= 0 && m.Source < len(x.req.Sources) {
			prio = x.req.Sources[m.Source].Priority
		}
		idx.Add(&f, fusion.Rank{Priority: prio, Source: m.Source, Position: m.Position})
		ids = append(ids, rec.ID)
		srcOf = append(srcOf, int32(m.Source))
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := idx.Len()
	plan := &dataPlan{copies: make([]int32, n), merged: map[int32][]string{}}
	for i := range plan.copies {
		plan.copies[i] = 1
	}
	if set != nil {
		res := idx.Resolve(set.NearThreshold)
		sum := &events.FusionSummary{Records: int64(n), Clusters: int64(res.Clusters), RemovedExact: int64(res.RemovedExact),
			RemovedNear: int64(res.RemovedNear), NearThreshold: set.NearThreshold, KeptPerSource: make([]int64, len(x.req.Sources))}
		for i, k := range res.Keeper {
			if k != int32(i) {
				plan.copies[i] = 0
				plan.merged[k] = append(plan.merged[k], ids[i])
				continue
			}
			sum.Kept++
			if s := srcOf[i]; s >= 0 && int(s) < len(sum.KeptPerSource) {
				sum.KeptPerSource[s]++
			}
		}
		for _, m := range plan.merged {
			sort.Strings(m)
		}
		plan.fusion = sum
	}
	if bal != nil {
		var items []balance.Item
		var at []int
		for i := 0; i < n; i++ {
			if plan.copies[i] > 0 {
				items = append(items, balance.Item{ID: ids[i], Group: groups[i]})
				at = append(at, i)
			}
		}
		sel := balance.Select(*bal, items)
		for k, i := range at {
			plan.copies[i] = sel.Copies[k]
		}
		plan.balancing = &sel.Summary
	}
	return plan, nil
}

// groupOf is a record's group under a balancing key.
func groupOf(key string, x *execState, src int, md map[string]string, ann map[string]json.RawMessage) string {
	switch {
	case key == "source":
		if src >= 0 && src < len(x.req.Sources) {
			return x.req.Sources[src].DisplayName(src)
		}
	case strings.HasPrefix(key, "metadata."):
		if v := md[strings.TrimPrefix(key, "metadata.")]; v != "" {
			return v
		}
	case strings.HasPrefix(key, "bias."):
		var b struct {
			Mentions []struct{ Axis, Group string } `json:"mentions"`
		}
		if json.Unmarshal(ann["bias"], &b) == nil {
			axis := strings.TrimPrefix(key, "bias.")
			for _, m := range b.Mentions {
				if m.Axis == axis {
					return m.Group
				}
			}
		}
	}
	return balance.None
}

func (p *Processor) writeOutput(ctx context.Context, x *execState) (res outputResult) {
	fail := func(err error) outputResult { return outputResult{err: err} }
	dest := x.req.Output.Destination
	if dest == "" {
		dest = x.id
	}
	s3dest, toS3, err := sink.ParseS3(dest)
	if err != nil {
		return fail(err)
	}
	if toS3 {
		// Written locally first, then uploaded.
		dest = filepath.Join(".s3-staging", x.id)
	}
	root, err := sink.Root(p.cfg.OutputRoot)
	if err != nil {
		return fail(err)
	}
	want, err := sink.Confine(root, dest)
	if err != nil {
		return fail(err)
	}
	me := sink.Ownership{ExecutionID: x.id, UserID: x.user}
	final, err := sink.Claim(root, want, me, x.req.Output.Overwrite == events.OverwriteNewVersion)
	if err != nil {
		return fail(err)
	}
	var plan *dataPlan
	if set, bal := p.fusionFor(x), balancingFor(x); set != nil || bal != nil {
		start := p.cfg.Now()
		if plan, err = p.planDataset(ctx, x, set, bal); err != nil {
			return fail(fmt.Errorf("fusion and balancing: %w", err))
		}
		res.fusion, res.balancing, res.fusionMS = plan.fusion, plan.balancing, p.cfg.Now().Sub(start).Milliseconds()
	}
	st, err := sink.NewStaging(root, final)
	if err != nil {
		return fail(err)
	}
	ok := false
	defer func() {
		if !ok {
			st.Abort()
		}
	}()
	comp := outputCompression(x)
	rejected, err := sink.Create(st.Dir, "rejected.jsonl", sink.CompressNone)
	if err != nil {
		return fail(err)
	}
	// Quarantined records are kept, masked, for human review, never mixed
	// with the training data.
	quarantine, err := sink.Create(st.Dir, "quarantine.jsonl", sink.CompressNone)
	if err != nil {
		rejected.Abort()
		return fail(err)
	}
	// Kept records are spooled per source and joined in source order, so
	// the data file does not depend on how the sources' records
	// interleaved in the log: same input and settings, same bytes.
	// Data records leave out their execution_id (the manifest and the
	// directory carry it), so two runs over the same input with the same
	// settings write the same bytes and can be compared by SHA-256.
	execField := []byte(`"execution_id":` + strconv.Quote(x.id) + `,`)
	dk, err := p.keyOf(x)
	if err != nil {
		rejected.Abort()
		quarantine.Abort()
		return fail(err)
	}
	spools, err := newSpools(st.Dir, len(x.req.Sources), x.id, dk)
	if err != nil {
		rejected.Abort()
		quarantine.Abort()
		return fail(err)
	}
	defer spools.remove()
	staged := 0
	rejectedBy := map[string]int64{}
	err = p.cfg.Kafka.ReadPartition(ctx, p.topics.Staged, x.partition, x.stagedFrom, func(r *kgo.Record) error {
		if string(r.Key) != x.id {
			return nil
		}
		m, err := wire.ReadMeta(r)
		if err != nil {
			return err
		}
		if m.Kind == wire.KindStaged || m.Kind == wire.KindRejected || m.Kind == wire.KindQuarantined {
			if r.Value, err = p.openStaged(x, m, r.Value); err != nil {
				return err
			}
		}
		switch m.Kind {
		case wire.KindStaged:
			i := staged
			staged++
			v := r.Value
			copies := int32(1)
			if plan != nil {
				if i >= len(plan.copies) {
					return fmt.Errorf("the staged topic changed between the output stage's passes")
				}
				if copies = plan.copies[i]; copies == 0 {
					return nil
				}
				if merged := plan.merged[int32(i)]; len(merged) > 0 {
					if v, err = withLineage(v, stage.Lineage{Stage: events.StageFusion, Version: fusion.Version, Merged: merged}); err != nil {
						return err
					}
				}
			}
			v = bytes.Replace(v, execField, nil, 1)
			if err := spools.write(m.Source, v); err != nil {
				return err
			}
			for k := 1; k < int(copies); k++ {
				rep, err := withLineage(v, stage.Lineage{Stage: events.StageBalancing, Version: balance.Version, Repeat: k})
				if err != nil {
					return err
				}
				if err := spools.write(m.Source, rep); err != nil {
					return err
				}
			}
			return nil
		case wire.KindRejected:
			var rj wire.Rejection
			if json.Unmarshal(r.Value, &rj) == nil {
				rejectedBy[rj.Stage]++
			}
			return rejected.WriteLine(r.Value)
		case wire.KindQuarantined:
			return quarantine.WriteLine(r.Value)
		}
		return nil
	})
	if err != nil {
		rejected.Abort()
		quarantine.Abort()
		return fail(fmt.Errorf("read staged records: %w", err))
	}
	rf, err := rejected.Close()
	if err != nil {
		quarantine.Abort()
		return fail(err)
	}
	qf, err := quarantine.Close()
	if err != nil {
		return fail(err)
	}
	formats := x.req.Output.Formats
	if len(formats) == 0 {
		formats = []string{sink.FormatJSONL}
	}
	data := sink.NewSplitWriter(st.Dir, formats, comp, x.req.Output.ShardBytes, x.req.Output.Splits)
	splits := map[string]int64{}
	if err := spools.drain(func(line []byte) error {
		if s := splitOf(line); s != "" {
			splits[s]++
		}
		return data.Write(line)
	}); err != nil {
		data.Abort()
		return fail(err)
	}
	dataFiles, err := data.Close()
	if err != nil {
		return fail(err)
	}
	res.records = data.Records()
	var quarantined int64
	if x.safety != nil {
		quarantined = x.safety.Quarantined
	}
	wantData := x.counts.Valid
	if plan != nil {
		wantData = 0
		for _, c := range plan.copies {
			wantData += int64(c)
		}
	}
	if int64(staged) != x.counts.Valid || res.records != wantData || rf.Records != x.counts.Rejected || qf.Records != quarantined {
		return fail(fmt.Errorf("staged topic holds %d valid (%d written), %d rejected and %d quarantined records, expected %d (%d), %d and %d",
			staged, res.records, rf.Records, qf.Records, x.counts.Valid, wantData, x.counts.Rejected, quarantined))
	}
	files := append(dataFiles, rf, qf)
	if x.safety != nil {
		b, err := json.MarshalIndent(safetyReport(x.safety), "", "  ")
		if err != nil {
			return fail(err)
		}
		sf, err := sink.WriteFileHashed(st.Dir, "safety_report.json", append(b, '\n'))
		if err != nil {
			return fail(err)
		}
		files = append(files, sf)
	}
	m := Manifest{ExecutionID: x.id, UserID: x.user, Request: redact(x.req), Counts: x.counts, Stages: p.stagesRun(x), Files: files, Safety: x.safety.Clone(),
		Quality: x.quality.Clone(), Bias: p.biasSummary(x), Fusion: res.fusion, FusionSettings: p.fusionFor(x),
		Balancing: res.balancing, BalancingSettings: balancingFor(x), RejectedByStage: rejectedBy}
	if len(splits) > 0 {
		m.Splits = splits
	}
	perSplit := data.Counts()
	for _, sp := range x.req.Output.Splits {
		m.OutputSplits = append(m.OutputSplits, ManifestSplit{Name: sp.Name, Fraction: sp.Fraction, Records: perSplit[sp.Name]})
	}
	for i, s := range x.req.Sources {
		ms := ManifestSource{Name: s.DisplayName(i), Type: s.Type, Valid: x.perSource[i], Output: x.perSource[i]}
		if i < len(x.noConsent) {
			ms.NoConsent = x.noConsent[i]
		}
		if plan != nil && plan.fusion != nil && plan.balancing == nil {
			ms.Output = plan.fusion.KeptPerSource[i]
		}
		m.Sources = append(m.Sources, ms)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fail(err)
	}
	mf, err := sink.WriteFileHashed(st.Dir, "manifest.json", append(mb, '\n'))
	if err != nil {
		return fail(err)
	}
	spools.remove()
	// Only this execution's own earlier attempt is ever replaced.
	o, exists, _ := sink.OwnerOf(final)
	if err := st.Commit(exists && o.ExecutionID == x.id); err != nil {
		return fail(err)
	}
	ok = true
	res.files, res.dir = append(files, mf), final
	if toS3 {
		if p.s3 == nil {
			if p.s3, err = sink.NewS3Client(ctx, p.cfg.OutputS3Region, p.cfg.OutputS3Endpoint); err != nil {
				return fail(err)
			}
		}
		names := make([]string, len(res.files))
		for i, f := range res.files {
			names[i] = f.Name
		}
		// An S3 prefix belongs to one execution for ever, like a directory.
		if s3dest, err = sink.ClaimS3(ctx, p.s3, s3dest, me, x.req.Output.Overwrite == events.OverwriteNewVersion); err != nil {
			return fail(err)
		}
		if err := sink.UploadDir(ctx, p.s3, s3dest, final, names, &me); err != nil {
			return fail(err)
		}
		_ = os.RemoveAll(final)
		res.dir = s3dest.String()
	}
	return res
}

// withLineage appends an entry to an encoded canonical record's lineage.
func withLineage(v []byte, l stage.Lineage) ([]byte, error) {
	var rec stage.Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, err
	}
	rec.Lineage = append(rec.Lineage, l)
	return json.Marshal(rec)
}

// spools hold one source's kept records each, in log order, until the data
// file is written in source order. With a data key, every spooled record
// is encrypted (AES-256-GCM, bound to its spool and line): record text is
// never at rest in plaintext inside the service. Records are framed by a
// 4-byte length.
type spools struct {
	dir   string
	files []*os.File
	ws    []*bufio.Writer
	lines []int64
	id    string
	dk    *crypt.DataKey
	buf   []byte
	ad    []byte
}

func newSpools(dir string, n int, id string, dk *crypt.DataKey) (*spools, error) {
	s := &spools{dir: dir, id: id, dk: dk}
	for i := 0; i < max(n, 1); i++ {
		f, err := os.CreateTemp(dir, ".spool-*")
		if err != nil {
			s.remove()
			return nil, err
		}
		s.files = append(s.files, f)
		s.ws = append(s.ws, bufio.NewWriterSize(f, 256<<10))
		s.lines = append(s.lines, 0)
	}
	return s, nil
}

func (s *spools) write(src int, v []byte) error {
	if src < 0 || src >= len(s.ws) {
		src = 0
	}
	if s.dk != nil {
		s.ad = crypt.AD(s.ad[:0], s.id, crypt.PlaceSpool, "", src, s.lines[src])
		s.buf = s.dk.Seal(s.buf[:0], v, s.ad)
		v = s.buf
	}
	s.lines[src]++
	w := s.ws[src]
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(v)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	_, err := w.Write(v)
	return err
}

// drain hands every spooled record to fn, source by source.
func (s *spools) drain(fn func([]byte) error) error {
	var frame, plain []byte
	for i, f := range s.files {
		if err := s.ws[i].Flush(); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r := bufio.NewReaderSize(f, 256<<10)
		for line := int64(0); ; line++ {
			var n [4]byte
			if _, err := io.ReadFull(r, n[:]); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("spool %d: %w", i, err)
			}
			size := int(binary.BigEndian.Uint32(n[:]))
			if cap(frame) < size {
				frame = make([]byte, size)
			}
			frame = frame[:size]
			if _, err := io.ReadFull(r, frame); err != nil {
				return fmt.Errorf("spool %d: %w", i, err)
			}
			v := frame
			if s.dk != nil {
				var err error
				s.ad = crypt.AD(s.ad[:0], s.id, crypt.PlaceSpool, "", i, line)
				if plain, err = s.dk.Open(plain[:0], frame, s.ad); err != nil {
					return fmt.Errorf("spool %d record %d: %w", i, line, err)
				}
				v = plain
			}
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *spools) remove() {
	for _, f := range s.files {
		f.Close()
		os.Remove(f.Name())
	}
	s.files, s.ws = nil, nil
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

// balancingFor is the execution's balancing settings, nil when the request
// asks for none.
func balancingFor(x *execState) *balance.Settings {
	s, ok, err := balance.ParseRequest(x.req.Processing["balancing"])
	if err != nil || !ok {
		return nil
	}
	return &s
}
