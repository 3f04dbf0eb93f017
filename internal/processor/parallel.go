package processor

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	json "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/quality"
	"github.com/dspipe/dspipe/internal/safety"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/wire"
)

// outcome is the pure result of the per-record stages for one raw record:
// the encoded canonical record, or the stage and reason of its rejection.
type outcome struct {
	ready  bool
	value  []byte
	stage  string
	reason string
	safety *safety.Outcome // set when the safety stage ran
	// quality is set when the quality stage ran; mentions are the bias
	// stage's findings for a record that goes to output.
	quality  *quality.Result
	biasRan  bool
	mentions []bias.Mention
	// withdrawn is the pseudonym of a data subject whose consent this
	// record says was withdrawn: the subject is to be erased.
	withdrawn string
	// meta is the raw record's metadata, read once here (hasMeta).
	meta    wire.Meta
	hasMeta bool
}

// stageRun is an execution's resolved settings for the optional per-record
// stages; nil turns a stage off.
type stageRun struct {
	// keepSourceIDs leaves metadata.source_id as the input had it; by
	// default it becomes a keyed hash (output.keep_source_ids).
	keepSourceIDs bool
	// requireConsent rejects records whose source's consent field does
	// not say consent was given (processing.require_consent).
	requireConsent bool
	// erased maps erased record ids and source-id hashes to their erasure;
	// erasedErr says they could not be read (the record is not processed).
	erased    map[string]string
	erasedErr error
	safety    *safetyRun
	quality   *quality.Settings
	bias      *bias.Settings
}

// biasMention is a mention as annotations.bias lists it: which message,
// never offsets (masking moves them) or text.
type biasMention struct {
	Message  int    `json:"message"`
	Axis     string `json:"axis"`
	Group    string `json:"group"`
	Negative bool   `json:"negative,omitempty"`
}

// transform runs the per-record stages on one record. It touches no
// shared state, so records of one poll are transformed in parallel.
func transform(raw []byte, lim stage.Limits, idKey []byte, spec events.SourceSpec, m wire.Meta, execID string, run *stageRun, dk *crypt.DataKey) outcome {
	if m.Kind == wire.KindBad {
		return rejected(events.StageAcquisition, m.Err)
	}
	if dk != nil {
		plain, err := dk.Open(nil, raw, crypt.AD(nil, execID, crypt.PlaceRaw, m.Kind, m.Source, m.Position))
		if err != nil {
			return rejected(events.StageAcquisition, "the record does not decrypt with its execution's data key (altered or moved)")
		}
		raw = plain
	}
	in, err := stage.Validate(raw, lim)
	if err != nil {
		return rejected(events.StageValidation, err.Error())
	}
	uri := m.Object
	if uri == "" {
		uri = spec.Config["path"]
	}
	prov := stage.Provenance{Name: spec.DisplayName(m.Source), Type: spec.Type, URI: uri, Priority: spec.Priority, Position: m.Position}
	rec, err := stage.Standardize(in, prov, idKey)
	if err != nil {
		return rejected(events.StageStandardization, err.Error())
	}
	sid := ""
	if id := rec.Metadata["source_id"]; id != "" {
		sid = stage.SourceIDHash(idKey, prov.Name, id)
		if !run.keepSourceIDs {
			rec.Metadata["source_id"] = sid
		}
	}
	if o, stop := admit(raw, spec, &rec, sid, run); stop {
		return o
	}
	return runStages(&rec, run)
}

func rejected(stage, reason string) outcome {
	return outcome{ready: true, stage: stage, reason: reason}
}

// admit rejects a record without consent (when the request requires it)
// or that an erasure names.
func admit(raw []byte, spec events.SourceSpec, rec *stage.Record, sid string, run *stageRun) (outcome, bool) {
	if run.requireConsent {
		if why, withdrawn := consentMissing(raw, spec); why != "" {
			o := rejected(events.StageValidation, NoConsent+": "+why)
			if withdrawn { // the data subject: its source id, else the record
				o.withdrawn = sid
				if o.withdrawn == "" {
					o.withdrawn = rec.ID
				}
			}
			return o, true
		}
	}
	if er, ok := run.erased[rec.ID]; ok {
		return rejected(events.StageValidation, Erased+": "+er), true
	}
	if er, ok := run.erased[sid]; ok && sid != "" {
		return rejected(events.StageValidation, Erased+": "+er), true
	}
	return outcome{}, false
}

// runStages runs quality, bias and safety on a standardized record and
// encodes it.
func runStages(rec *stage.Record, run *stageRun) outcome {
	var qr *quality.Result
	if run.quality != nil {
		r := quality.Assess(rec.Messages, rec.EmptyDropped)
		qr = &r
		annotate(rec, "quality", struct {
			Score    float64            `json:"score"`
			Signals  map[string]float64 `json:"signals"`
			Failed   []string           `json:"failed"`
			Language string             `json:"language"`
		}{r.Score, r.Signals, r.Failed, r.Language})
		rec.Lineage = append(rec.Lineage, stage.Lineage{Stage: events.StageQuality, Version: quality.Version})
	}
	// Mentions are found on the text as written, before masking.
	mentions, listed := detectBias(rec, run)
	var so *safety.Outcome
	if run.safety != nil {
		o := safety.Apply(rec, run.safety.Settings, run.safety.salt)
		if o.Blocked != "" {
			return outcome{ready: true, stage: events.StageSafety, reason: o.Blocked, safety: &o, quality: qr}
		}
		so = &o
	}
	// A record below the quality threshold is rejected, unless the safety
	// stage sends it to review: crisis content is never dropped for its
	// form.
	if qr != nil && qr.Score < run.quality.MinScore && (so == nil || !so.Quarantined) {
		return outcome{ready: true, stage: events.StageQuality, safety: so, quality: qr,
			reason: fmt.Sprintf("quality score %.2f is below min_score %.2f: %s", qr.Score, run.quality.MinScore, strings.Join(qr.Failed, ", "))}
	}
	if run.bias != nil {
		annotate(rec, "bias", struct {
			Mentions []biasMention `json:"mentions"`
		}{listed})
		rec.Lineage = append(rec.Lineage, stage.Lineage{Stage: events.StageBias, Version: bias.Version})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return rejected(events.StageStandardization, "cannot encode the canonical record")
	}
	return outcome{ready: true, value: b, safety: so, quality: qr, biasRan: run.bias != nil, mentions: mentions}
}

