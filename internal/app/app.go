// Package app wires the services from the configuration: each cmd binary
// calls one runner, and dsctl up runs them all in one process around an
// embedded broker.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when DSPIPE_PPROF_ADDR is set
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dspipe/dspipe/internal/api"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/config"
	"github.com/dspipe/dspipe/internal/crypt"
	"github.com/dspipe/dspipe/internal/ingest"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/keys"
	"github.com/dspipe/dspipe/internal/ops"
	"github.com/dspipe/dspipe/internal/processor"
	"github.com/dspipe/dspipe/internal/projector"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/store"
)

// Logger builds the JSON logger at the configured level.
func Logger(cfg config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// DefaultMemoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT
// is unset: the garbage collector works harder near it instead of letting
// the heap grow, which keeps the services' RSS flat on any dataset size.
const DefaultMemoryLimit = 192 << 20

// DefaultGCPercent is the garbage collector's target when GOGC is unset
// and a memory limit is in force. The limit, not the percentage, bounds
// the heap: with Go's default of 100 the collector ran several times
// more often than the limit needs, about 5% of the services' CPU with
// every stage on (docs/BENCHMARKS.md), for the same peak RSS.
const DefaultGCPercent = 400

// SetMemoryLimit applies DefaultMemoryLimit unless GOMEMLIMIT is set, and
// DefaultGCPercent unless GOGC is set or there is no limit.
func SetMemoryLimit(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	if getenv("GOGC") == "" && debug.SetMemoryLimit(-1) < math.MaxInt64 {
		debug.SetGCPercent(DefaultGCPercent)
	}
}

// Service names accepted by Run.
const (
	ServiceAPI       = "api"
	ServiceIngest    = "ingest"
	ServiceProcessor = "processor"
	ServiceProjector = "projector"
)

// Run runs the named services until ctx ends. Topics are created first.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, services ...string) error {
	if err := cfg.Kafka.EnsureTopics(ctx); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	var st *store.Store
	needStore, needKey, needData := false, false, false
	for _, s := range services {
		needStore = needStore || s == ServiceAPI || s == ServiceProjector || s == ServiceIngest || s == ServiceProcessor
		needKey = needKey || s == ServiceAPI || s == ServiceProcessor
		needData = needData || s == ServiceIngest || s == ServiceProcessor
	}
	var signer *audit.Signer
	if needKey {
		var created bool
		var err error
		if signer, created, err = audit.LoadOrCreateKey(cfg.AuditSigningKey, cfg.AuditKeyGenerated); err != nil {
			return fmt.Errorf("DSPIPE_AUDIT_SIGNING_KEY: %w", err)
		}
		if created {
			log.Warn("DSPIPE_AUDIT_SIGNING_KEY is unset: made a new audit signing key; every service must sign with the same key, so set DSPIPE_AUDIT_SIGNING_KEY outside development",
				"path", cfg.AuditSigningKey, "key_id", signer.KeyID())
		}
	}
	if needStore {
		var err error
		st, err = store.Open(ctx, cfg.DatabaseURL, cfg.DBSchema)
		if err != nil {
			return err
		}
		defer st.Close()
	}
	var dataKeys *keys.Manager
	if needData {
		p, err := KeyProvider(ctx, cfg, log)
		if err != nil {
			return err
		}
		dataKeys = keys.New(st, p)
	}
	o := ops.New()
	if st != nil {
		o.AddStore(st)
	}
	cfg.Kafka.Metrics = kafka.NewClientMetrics()
	o.Registry.MustRegister(cfg.Kafka.Metrics)
	// Ready also means this process's consumer groups have taken it in.
	cfg.Kafka.Member = kafka.NewMember()
	for _, s := range services {
		if s != ServiceAPI {
			o.AddCheck("consumer_groups", cfg.Kafka.Member.Check)
			break
		}
	}
	// The broker check and the consumer groups' lag, through one client.
	opsClient, err := cfg.Kafka.Client()
	if err != nil {
		return err
	}
	defer opsClient.Close()
	groups := []string{cfg.Kafka.Name("dspipe-processor"), cfg.Kafka.Name("dspipe-ingest")}
	if st != nil {
		groups = append(groups, cfg.Kafka.Name("dspipe-projector-"+st.Schema()), cfg.Kafka.Name("dspipe-projector-access-"+st.Schema()))
	}
	o.AddKafkaLag(opsClient, groups...)
	hasAPI := false
	for _, s := range services {
		hasAPI = hasAPI || s == ServiceAPI
	}
	if cfg.OpsAddr != "" && !hasAPI {
		g.Go(func() error { return serveOps(ctx, cfg.OpsAddr, o, log) })
	}
	for _, s := range services {
		switch s {
		case ServiceAPI:
			g.Go(func() error { return runAPI(ctx, cfg, st, signer, o, log) })
		case ServiceIngest:
			ic := IngestConfig(cfg, "ingest-"+cfg.InstanceID)
			ic.Keys = dataKeys
			in := ingest.New(ic, log.With("service", "ingest"))
			g.Go(func() error { return in.Run(ctx) })
		case ServiceProcessor:
			pc := ProcessorConfig(cfg, "processor-"+cfg.InstanceID)
			pc.Signer, pc.Keys, pc.Erased, pc.Erase, pc.FinishedOutputs = signer, dataKeys, st.Erased, st.InsertErasure, st.FinishedOutputs
			pc.Metrics = o.Registry
			p := processor.New(pc, log.With("service", "processor"))
			g.Go(func() error { return p.Run(ctx) })
		case ServiceProjector:
			pj := projector.New(cfg.Kafka, st, log.With("service", "projector"))
			g.Go(func() error { return pj.Run(ctx) })
		default:
			return fmt.Errorf("unknown service %q", s)
		}
	}
	return g.Wait()
}

