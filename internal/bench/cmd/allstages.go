package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/store"
)

// allStagesResult is one execution of the bench's dataset with every stage
// on (the defaults): its time end to end, each stage's, and the peak RSS of
// the services and the broker.
type allStagesResult struct {
	Records       int
	InputBytes    int64
	Seconds       float64
	Stages        []stageTime
	ServicesRSSMB float64
	BrokerRSSMB   float64
	// CPU seconds the services and the broker spent on the execution.
	ServicesCPU, BrokerCPU float64
	Valid, Output          int64
	RemovedDuplicates      int64
}

type stageTime struct {
	Stage   string
	Seconds float64
}

// allStages runs the request on a fresh broker and services process with
// the stages at their defaults (all on), or as env (KEY=value) sets them.
func allStages(ctx context.Context, dir, dbURL string, files []string, env ...string) (allStagesResult, error) {
	var r allStagesResult
	brokerPort, apiPort := freePort(), freePort()
	schema := fmt.Sprintf("bench_all_%d", time.Now().Unix())
	defer store.DropSchema(context.Background(), dbURL, schema)
	// A broker and an output root of this run's own, removed after it: a
	// broker started on an earlier run's data directory loads its records.
	own, err := os.MkdirTemp(dir, "all-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(own)
	broker := exec.Command("bin/dsctl", "broker", "-port", strconv.Itoa(brokerPort), "-data-dir", filepath.Join(own, "broker"))
	broker.Stderr = os.Stderr
	if err := broker.Start(); err != nil {
		return r, err
	}
	defer func() { _ = broker.Process.Signal(syscall.SIGTERM); _ = broker.Wait() }()
	up := exec.Command("bin/dsctl", "up")
	up.Env = append(os.Environ(), "KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(brokerPort), "DSPIPE_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort),
		"DSPIPE_DB_SCHEMA="+schema, "DATABASE_URL="+dbURL, "DSPIPE_LOCAL_ROOTS="+dir, "DSPIPE_OUTPUT_ROOT="+filepath.Join(own, "out"),
		"DSPIPE_LOG_LEVEL=warn")
	pprofPort := 0
	if cpuProfile != "" { // the services' profile (bench -cpuprofile, -cpuprofile-after, -cpuprofile-seconds)
		pprofPort = freePort()
		up.Env = append(up.Env, "DSPIPE_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPort))
	}
	up.Env = append(up.Env, env...)
	up.Stderr = os.Stderr
	if err := up.Start(); err != nil {
		return r, err
	}
	defer func() { _ = up.Process.Signal(syscall.SIGTERM); _ = up.Wait() }()
	c := client.New("http://127.0.0.1:"+strconv.Itoa(apiPort), "dev-admin-token")
	if err := waitHealthy(ctx, c); err != nil {
		return r, err
	}
	cpu0, bcpu0 := cpuSeconds(up.Process.Pid), cpuSeconds(broker.Process.Pid)
	if pprofPort != 0 {
		go func() {
			time.Sleep(cpuProfileAfter)
			if err := fetchProfile(pprofPort, cpuProfile+".all", cpuProfileSeconds); err != nil {
				fmt.Fprintln(os.Stderr, "every-stage profile:", err)
			}
		}()
	}
	id, final, secs, err := runExecution(ctx, c, files)
	if err != nil {
		return r, err
	}
	r.Seconds = secs
	r.ServicesCPU, r.BrokerCPU = cpuSeconds(up.Process.Pid)-cpu0, cpuSeconds(broker.Process.Pid)-bcpu0
	if final.Data["status"] != "completed" {
		return r, fmt.Errorf("every stage on: execution ended %v: %v", final.Data["status"], final.Data["error"])
	}
	var stats struct {
		Stages []struct {
			Stage      string `json:"stage"`
			DurationMS int64  `json:"duration_ms"`
		} `json:"stages"`
		Status  string `json:"status"`
		Records struct {
			Valid int64 `json:"valid"`
		} `json:"records"`
		Fusion *struct {
			RemovedExact int64 `json:"removed_exact"`
			RemovedNear  int64 `json:"removed_near"`
		} `json:"fusion"`
		OutputFiles []struct {
			Name    string `json:"name"`
			Records int64  `json:"records"`
		} `json:"output_files"`
	}
	// The feed's last event reaches the read models a moment later.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := c.Do(ctx, "GET", "/statistics/"+id, nil, &stats); err != nil {
			return r, err
		}
		if stats.Status == "completed" && len(stats.OutputFiles) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, errors.New("every stage on: the statistics never showed the completed execution")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range stats.Stages {
		r.Stages = append(r.Stages, stageTime{s.Stage, float64(s.DurationMS) / 1000})
	}
	r.Valid = stats.Records.Valid
	if stats.Fusion != nil {
		r.RemovedDuplicates = stats.Fusion.RemovedExact + stats.Fusion.RemovedNear
	}
	for _, f := range stats.OutputFiles {
		if f.Name == "data.jsonl.zst" {
			r.Output = f.Records
		}
	}
	r.ServicesRSSMB, r.BrokerRSSMB = peakRSS(up.Process.Pid), peakRSS(broker.Process.Pid)
	return r, nil
}

func waitHealthy(ctx context.Context, c *client.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var h map[string]any
		if err := c.Do(ctx, "GET", "/health", nil, &h); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("services never became healthy")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runExecution submits the bench's request over files (JSONL, zstd
// output) and follows its feed to the end: the execution, its terminal
// message, and the seconds from submission.
func runExecution(ctx context.Context, c *client.Client, files []string) (string, client.Message, float64, error) {
	req := events.Request{Output: events.OutputSpec{Formats: []string{"jsonl"}, Compression: "zstd"}}
	for i, f := range files {
		req.Sources = append(req.Sources, events.SourceSpec{Name: fmt.Sprintf("s%d", i+1), Type: "local", Config: map[string]string{"path": f}, Priority: i + 1})
	}
	start := time.Now()
	id, err := c.Submit(ctx, req)
	if err != nil {
		return "", client.Message{}, 0, err
	}
	var final client.Message
	err = c.Watch(ctx, id, 0, func(m client.Message) error {
		if m.Terminal() {
			final = m
		}
		return nil
	})
	return id, final, time.Since(start).Seconds(), err
}
