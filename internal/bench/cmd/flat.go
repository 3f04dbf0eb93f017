package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dspipe/dspipe/internal/gen"
)

// flatRun is one execution of the flat-memory measure.
type flatRun struct {
	allStagesResult
	InputGB float64
}

// flatRecords lists the sizes of the flat-memory measure.
var flatRecords string

// flatMemory runs one execution per size in flatRecords through the
// services as the pipeline runs them, with the stages that hold something
// per record on (fusion, output; acquisition, validation and
// standardisation) and the detectors off: they hold counters, not records,
// and would make the ten-million run take most of an hour. Conversations
// are cut to two turns: what the services hold per record does not depend
// on its length, and ten million full-length conversations fill more disk
// than the embedded broker's data directory here can take (27 GB after
// five of the ten million). Each size gets a fresh broker, services
// process and dataset (zstd-compressed), deleted after its run.
func flatMemory(ctx context.Context, dir, dbURL string) ([]flatRun, error) {
	var runs []flatRun
	for _, f := range strings.Split(flatRecords, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			continue
		}
		fmt.Fprintf(os.Stderr, "flat memory: generating %d conversations...\n", n)
		data := filepath.Join(dir, fmt.Sprintf("data-flat-%d", n))
		sum, err := gen.Write(gen.Options{Dir: data, Records: n, Sources: 3, Format: "chatml", Compression: "zstd", Seed: 21,
			DupRate: 0.05, NearDupRate: 0.05, MaxTurns: 2})
		if err != nil {
			return nil, err
		}
		var in int64
		for _, f := range sum.Files {
			if st, err := os.Stat(f); err == nil {
				in += st.Size()
			}
		}
		fmt.Fprintf(os.Stderr, "flat memory: %d conversations through the services...\n", n)
		r, err := allStages(ctx, dir, dbURL, sum.Files, "ENABLE_SAFETY_VALIDATION=false", "ENABLE_QUALITY_ASSESSMENT=false",
			"ENABLE_BIAS_DETECTION=false")
		_ = os.RemoveAll(data)
		if err != nil {
			return nil, fmt.Errorf("flat memory at %d: %w", n, err)
		}
		r.Records = n
		runs = append(runs, flatRun{r, float64(in) / 1e9})
	}
	return runs, nil
}

func writeFlat(b *strings.Builder, runs []flatRun) {
	b.WriteString("\n## Memory as the dataset grows\n\n")
	b.WriteString("One execution per size on a fresh broker (kfake, its own process) and services process (api, ingest, processor, projector), " +
		"generated conversations cut to two turns (what the services hold per record does not depend on its length; ten million " +
		"full-length conversations fill more disk than the embedded broker's data directory can take here) in three zstd-compressed " +
		"sources, 5% exact and 5% near duplicates planted. The stages that hold something " +
		"per record run (acquisition, validation, standardisation, fusion, output); the detectors (quality, safety, bias) are off: they " +
		"hold counters, not records, and would make the ten-million run take most of an hour. Target: services peak RSS < 300 MB at 1M and at 10M.\n\n")
	b.WriteString("| records | input (zstd) | end to end | records/s | removed as duplicates | written | services peak RSS | broker peak RSS |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		verdict := "met"
		if r.ServicesRSSMB >= 300 {
			verdict = "NOT met"
		}
		fmt.Fprintf(b, "| %d | %.2f GB | %.1f s | %.0f | %d | %d | %.0f MB (%s) | %.0f MB |\n", r.Records, r.InputGB, r.Seconds,
			float64(r.Records)/r.Seconds, r.RemovedDuplicates, r.Output, r.ServicesRSSMB, verdict, r.BrokerRSSMB)
	}
	b.WriteString("\n")
}

// flatOnlyRun runs the flat-memory measure alone and prints its section.
func flatOnlyRun() error {
	return onlySection(func(ctx context.Context, dir, dbURL string, b *strings.Builder) error {
		runs, err := flatMemory(ctx, dir, dbURL)
		if err == nil {
			writeFlat(b, runs)
		}
		return err
	})
}