// serveOps serves /livez, /readyz and /metrics on addr until ctx ends.
func serveOps(ctx context.Context, addr string, o *ops.Ops, log *slog.Logger) error {
	mux := http.NewServeMux()
	o.Handle(mux)
	hs := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ops: listen %s: %w", addr, err)
	}
	log.Info("ops endpoints", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func runAPI(ctx context.Context, cfg config.Config, st *store.Store, signer *audit.Signer, o *ops.Ops, log *slog.Logger) error {
	tokens, err := api.ParseTokens(cfg.APITokens)
	if err != nil {
		return err
	}
	prod, err := cfg.Kafka.Client(cfg.Kafka.Metered("api-producer"))
	if err != nil {
		return err
	}
	defer prod.Close()
	log = log.With("service", "api")
	if cfg.DevToken {
		log.Warn("DSPIPE_API_TOKENS is unset: the development admin token 'dev-admin-token' is accepted; the API listens on loopback only. Set DSPIPE_API_TOKENS for any shared use.",
			"addr", cfg.APIAddr)
	}
	hub := api.NewHub(cfg.Kafka, st, cfg.FeedsPerUser, log)
	access := api.NewAccessLog(prod, cfg.Kafka.Topics().Access, signer, cfg.InstanceID, log)
	srv := api.NewServer(api.Config{Store: st, Producer: prod, Topics: cfg.Kafka.Topics(), Tokens: tokens, Hub: hub, Log: log,
		OutputRoot: cfg.OutputRoot, LocalRoots: cfg.LocalRoots, TrustedS3Endpoints: cfg.TrustedS3Endpoints, Access: access, Signer: signer, RecordIDKey: []byte(cfg.RecordIDKey),
		Ops: o})
	h := srv.Handler()
	hs := &http.Server{
		Addr: cfg.APIAddr,
		// WebSockets bypass the timeout handler, which cannot hijack.
		Handler:           wsBypass(h, http.TimeoutHandler(h, cfg.RequestTimeout, `{"error":"request timed out","status":503}`)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", cfg.APIAddr, err)
	}
	log.Info("api listening", "addr", ln.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return access.Run(gctx) })
	g.Go(func() error {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		// WebSocket handlers (hijacked, so Shutdown does not wait for
		// them) finish and record their access before the log closes.
		srv.WaitIdle(sctx)
		access.Close()
		return err
	})
	return g.Wait()
}

// wsBypass sends WebSocket handshakes on the feed's route around the
// request timeout (a hijacked connection cannot be timed out by
// http.TimeoutHandler); every other request, whatever its headers, keeps
// the timeout.
func wsBypass(direct, timed http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/datasets/ws/") &&
			strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			direct.ServeHTTP(w, r)
			return
		}
		timed.ServeHTTP(w, r)
	})
}

// RunEmbedded starts the embedded broker on the configured port and data
// directory, then runs the services against it.
func RunEmbedded(ctx context.Context, cfg config.Config, log *slog.Logger, services ...string) error {
	b, err := kafka.StartEmbedded(cfg.BrokerDataDir, cfg.BrokerPort)
	if err != nil {
		return err
	}
	defer b.Close()
	cfg.Kafka.Brokers = b.Addrs()
	if b.Repaired > 0 {
		log.Warn("embedded broker: the previous run stopped uncleanly; open transactions closed with abort markers", "transactions", b.Repaired)
	}
	log.Info("embedded broker listening", "addrs", b.Addrs(), "data_dir", cfg.BrokerDataDir)
	return Run(ctx, cfg, log, services...)
}

