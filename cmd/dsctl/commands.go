package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only when DSPIPE_PPROF_ADDR is set
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/app"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/config"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/gen"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/projector"
	"github.com/dspipe/dspipe/internal/store"
)

func loadConfig(getenv func(string) string) (config.Config, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

const upUsage = `usage: dsctl up

Runs every service (api, ingest, processor, projector) in this process, with
the embedded broker unless KAFKA_BROKERS names one. It takes no flags: the
configuration is the environment, the same for every service (README,
Configuration). The API and the dashboard listen on DSPIPE_API_ADDR
(127.0.0.1:8080), with /livez, /readyz and /metrics beside them.
`

func cmdUp(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
			fmt.Print(upUsage)
			return nil
		}
		fmt.Fprint(os.Stderr, upUsage)
		return fmt.Errorf("up takes no arguments (got %q); it is configured by the environment", args[0])
	}
	app.SetMemoryLimit(getenv)
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := app.Logger(cfg)
	if addr := getenv("DSPIPE_PPROF_ADDR"); addr != "" {
		// Profiling for operators, on an address they choose (keep it on loopback).
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	if !cfg.Embedded {
		return app.Run(ctx, cfg, log, app.All...)
	}
	return app.RunEmbedded(ctx, cfg, log, app.All...)
}

func cmdBroker(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	port := fs.Int("port", cfg.BrokerPort, "port to listen on")
	dir := fs.String("data-dir", cfg.BrokerDataDir, "data directory (persists across graceful restarts)")
	sync := fs.Bool("sync", false, "fsync every produced batch before acknowledging it: a SIGKILL then loses nothing acknowledged (slower)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := kafka.StartEmbeddedSync(*dir, *port, *sync)
	if err != nil {
		return err
	}
	defer b.Close()
	if b.Repaired > 0 {
		fmt.Printf("broker: the previous run stopped uncleanly; closed %d open transactions with abort markers\n", b.Repaired)
	}
	fmt.Printf("broker listening on %s (data dir %s)\n", strings.Join(b.Addrs(), ","), *dir)
	<-ctx.Done()
	return nil
}

func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	o := gen.Options{}
	fs.StringVar(&o.Dir, "out", "data", "output directory")
	fs.IntVar(&o.Records, "records", 1000, "number of conversations")
	fs.IntVar(&o.Sources, "sources", 1, "number of source files")
	fs.StringVar(&o.Format, "format", "chatml", "chatml, sharegpt, esconv, alpaca, qa (CSV), or mixed")
	fs.StringVar(&o.Compression, "compression", "none", "none, gzip or zstd")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same data)")
	fs.Float64Var(&o.DupRate, "dup-rate", 0.05, "share of exact duplicates across sources")
	fs.Float64Var(&o.NearDupRate, "near-dup-rate", 0.05, "share of near duplicates across sources")
	fs.StringVar(&o.Skew, "skew", "", "make every demographic mention this group (e.g. woman)")
	fs.BoolVar(&o.Array, "array", false, "write JSON formats as JSON arrays (.json) instead of JSON lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Seed = *seed
	sum, err := gen.Write(o)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(sum)
}

