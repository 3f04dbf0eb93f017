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
	"github.com/dspipe/dspipe/internal/kafka"
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

// ownServices is a broker and a services process (`dsctl up`) of one
// measure's own: their own data directory, output root and schema,
// removed by stop.
type ownServices struct {
	broker, up *exec.Cmd
	c          *client.Client
	kc         kafka.Config
	// pprofPort serves the services' profile when the bench has
	// -cpuprofile (0 otherwise).
	pprofPort int
	stops     []func()
}

// stop ends the processes and removes what they wrote, last started first.
func (o *ownServices) stop() {
	for i := len(o.stops) - 1; i >= 0; i-- {
		o.stops[i]()
	}
}

// startOwnServices starts a broker and services of their own under dir
// (env, KEY=value, sets the services' stages) and waits until they answer.
// On error what started is already stopped.
func startOwnServices(ctx context.Context, dir, dbURL, name string, env ...string) (o *ownServices, err error) {
	o = &ownServices{}
	defer func() {
		if err != nil {
			o.stop()
		}
	}()
	brokerPort, apiPort := freePort(), freePort()
	schema := fmt.Sprintf("bench_%s_%d", name, time.Now().Unix())
	o.stops = append(o.stops, func() { store.DropSchema(context.Background(), dbURL, schema) })
	// A broker and an output root of this run's own, removed after it: a
	// broker started on an earlier run's data directory loads its records.
	own, err := os.MkdirTemp(dir, name+"-")
	if err != nil {
		return o, err
	}
	o.stops = append(o.stops, func() { _ = os.RemoveAll(own) })
	o.broker = exec.Command("bin/dsctl", "broker", "-port", strconv.Itoa(brokerPort), "-data-dir", filepath.Join(own, "broker"))
	o.broker.Stderr = os.Stderr
	if err := o.broker.Start(); err != nil {
		return o, err
	}
	o.stops = append(o.stops, func() { _ = o.broker.Process.Signal(syscall.SIGTERM); _ = o.broker.Wait() })
	o.up = exec.Command("bin/dsctl", "up")
	o.up.Env = append(os.Environ(), "KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(brokerPort), "DSPIPE_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort),
		"DSPIPE_DB_SCHEMA="+schema, "DATABASE_URL="+dbURL, "DSPIPE_LOCAL_ROOTS="+dir, "DSPIPE_OUTPUT_ROOT="+filepath.Join(own, "out"),
		"DSPIPE_LOG_LEVEL=warn")
	if cpuProfile != "" { // the services' profile (bench -cpuprofile, -cpuprofile-after, -cpuprofile-seconds)
		o.pprofPort = freePort()
		o.up.Env = append(o.up.Env, "DSPIPE_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(o.pprofPort))
	}
	o.up.Env = append(o.up.Env, env...)
	o.up.Stderr = os.Stderr
	if err := o.up.Start(); err != nil {
		return o, err
	}
	o.stops = append(o.stops, func() { _ = o.up.Process.Signal(syscall.SIGTERM); _ = o.up.Wait() })
	o.c = client.New("http://127.0.0.1:"+strconv.Itoa(apiPort), "dev-admin-token")
	o.kc = kafka.Config{Brokers: []string{"127.0.0.1:" + strconv.Itoa(brokerPort)}, Partitions: kafka.DefaultPartitions, Replication: 1}
	return o, waitHealthy(ctx, o.c)
}

// allStages runs the request on a fresh broker and services process with
// the stages at their defaults (all on), or as env (KEY=value) sets them.
func allStages(ctx context.Context, dir, dbURL string, files []string, env ...string) (allStagesResult, error) {
	var r allStagesResult
	o, err := startOwnServices(ctx, dir, dbURL, "all", env...)
	if err != nil {
		return r, err
	}
	defer o.stop()
	cpu0, bcpu0 := cpuSeconds(o.up.Process.Pid), cpuSeconds(o.broker.Process.Pid)
	if o.pprofPort != 0 {
		go func() {
			time.Sleep(cpuProfileAfter)
			if err := fetchProfile(o.pprofPort, cpuProfile+".all", cpuProfileSeconds); err != nil {
				fmt.Fprintln(os.Stderr, "every-stage profile:", err)
			}
		}()
	}
	id, final, secs, err := runExecution(ctx, o.c, files)
	if err != nil {
		return r, err
	}
	r.Seconds = secs
	r.ServicesCPU, r.BrokerCPU = cpuSeconds(o.up.Process.Pid)-cpu0, cpuSeconds(o.broker.Process.Pid)-bcpu0
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
		if err := o.c.Do(ctx, "GET", "/statistics/"+id, nil, &stats); err != nil {
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
	r.ServicesRSSMB, r.BrokerRSSMB = peakRSS(o.up.Process.Pid), peakRSS(o.broker.Process.Pid)
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
