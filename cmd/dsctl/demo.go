package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/gen"
)

// cmdDemo generates a dataset, runs every service embedded, processes the
// dataset through the API with a live progress bar, and prints statistics.
func cmdDemo(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "demo", "working directory for data, broker and output")
	asJSON := fs.Bool("json", false, "print the whole statistics as JSON instead of a summary")
	records := fs.Int("records", 20000, "conversations to generate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(abs, "broker")); err != nil {
		return err
	}
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	brokerPort, err := freePort()
	if err != nil {
		return err
	}
	env := map[string]string{
		"DSPIPE_BROKER_DIR":  filepath.Join(abs, "broker"),
		"DSPIPE_BROKER_PORT": strconv.Itoa(brokerPort),
		"DSPIPE_API_ADDR":    "127.0.0.1:" + strconv.Itoa(apiPort),
		"DSPIPE_LOCAL_ROOTS": abs,
		"DSPIPE_OUTPUT_ROOT": filepath.Join(abs, "out"),
		"DSPIPE_LOG_LEVEL":   logLevel(getenv),
		"KAFKA_BROKERS":      "",
	}
	demoEnv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	fmt.Fprintf(os.Stderr, "generating %d conversations in three sources (ChatML, ShareGPT, ESConv; zstd) plus a small export with two broken lines...\n", *records)
	sum, err := gen.Write(gen.Options{Dir: filepath.Join(abs, "data"), Records: *records, Sources: 3, Format: "mixed",
		Compression: "zstd", Seed: 42, DupRate: 0.03, NearDupRate: 0.03})
	if err != nil {
		return err
	}
	// A small hand-made export with two broken lines shows the rejected file.
	legacy := filepath.Join(abs, "data", "legacy-export.jsonl")
	if err := os.WriteFile(legacy, []byte(legacyExport), 0o644); err != nil {
		return err
	}
	sum.Files = append(sum.Files, legacy)
	cfg, err := loadConfig(demoEnv)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- app.RunEmbedded(sctx, cfg, app.Logger(cfg), app.All...) }()

	c := client.New("http://"+cfg.APIAddr, "dev-admin-token")
	if err := waitHealthy(ctx, c, done); err != nil {
		return err
	}
	req := events.Request{Output: events.OutputSpec{Formats: []string{"jsonl"}, Compression: "zstd"}}
	for i, f := range sum.Files {
		req.Sources = append(req.Sources, events.SourceSpec{Name: fmt.Sprintf("source-%d", i+1), Type: "local",
			Config: map[string]string{"path": f}, Priority: i + 1})
	}
	stats, jobErr := watchJob(ctx, c, req, true, *asJSON)
	if dir, ok := stats["output_dir"].(string); ok && jobErr == nil {
		if b, err := os.ReadFile(filepath.Join(dir, "rejected.jsonl")); err == nil && len(b) > 0 {
			// The first few; the file has them all.
			lines := strings.SplitAfter(string(b), "\n")
			n := len(lines)
			if lines[n-1] == "" {
				n--
			}
			fmt.Fprintf(os.Stderr, "rejected records: %d (position and reason, never content; all in %s):\n%s", n,
				filepath.Join(dir, "rejected.jsonl"), strings.Join(lines[:min(n, 10)], ""))
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return errors.Join(jobErr, err)
	}
	return jobErr
}

func waitHealthy(ctx context.Context, c *client.Client, done <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("services stopped: %w", err)
		default:
		}
		var out map[string]any
		if err := c.Do(ctx, "GET", "/health", nil, &out); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("services did not become healthy within 60s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func logLevel(getenv func(string) string) string {
	if v := getenv("DSPIPE_LOG_LEVEL"); v != "" {
		return v
	}
	return "warn"
}

// legacyExport is a short ShareGPT export with one truncated line and one
// line in a shape the pipeline does not know.
const legacyExport = `{"conversations":[{"from":"human","value":"I can't focus at work lately."},{"from":"gpt","value":"That sounds frustrating. When did you first notice it?"}]}
{"conversations":[{"from":"human","value":"My sleep has been off for weeks
{"prompt_text":"unknown shape","reply":"this format is not supported"}
{"conversations":[{"from":"human","value":"Thanks for listening."},{"from":"gpt","value":"I'm glad you reached out."}]}
`