// apiClient builds a client from DSPIPE_API_URL and DSPIPE_TOKEN.
func apiClient(getenv func(string) string) *client.Client {
	base := getenv("DSPIPE_API_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	tok := getenv("DSPIPE_TOKEN")
	if tok == "" {
		tok = strings.SplitN(config.DevToken, ":", 2)[0]
	}
	return client.New(base, tok)
}

type sourceFlags []string

func (s *sourceFlags) String() string     { return strings.Join(*s, ",") }
func (s *sourceFlags) Set(v string) error { *s = append(*s, v); return nil }

func cmdProcess(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("process", flag.ContinueOnError)
	var sources sourceFlags
	fs.Var(&sources, "source", "local source as [name=]path; repeat for several (priority follows order)")
	reqFile := fs.String("request", "", "a JSON processing request file instead of --source flags")
	compression := fs.String("compression", "none", "output compression: none, gzip or zstd")
	dest := fs.String("destination", "", "output directory name under the output root, or s3://bucket/prefix")
	formats := fs.String("formats", "jsonl", "data formats, comma-separated: jsonl, csv, parquet")
	shard := fs.Int64("shard-bytes", 0, "split data files into shards of about this many bytes (0: one file per format)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	asJSON := fs.Bool("json", false, "print the whole statistics as JSON instead of a summary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var req events.Request
	if *reqFile != "" {
		b, err := os.ReadFile(*reqFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &req); err != nil {
			return fmt.Errorf("%s: %w", *reqFile, err)
		}
	} else {
		if len(sources) == 0 {
			return errors.New("give at least one --source or a --request file")
		}
		for i, s := range sources {
			name, path := "", s
			if k, v, ok := strings.Cut(s, "="); ok {
				name, path = k, v
			}
			req.Sources = append(req.Sources, events.SourceSpec{Name: name, Type: "local", Config: map[string]string{"path": path}, Priority: i + 1})
		}
		req.Output = events.OutputSpec{Formats: strings.Split(*formats, ","), Compression: *compression, Destination: *dest, ShardBytes: *shard}
	}
	c := apiClient(getenv)
	_, err := watchJob(ctx, c, req, !*quiet, *asJSON)
	return err
}

// watchJob submits, renders progress, prints the statistics and returns
// them; a failed or cancelled execution is an error.
func watchJob(ctx context.Context, c *client.Client, req events.Request, bar, asJSON bool) (map[string]any, error) {
	id, err := c.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "submitted %s\n", id)
	final := ""
	var failure string
	var pb progressBar
	err = c.Watch(ctx, id, 0, func(m client.Message) error {
		if bar && pb.update(m) {
			pb.render(time.Now())
		}
		if m.Terminal() {
			final, _ = m.Data["status"].(string)
			failure, _ = m.Data["error"].(string)
		}
		return nil
	})
	if bar {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return nil, err
	}
	// The projector may trail the live feed by a moment.
	var stats map[string]any
	for i := 0; i < 100; i++ {
		stats, err = c.Statistics(ctx, id)
		if err == nil && stats["status"] == final {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if asJSON {
		out, _ := json.MarshalIndent(stats, "", "  ")
		fmt.Println(string(out))
	} else {
		fmt.Print(summary(stats))
	}
	if final != "completed" {
		return stats, fmt.Errorf("execution %s %s: %s", id, final, failure)
	}
	return stats, nil
}

// summary is the end of a run in a few lines: records in, valid, rejected
// by stage, held for review, duplicates removed, rows out and where, and
// the safety figures. The whole statistics are `-json` or `dsctl stats`.
func summary(st map[string]any) string {
	num := func(m map[string]any, k string) int64 {
		if v, ok := m[k].(float64); ok {
			return int64(v)
		}
		return 0
	}
	obj := func(m map[string]any, k string) map[string]any {
		v, _ := m[k].(map[string]any)
		return v
	}
	var b strings.Builder
	rec := obj(st, "records")
	fmt.Fprintf(&b, "\nexecution %v: %v\n", st["execution_id"], st["status"])
	fmt.Fprintf(&b, "  records in         %d\n", num(rec, "total"))
	fmt.Fprintf(&b, "  valid              %d\n", num(rec, "valid"))
	fmt.Fprintf(&b, "  rejected           %d", num(rec, "rejected"))
	// By stage, from rejected.jsonl when the output is on this machine.
	if dir, ok := st["output_dir"].(string); ok && dir != "" {
		if f, err := os.Open(filepath.Join(dir, "rejected.jsonl")); err == nil {
			byStage := map[string]int{}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				var r struct {
					Stage string `json:"stage"`
				}
				if json.Unmarshal(sc.Bytes(), &r) == nil {
					byStage[r.Stage]++
				}
			}
			f.Close()
			var parts []string
			for _, stage := range []string{events.StageAcquisition, events.StageValidation, events.StageStandardization, events.StageQuality,
				events.StageSafety, events.StageBias} {
				if n := byStage[stage]; n > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", stage, n))
				}
			}
			if len(parts) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
			}
		}
	}
	b.WriteString("\n")
	if sf := obj(st, "safety"); sf != nil {
		fmt.Fprintf(&b, "  held for review    %d (crisis and safety flags; acknowledge with dsctl reviews)\n", num(sf, "quarantined"))
		fmt.Fprintf(&b, "  identifiers masked %d in %d records\n", num(sf, "pii_found"), num(sf, "records_with_pii"))
		if n := num(sf, "blocked"); n > 0 {
			fmt.Fprintf(&b, "  blocked            %d (never written)\n", n)
		}
	}
	if fu := obj(st, "fusion"); fu != nil {
		fmt.Fprintf(&b, "  duplicates removed %d exact, %d near\n", num(fu, "removed_exact"), num(fu, "removed_near"))
	}
	var rows int64
	if files, ok := st["output_files"].([]any); ok {
		for _, x := range files {
			fm, _ := x.(map[string]any)
			if name, _ := fm["name"].(string); strings.HasPrefix(name, "data") {
				rows += num(fm, "records")
			}
		}
	}
	fmt.Fprintf(&b, "  output rows        %d\n", rows)
	if dir, ok := st["output_dir"].(string); ok && dir != "" {
		fmt.Fprintf(&b, "  output             %s\n", dir)
	}
	b.WriteString("  (all figures: dsctl stats <id>, or -json)\n")
	return b.String()
}

