package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/source"
)

// cmdRead reads one source without the services (a dry run of acquisition)
// and reports records, records that cannot be framed, bytes, speed and the
// process's peak memory. It prints no record content.
func cmdRead(ctx context.Context, args []string, getenv func(string) string) error {
	app.SetMemoryLimit(getenv)
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	typ := fs.String("type", "local", "source type: local, s3, google_drive, huggingface")
	format := fs.String("format", "", "force a format: jsonl, json, csv, parquet")
	var conf kv
	fs.Var(&conf, "c", "source setting key=value (repeatable), e.g. -c path=data/x.jsonl or -c bucket=b -c key=k")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 1 && *typ == "local" && conf["path"] == "" {
		conf = kv{"path": fs.Arg(0)}
	}
	if *typ == "local" && conf["path"] != "" {
		// The command line's relative paths are relative to here.
		abs, err := filepath.Abs(conf["path"])
		if err != nil {
			return err
		}
		conf["path"] = abs
	}
	spec := events.SourceSpec{Type: *typ, Config: conf}
	env := app.SourceEnv(cfg)
	src, err := source.New(ctx, spec, env)
	if err != nil {
		return err
	}
	start := time.Now()
	objs, err := src.List(ctx)
	if err != nil {
		return err
	}
	var records, bad, bytes int64
	opt := source.ReadOptions{Format: *format, MaxRecord: cfg.MaxRecordBytes, Attempts: 3}
	for _, o := range objs {
		err := source.Each(ctx, src, o, opt, func(it source.Item, c source.Counter) error {
			if it.Err != "" {
				bad++
			} else {
				records++
			}
			bytes += c.Take()
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", o.URI, err)
		}
	}
	secs := time.Since(start).Seconds()
	out := map[string]any{
		"objects": len(objs), "records": records, "unframed": bad, "bytes": bytes,
		"seconds": round(secs), "mb_per_s": round(float64(bytes) / 1e6 / secs), "records_per_s": round(float64(records) / secs),
		"peak_rss_mb": peakRSSMB(),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func round(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// kv collects -c key=value flags.
type kv map[string]string

func (m *kv) String() string { return fmt.Sprint(map[string]string(*m)) }

func (m *kv) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if *m == nil {
		*m = kv{}
	}
	(*m)[k] = v
	return nil
}

// peakRSSMB is this process's peak resident set (VmHWM), in MB.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return round(kb / 1024)
		}
	}
	return 0
}
