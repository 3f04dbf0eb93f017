package processor

import (
	"strings"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/pipeline"
	"github.com/dspipe/dspipe/internal/stage"
)

// The manifest: what an output directory holds and how it was made.

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
	for _, a := range p.stagesFor(x).stages {
		v, set := a.Run.Manifest()
		st = append(st, ManifestStage{a.Name, v, set})
	}
	for _, a := range p.datasetsFor(x) {
		v, set := a.Run.Manifest()
		st = append(st, ManifestStage{a.Name, v, set})
	}
	return append(st, ManifestStage{events.StageOutput, OutputVersion, x.req.Output})
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

// manifest describes the output the writer holds.
func (p *Processor) manifest(x *execState, plan *dataPlan, res outputResult, w *outputWriter, inputSplits map[string]int64) Manifest {
	sum := p.summaries(x)
	m := Manifest{ExecutionID: x.id, UserID: x.user, Request: redact(x.req), Counts: x.counts, Stages: p.stagesRun(x), Files: w.files,
		Safety: sum.Safety, Quality: sum.Quality, Bias: sum.Bias, Fusion: res.fusion, FusionSettings: settingsOf[fusion.Settings](p.datasetsFor(x), events.StageFusion),
		Balancing: res.balancing, BalancingSettings: settingsOf[balance.Settings](p.datasetsFor(x), events.StageBalancing), RejectedByStage: w.rejectedBy}
	if len(inputSplits) > 0 {
		m.Splits = inputSplits
	}
	for _, sp := range x.req.Output.Splits {
		m.OutputSplits = append(m.OutputSplits, ManifestSplit{Name: sp.Name, Fraction: sp.Fraction, Records: w.splitCounts[sp.Name]})
	}
	for i, s := range x.req.Sources {
		ms := ManifestSource{Name: s.DisplayName(i), Type: s.Type, Valid: x.perSource[i], Output: x.perSource[i]}
		if i < len(x.noConsent) {
			ms.NoConsent = x.noConsent[i]
		}
		if plan != nil && plan.Fusion != nil && plan.Balancing == nil {
			ms.Output = plan.Fusion.KeptPerSource[i]
		}
		m.Sources = append(m.Sources, ms)
	}
	return m
}

// settingsOf is the resolved settings of the named dataset stage, nil when
// it does not run.
func settingsOf[T any](active []pipeline.DatasetActive, name string) *T {
	for _, a := range active {
		if a.Name == name {
			if _, set := a.Run.Manifest(); set != nil {
				if t, ok := set.(T); ok {
					return &t
				}
			}
		}
	}
	return nil
}
