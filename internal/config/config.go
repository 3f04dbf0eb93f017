// Package config loads the one configuration every binary reads from the
// environment (the variables the README's Configuration table lists), validates it, and
// writes the defaults on the fields.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dspipe/dspipe/internal/kafka"
)

// Config is the service configuration.
type Config struct {
	Kafka kafka.Config
	// Embedded is true when KAFKA_BROKERS was unset: dsctl up runs kfake
	// in-process; the separate binaries connect to dsctl broker's port.
	Embedded      bool
	BrokerPort    int    // DSPIPE_BROKER_PORT, 9092
	BrokerDataDir string // DSPIPE_BROKER_DIR, .dspipe/broker

	DatabaseURL string // DATABASE_URL
	DBSchema    string // DSPIPE_DB_SCHEMA, public

	APIAddr string // DSPIPE_API_ADDR, 127.0.0.1:8080
	// OpsAddr serves /livez, /readyz and /metrics for the services of a
	// process without an API (DSPIPE_OPS_ADDR; empty: none). The API
	// serves them on its own address.
	OpsAddr   string
	APITokens string // DSPIPE_API_TOKENS, token:user:role,...
	// DevToken is true when DSPIPE_API_TOKENS was unset and the API
	// listens on loopback: the development admin token is accepted, and
	// the API says so in a warning when it starts.
	DevToken bool

	RequestTimeout   time.Duration // DATASET_REQUEST_TIMEOUT seconds, 600
	FeedsPerUser     int           // DSPIPE_WS_FEEDS_PER_USER, 64: live WebSocket feeds one user may hold open
	MaxConcurrent    int           // MAX_CONCURRENT_DATASET_PROCESSING, 5
	SnapshotEvery    int           // DSPIPE_SNAPSHOT_EVERY, 50: events of a partition between processor state snapshots
	ExecutionTimeout time.Duration // DATASET_EXECUTION_TIMEOUT_MINUTES, 120
	RetryAttempts    int           // DATASET_RETRY_ATTEMPTS, 2
	RetryBase        time.Duration // DSPIPE_RETRY_BASE_MS, 1000: the first retry's backoff
	EnableSafety     bool          // ENABLE_SAFETY_VALIDATION, true
	EnableQuality    bool          // ENABLE_QUALITY_ASSESSMENT, true
	EnableBias       bool          // ENABLE_BIAS_DETECTION, true
	EnableFusion     bool          // ENABLE_FUSION, true
	OutputS3Endpoint string        // DSPIPE_OUTPUT_S3_ENDPOINT: an S3-compatible store for s3:// outputs
	CrisisThreshold  float64       // CRISIS_DETECTION_THRESHOLD, 0.8
	BiasThreshold    float64       // BIAS_VALIDATION_THRESHOLD, 0.3
	S3Bucket         string        // AWS_S3_BUCKET
	AWSRegion        string        // AWS_REGION
	DriveFolderID    string        // GOOGLE_DRIVE_FOLDER_ID
	DriveAccountPath string        // GOOGLE_SERVICE_ACCOUNT_PATH
	HFToken          string        // HF_TOKEN
	HFEndpoint       string        // HF_ENDPOINT
	LocalRoots       []string      // DSPIPE_LOCAL_ROOTS, the working directory
	OutputRoot       string        // DSPIPE_OUTPUT_ROOT, ./out
	InstanceID       string        // DSPIPE_INSTANCE_ID, 0
	MaxRecordBytes   int           // DSPIPE_MAX_RECORD_BYTES, 1 MiB
	LogLevel         string        // DSPIPE_LOG_LEVEL, info
	// AllowPrivateEndpoints lets a request's S3 endpoint be on a loopback
	// or private address (DSPIPE_ALLOW_PRIVATE_ENDPOINTS, false).
	AllowPrivateEndpoints bool
	// SourceSecrets are the variables a request may reference as ${NAME}
	// credentials (DSPIPE_SOURCE_SECRETS, the AWS key variables).
	SourceSecrets []string
	// TrustedS3Endpoints are the S3-compatible endpoints requests may reach
	// with the server's own AWS credentials (DSPIPE_S3_ENDPOINTS, comma
	// separated URLs); any other endpoint must come with credentials of
	// its own.
	TrustedS3Endpoints []string
	// SourceConcurrency bounds the sources of one execution read at once
	// (DSPIPE_SOURCE_CONCURRENCY, 3).
	SourceConcurrency int
	// DriveEndpoint overrides the Drive API URL (DSPIPE_DRIVE_ENDPOINT).
	DriveEndpoint string
	// PIISalt keys the salted-hash PII masking (DSPIPE_PII_SALT); keep it
	// secret and stable, or hashes stop matching across runs.
	PIISalt string
	// RecordIDKey keys the HMAC that makes record ids
	// (DSPIPE_RECORD_ID_KEY): without it an id is a plain hash of the
	// conversation, which anyone can test a guessed conversation against.
	RecordIDKey string
	// AuditSigningKey is the Ed25519 private key (PKCS #8 PEM) that seals
	// the audit trail (DSPIPE_AUDIT_SIGNING_KEY, a file path). Unset, a key
	// is made at .dspipe/audit-signing-key.pem on first use, with a
	// warning: every service must use the same key.
	AuditSigningKey string
	// AuditKeyGenerated says AuditSigningKey is the development default,
	// which may be created.
	AuditKeyGenerated bool
	// Keyring is the local keyring file that wraps data keys
	// (DSPIPE_KEYRING, .dspipe/keyring.json, made on first use with a
	// warning when unset); KeyringGenerated says it is that default.
	Keyring          string
	KeyringGenerated bool
	// KMSKeyID, when set, wraps data keys with AWS KMS instead
	// (DSPIPE_KMS_KEY_ID, with AWS_REGION and DSPIPE_KMS_ENDPOINT for a
	// KMS-compatible server).
	KMSKeyID, KMSEndpoint string
	// Getenv is the environment the configuration was read from; sources
	// resolve ${NAME} credential references through it.
	Getenv func(string) string
}