// progressBar is the live line of dsctl process and demo: the latest
// progress figures (progress never goes back), with the reviews and
// alerts counted beside them rather than shown as progress.
type progressBar struct {
	pct               float64
	stage             string
	done, total, rate float64
	eta               time.Time
	held, alerts      int
}

// update takes one feed message; false when the line need not change.
func (p *progressBar) update(m client.Message) bool {
	switch m.EventType {
	case "dataset_review":
		if m.Data["status"] == "open" {
			p.held++
		}
		return true
	case "dataset_alert":
		p.alerts++
		return true
	case "dataset_audit":
		return false
	case "dataset_status":
		if st, ok := m.Data["status"].(string); ok {
			p.stage = st
		}
	default:
		if st, ok := m.Data["current_stage"].(string); ok && st != "" {
			p.stage = st
		}
		if s, ok := m.Data["estimated_completion"].(string); ok {
			p.eta, _ = time.Parse(time.RFC3339Nano, s)
		}
	}
	if pct, ok := m.Data["overall_progress"].(float64); ok && pct > p.pct {
		p.pct = pct
	}
	if mt, ok := m.Data["metrics"].(map[string]any); ok {
		p.done, _ = mt["records_processed"].(float64)
		p.total, _ = mt["total_records"].(float64)
		p.rate, _ = mt["processing_rate"].(float64)
	}
	return true
}

func (p *progressBar) render(now time.Time) {
	const width = 30
	n := min(int(p.pct/100*width), width)
	eta := "-"
	if !p.eta.IsZero() && p.eta.After(now) && p.pct < 100 {
		eta = p.eta.Sub(now).Round(time.Second).String()
	}
	total := "?" // not known until acquisition ends
	if p.total > 0 {
		total = fmt.Sprintf("%.0f", p.total)
	}
	fmt.Fprintf(os.Stderr, "\r[%s%s] %5.1f%% %-18s %9.0f/%-9s rec %7.0f rec/s ETA %-7s held %-5d alerts %-5d",
		strings.Repeat("#", n), strings.Repeat("-", width-n), p.pct, p.stage, p.done, total, p.rate, eta, p.held, p.alerts)
}

func cmdShow(ctx context.Context, what string, args []string, getenv func(string) string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: dsctl %s <execution_id>", what)
	}
	c := apiClient(getenv)
	var out map[string]any
	var err error
	if what == "status" {
		out, err = c.Status(ctx, args[0])
	} else {
		out, err = c.Statistics(ctx, args[0])
	}
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	return nil
}

func cmdProjector(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("projector rebuild", flag.ContinueOnError)
	schema := fs.String("schema", "rebuild", "schema to rebuild into (dropped first)")
	if len(args) == 0 || args[0] != "rebuild" {
		return errors.New("usage: dsctl projector rebuild [-schema name]")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if err := store.DropSchema(ctx, cfg.DatabaseURL, *schema); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, *schema)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := projector.Rebuild(ctx, cfg.Kafka, st, app.Logger(cfg))
	if err != nil {
		return err
	}
	// Data keys are not a projection: they come from the live schema.
	k, err := st.CopyDataKeys(ctx, cfg.DBSchema)
	if err != nil {
		return err
	}
	fmt.Printf("rebuilt schema %s from %d events, with %d data keys from %s; point DSPIPE_DB_SCHEMA=%s at it to switch\n", *schema, n, k, cfg.DBSchema, *schema)
	return nil
}