// detectBias finds the demographic mentions of every message (none when
// the bias stage is off).
func detectBias(rec *stage.Record, run *stageRun) ([]bias.Mention, []biasMention) {
	if run.bias == nil {
		return nil, nil
	}
	var mentions []bias.Mention
	listed := []biasMention{}
	for i, msg := range rec.Messages {
		for _, x := range bias.Detect(msg.Content) {
			mentions = append(mentions, x)
			listed = append(listed, biasMention{i, x.Axis, x.Group, x.Negative})
		}
	}
	return mentions, listed
}

// Erased is the reason of records an erasure names.
const Erased = "erased"

// NoConsent is the reason of records rejected for want of consent.
const NoConsent = "no_consent"

// defaultConsent are the values that mean consent given when a source
// names none.
var defaultConsent = []string{"true", "yes", "1", "granted"}

// defaultWithdrawn are the values that mean consent withdrawn when a
// source names none.
var defaultWithdrawn = []string{"withdrawn", "revoked"}

// consentMissing says why a record's consent field does not record consent
// given, or "" when it does, and whether it says consent was withdrawn.
func consentMissing(raw []byte, spec events.SourceSpec) (string, bool) {
	if spec.ConsentField == "" {
		return "the source names no consent_field", false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return "the record is not a JSON object", false
	}
	v, ok := top[spec.ConsentField]
	if !ok {
		return fmt.Sprintf("field %q is absent", spec.ConsentField), false
	}
	var got string
	var str string
	if json.Unmarshal(v, &str) == nil {
		got = str
	} else {
		got = string(v) // true, false, a number
	}
	got = strings.ToLower(strings.TrimSpace(got))
	values := spec.ConsentValues
	if len(values) == 0 {
		values = defaultConsent
	}
	for _, c := range values {
		if got == strings.ToLower(c) {
			return "", false
		}
	}
	withdrawn := spec.ConsentWithdrawn
	if len(withdrawn) == 0 {
		withdrawn = defaultWithdrawn
	}
	for _, c := range withdrawn {
		if got == strings.ToLower(c) {
			return fmt.Sprintf("field %q says consent was withdrawn", spec.ConsentField), true
		}
	}
	return fmt.Sprintf("field %q does not say consent was given", spec.ConsentField), false
}

// annotate sets annotations[key] to v encoded.
func annotate(rec *stage.Record, key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	if rec.Annotations == nil {
		rec.Annotations = map[string]json.RawMessage{}
	}
	rec.Annotations[key] = b
}

// precompute transforms every raw record of running executions in recs on
// all cores; the sequential pass then applies the outcomes in log order.
func (p *Processor) precompute(recs []*kgo.Record) []outcome {
	out := make([]outcome, len(recs))
	type job struct {
		i    int
		spec events.SourceSpec
		m    wire.Meta
		id   string
		run  *stageRun
		dk   *crypt.DataKey
	}
	var jobs []job
	for i, r := range recs {
		if r.Topic != p.topics.Raw {
			continue
		}
		x := p.execs[string(r.Key)]
		if x == nil || x.status != statusRunning {
			continue
		}
		m, err := wire.ReadMeta(r)
		if err != nil || (m.Kind != wire.KindRecord && m.Kind != wire.KindBad) || m.Source < 0 || m.Source >= len(x.req.Sources) {
			continue
		}
		dk, err := p.keyOf(x)
		if err != nil || p.stagesFor(x).erasedErr != nil {
			continue // record() tries again and reports the failure
		}
		jobs = append(jobs, job{i: i, spec: x.req.Sources[m.Source], m: m, id: x.id, run: p.stagesFor(x), dk: dk})
	}
	workers := runtime.GOMAXPROCS(0)
	if len(jobs) < 64 || workers < 2 {
		for _, j := range jobs {
			out[j.i] = transform(recs[j.i].Value, p.cfg.Limits, p.cfg.RecordIDKey, j.spec, j.m, j.id, j.run, j.dk)
			out[j.i].meta, out[j.i].hasMeta = j.m, true
		}
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(jobs) + workers - 1) / workers
	for w := 0; w < len(jobs); w += chunk {
		part := jobs[w:min(w+chunk, len(jobs))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range part {
				out[j.i] = transform(recs[j.i].Value, p.cfg.Limits, p.cfg.RecordIDKey, j.spec, j.m, j.id, j.run, j.dk)
				out[j.i].meta, out[j.i].hasMeta = j.m, true
			}
		}()
	}
	wg.Wait()
	return out
}