// DevToken is the development token used when DSPIPE_API_TOKENS is unset
// and the API listens on loopback only.
const DevToken = "dev-admin-token:dev:admin"

// Load reads and validates the configuration.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	kc, err := kafka.ConfigFromEnv(getenv)
	errs = append(errs, err)
	wd, _ := os.Getwd()
	c := Config{
		Kafka:            kc,
		Embedded:         len(kc.Brokers) == 0,
		BrokerPort:       intVar(getenv, "DSPIPE_BROKER_PORT", 9092, 0, 65535, &errs),
		BrokerDataDir:    str(getenv, "DSPIPE_BROKER_DIR", filepath.Join(wd, ".dspipe", "broker")),
		DatabaseURL:      str(getenv, "DATABASE_URL", "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"),
		DBSchema:         str(getenv, "DSPIPE_DB_SCHEMA", "public"),
		APIAddr:          str(getenv, "DSPIPE_API_ADDR", "127.0.0.1:8080"),
		OpsAddr:          getenv("DSPIPE_OPS_ADDR"),
		APITokens:        getenv("DSPIPE_API_TOKENS"),
		RequestTimeout:   time.Duration(intVar(getenv, "DATASET_REQUEST_TIMEOUT", 600, 1, 86400, &errs)) * time.Second,
		FeedsPerUser:     intVar(getenv, "DSPIPE_WS_FEEDS_PER_USER", 64, 1, 100000, &errs),
		MaxConcurrent:    intVar(getenv, "MAX_CONCURRENT_DATASET_PROCESSING", 5, 1, 1000, &errs),
		SnapshotEvery:    intVar(getenv, "DSPIPE_SNAPSHOT_EVERY", 50, 1, 1000000, &errs),
		ExecutionTimeout: time.Duration(intVar(getenv, "DATASET_EXECUTION_TIMEOUT_MINUTES", 120, 1, 7*24*60, &errs)) * time.Minute,
		RetryAttempts:    intVar(getenv, "DATASET_RETRY_ATTEMPTS", 2, 0, 20, &errs),
		RetryBase:        time.Duration(intVar(getenv, "DSPIPE_RETRY_BASE_MS", 1000, 1, 600000, &errs)) * time.Millisecond,
		EnableSafety:     boolVar(getenv, "ENABLE_SAFETY_VALIDATION", true, &errs),
		EnableQuality:    boolVar(getenv, "ENABLE_QUALITY_ASSESSMENT", true, &errs),
		EnableBias:       boolVar(getenv, "ENABLE_BIAS_DETECTION", true, &errs),
		EnableFusion:     boolVar(getenv, "ENABLE_FUSION", true, &errs),
		OutputS3Endpoint: getenv("DSPIPE_OUTPUT_S3_ENDPOINT"),
		CrisisThreshold:  floatVar(getenv, "CRISIS_DETECTION_THRESHOLD", 0.8, &errs),
		BiasThreshold:    floatVar(getenv, "BIAS_VALIDATION_THRESHOLD", 0.3, &errs),
		S3Bucket:         getenv("AWS_S3_BUCKET"),
		AWSRegion:        getenv("AWS_REGION"),
		DriveFolderID:    getenv("GOOGLE_DRIVE_FOLDER_ID"),
		DriveAccountPath: getenv("GOOGLE_SERVICE_ACCOUNT_PATH"),
		HFToken:          getenv("HF_TOKEN"),
		HFEndpoint:       str(getenv, "HF_ENDPOINT", "https://huggingface.co"),
		OutputRoot:       str(getenv, "DSPIPE_OUTPUT_ROOT", filepath.Join(wd, "out")),
		InstanceID:       str(getenv, "DSPIPE_INSTANCE_ID", "0"),
		MaxRecordBytes:   intVar(getenv, "DSPIPE_MAX_RECORD_BYTES", 1<<20, 1024, kafka.MaxRecordBytes, &errs),
		LogLevel:         str(getenv, "DSPIPE_LOG_LEVEL", "info"),

		AllowPrivateEndpoints: boolVar(getenv, "DSPIPE_ALLOW_PRIVATE_ENDPOINTS", false, &errs),
		SourceConcurrency:     intVar(getenv, "DSPIPE_SOURCE_CONCURRENCY", 3, 1, 64, &errs),
		DriveEndpoint:         getenv("DSPIPE_DRIVE_ENDPOINT"),
		Getenv:                getenv,
		PIISalt:               getenv("DSPIPE_PII_SALT"),
		RecordIDKey:           getenv("DSPIPE_RECORD_ID_KEY"),
		AuditSigningKey:       getenv("DSPIPE_AUDIT_SIGNING_KEY"),
	}
	c.Keyring, c.KMSKeyID, c.KMSEndpoint = getenv("DSPIPE_KEYRING"), getenv("DSPIPE_KMS_KEY_ID"), getenv("DSPIPE_KMS_ENDPOINT")
	if c.Keyring == "" {
		c.Keyring, c.KeyringGenerated = filepath.Join(wd, ".dspipe", "keyring.json"), true
	}
	if c.AuditSigningKey == "" {
		c.AuditSigningKey, c.AuditKeyGenerated = filepath.Join(wd, ".dspipe", "audit-signing-key.pem"), true
	}
	for _, n := range strings.Split(getenv("DSPIPE_SOURCE_SECRETS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			c.SourceSecrets = append(c.SourceSecrets, n)
		}
	}
	for _, n := range strings.Split(getenv("DSPIPE_S3_ENDPOINTS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			c.TrustedS3Endpoints = append(c.TrustedS3Endpoints, n)
		}
	}
	roots := getenv("DSPIPE_LOCAL_ROOTS")
	if roots == "" {
		roots = wd
	}
	for _, r := range strings.Split(roots, ",") {
		if r = strings.TrimSpace(r); r != "" {
			abs, err := filepath.Abs(r)
			if err != nil {
				errs = append(errs, fmt.Errorf("DSPIPE_LOCAL_ROOTS: %w", err))
				continue
			}
			c.LocalRoots = append(c.LocalRoots, abs)
		}
	}
	if c.Embedded {
		c.Kafka.Brokers = []string{fmt.Sprintf("127.0.0.1:%d", c.BrokerPort)}
	}
	if c.CrisisThreshold < 0 || c.CrisisThreshold > 1 {
		errs = append(errs, errors.New("CRISIS_DETECTION_THRESHOLD must be between 0 and 1"))
	}
	if c.BiasThreshold < 0 || c.BiasThreshold > 1 {
		errs = append(errs, errors.New("BIAS_VALIDATION_THRESHOLD must be between 0 and 1"))
	}
	if c.APITokens == "" {
		if !isLoopback(c.APIAddr) {
			errs = append(errs, errors.New("DSPIPE_API_TOKENS is required when DSPIPE_API_ADDR is not a loopback address"))
		}
		c.APITokens, c.DevToken = DevToken, true
	}
	return c, errors.Join(errs...)
}

// isLoopback reports whether a listen address is on loopback only: a
// loopback IP literal or "localhost". Host names that merely start like
// one (127.evil.example) are not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func str(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

func intVar(getenv func(string) string, k string, def, lo, hi int, errs *[]error) int {
	v := getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		*errs = append(*errs, fmt.Errorf("%s must be an integer between %d and %d, got %q", k, lo, hi, v))
		return def
	}
	return n
}

func floatVar(getenv func(string) string, k string, def float64, errs *[]error) float64 {
	v := getenv(k)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s must be a number, got %q", k, v))
		return def
	}
	return f
}

func boolVar(getenv func(string) string, k string, def bool, errs *[]error) bool {
	v := getenv(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s must be true or false, got %q", k, v))
		return def
	}
	return b
}