// KeyProvider is the key-encryption provider the configuration names:
// AWS KMS when DSPIPE_KMS_KEY_ID is set, else the local keyring.
func KeyProvider(ctx context.Context, cfg config.Config, log *slog.Logger) (crypt.Provider, error) {
	if cfg.KMSKeyID != "" {
		return crypt.NewKMS(ctx, cfg.KMSKeyID, cfg.AWSRegion, cfg.KMSEndpoint)
	}
	k, created, err := crypt.LoadKeyring(cfg.Keyring, cfg.KeyringGenerated)
	if err != nil {
		return nil, fmt.Errorf("DSPIPE_KEYRING: %w", err)
	}
	if created {
		log.Warn("DSPIPE_KEYRING is unset: made a new local keyring for record encryption; every ingest and processor instance must use the same one, and production should use DSPIPE_KMS_KEY_ID",
			"path", cfg.Keyring)
	}
	return k, nil
}

// All lists every service.
var All = []string{ServiceAPI, ServiceIngest, ServiceProcessor, ServiceProjector}

// Main is the whole main function of a single-service binary: it runs the
// service until SIGINT or SIGTERM and exits non-zero on error.
func Main(service string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runService(ctx, service, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
}

// runService loads the configuration and runs one service.
func runService(ctx context.Context, service string, getenv func(string) string) error {
	SetMemoryLimit(getenv)
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if addr := getenv("DSPIPE_PPROF_ADDR"); addr != "" {
		// Profiling for operators, on an address they choose (keep it on
		// loopback), as dsctl up serves it.
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	return Run(ctx, cfg, Logger(cfg), service)
}

// SourceEnv is what the sources need from the configuration.
func SourceEnv(cfg config.Config) source.Env {
	return source.Env{
		LocalRoots: cfg.LocalRoots, HFEndpoint: cfg.HFEndpoint, HFToken: cfg.HFToken,
		DriveEndpoint: cfg.DriveEndpoint, ServiceAccountPath: cfg.DriveAccountPath, DriveFolderID: cfg.DriveFolderID,
		S3Bucket: cfg.S3Bucket, S3Region: cfg.AWSRegion, AllowPrivateEndpoints: cfg.AllowPrivateEndpoints,
		SecretEnv: cfg.SourceSecrets, Getenv: cfg.Getenv, TrustedS3Endpoints: cfg.TrustedS3Endpoints,
	}
}

// IngestConfig is ingest's configuration, from the one environment.
func IngestConfig(cfg config.Config, instanceID string) ingest.Config {
	return ingest.Config{Kafka: cfg.Kafka, InstanceID: instanceID, Sources: SourceEnv(cfg),
		MaxConcurrent: cfg.MaxConcurrent, MaxRecordBytes: cfg.MaxRecordBytes, RetryAttempts: cfg.RetryAttempts,
		RetryBase: cfg.RetryBase, SourceConcurrency: cfg.SourceConcurrency}
}

// ProcessorConfig is the processor's configuration, from the one
// environment.
func ProcessorConfig(cfg config.Config, instanceID string) processor.Config {
	lim := stage.DefaultLimits
	lim.MaxRecordBytes = cfg.MaxRecordBytes
	return processor.Config{Kafka: cfg.Kafka, InstanceID: instanceID, MaxConcurrent: cfg.MaxConcurrent,
		ExecutionTimeout: cfg.ExecutionTimeout, OutputRoot: cfg.OutputRoot, Limits: lim,
		SafetyEnabled: cfg.EnableSafety, CrisisThreshold: cfg.CrisisThreshold, PIISalt: []byte(cfg.PIISalt),
		RecordIDKey: []byte(cfg.RecordIDKey), QualityEnabled: cfg.EnableQuality, BiasEnabled: cfg.EnableBias, FusionEnabled: cfg.EnableFusion,
		OutputS3Endpoint: cfg.OutputS3Endpoint, OutputS3Region: cfg.AWSRegion, BiasThreshold: cfg.BiasThreshold,
		OutputAttempts: cfg.RetryAttempts + 1, OutputRetryBase: cfg.RetryBase, SnapshotEvery: cfg.SnapshotEvery}
}