// cmdKeys manages the local keyring that wraps data keys.
func cmdKeys(args []string, getenv func(string) string) error {
	const usage = "usage: dsctl keys init|list|rotate|remove <version>   (the keyring at DSPIPE_KEYRING)"
	if len(args) == 0 {
		return errors.New(usage)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.KMSKeyID != "" {
		return errors.New("DSPIPE_KMS_KEY_ID is set: data keys are wrapped by KMS; rotate the KMS key there")
	}
	k, created, err := crypt.LoadKeyring(cfg.Keyring, args[0] == "init")
	if args[0] == "init" && err == nil {
		if !created {
			return fmt.Errorf("%s exists; a keyring is never overwritten", cfg.Keyring)
		}
		fmt.Printf("wrote %s (mode 0600) with version 1\n", cfg.Keyring)
		return nil
	}
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		vs, active := k.Versions()
		sort.Ints(vs)
		for _, v := range vs {
			mark := ""
			if v == active {
				mark = " (active)"
			}
			fmt.Printf("version %d%s\n", v, mark)
		}
		return nil
	case "rotate":
		v, err := k.Rotate()
		if err != nil {
			return err
		}
		fmt.Printf("version %d is active: new data keys are wrapped by it; older versions keep opening older data. Restart ingest and processor to use it.\n", v)
		return nil
	case "remove":
		if len(args) != 2 {
			return errors.New(usage)
		}
		v, err := strconv.Atoi(args[1])
		if err != nil {
			return errors.New(usage)
		}
		if err := k.Remove(v); err != nil {
			return err
		}
		fmt.Printf("version %d removed: every execution whose data key it wrapped is unreadable for good\n", v)
		return nil
	}
	return errors.New(usage)
}

func cmdMigrate(ctx context.Context, getenv func(string) string) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DBSchema)
	if err != nil {
		return err
	}
	st.Close()
	fmt.Println("migrations applied to schema", cfg.DBSchema)
	return nil
}

// cmdReviews lists the review queue or acknowledges one review:
//
//	dsctl reviews [-status open|acknowledged|all] [-execution ID]
//	dsctl reviews ack <execution_id> <review> -note "what was decided"
func cmdReviews(ctx context.Context, args []string, getenv func(string) string) error {
	c := apiClient(getenv)
	if len(args) > 0 && args[0] == "ack" {
		fs := flag.NewFlagSet("reviews ack", flag.ContinueOnError)
		note := fs.String("note", "", "what was decided (part of the audit trail: no personal data)")
		if len(args) < 3 {
			return errors.New(`usage: dsctl reviews ack <execution_id> <review> -note "what was decided"`)
		}
		if err := fs.Parse(args[3:]); err != nil {
			return err
		}
		var out map[string]any
		if err := c.DoV1(ctx, "POST", "/reviews/"+args[1]+"/"+args[2]+"/acknowledge", map[string]string{"note": *note}, &out); err != nil {
			return err
		}
		fmt.Printf("review %s of %s: %v\n", args[2], args[1], out["status"])
		return nil
	}
	fs := flag.NewFlagSet("reviews", flag.ContinueOnError)
	status := fs.String("status", "open", "open, acknowledged or all")
	exec := fs.String("execution", "", "only this execution")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := "?status=" + *status
	if *exec != "" {
		q += "&execution_id=" + *exec
	}
	var out map[string]any
	if err := c.DoV1(ctx, "GET", "/reviews"+q, nil, &out); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	return nil
}

// cmdErase posts an erasure: records named by output record id (-record)
// or by a source's own id (-source name=id), repeatable.
func cmdErase(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	var records, sources sourceFlags
	fs.Var(&records, "record", "a record id as outputs carry it; repeat for several")
	fs.Var(&sources, "source", "a source's own record id as name=id; repeat for several")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := map[string]any{}
	if len(records) > 0 {
		body["record_ids"] = []string(records)
	}
	var sids []map[string]string
	for _, s := range sources {
		name, id, ok := strings.Cut(s, "=")
		if !ok || name == "" || id == "" {
			return fmt.Errorf("-source takes name=id, got %q", s)
		}
		sids = append(sids, map[string]string{"source": name, "id": id})
	}
	if len(sids) > 0 {
		body["source_ids"] = sids
	}
	if len(body) == 0 {
		return errors.New("usage: dsctl erase -record ID | -source NAME=ID ... (admin token in DSPIPE_TOKEN)")
	}
	var out map[string]any
	if err := apiClient(getenv).DoV1(ctx, "POST", "/erasures", body, &out); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	return nil
}
