package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsFollowTheSeed(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.True(t, c.Embedded)
	require.Equal(t, 5, c.MaxConcurrent)
	require.Equal(t, 120*time.Minute, c.ExecutionTimeout)
	require.Equal(t, 2, c.RetryAttempts)
	require.True(t, c.EnableSafety)
	require.Equal(t, 0.8, c.CrisisThreshold)
	require.Equal(t, 0.3, c.BiasThreshold)
	require.Equal(t, []string{"127.0.0.1:9092"}, c.Kafka.Brokers)
	require.Equal(t, DevToken, c.APITokens)
}

func TestInvalidValuesAreAllReported(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{
		"MAX_CONCURRENT_DATASET_PROCESSING": "many",
		"CRISIS_DETECTION_THRESHOLD":        "1.5",
		"ENABLE_SAFETY_VALIDATION":          "maybe",
		"KAFKA_PARTITIONS":                  "0",
		"KAFKA_COMPRESSION":                 "brotli",
	}))
	require.Error(t, err)
	for _, want := range []string{"MAX_CONCURRENT_DATASET_PROCESSING", "CRISIS_DETECTION_THRESHOLD", "ENABLE_SAFETY_VALIDATION", "KAFKA_PARTITIONS", "KAFKA_COMPRESSION"} {
		require.ErrorContains(t, err, want)
	}
}

func TestPublicAPIAddressNeedsRealTokens(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"DSPIPE_API_ADDR": "0.0.0.0:8080"}))
	require.ErrorContains(t, err, "DSPIPE_API_TOKENS is required")
	// Finding 7: the loopback check reads the address, not its first
	// characters.
	for _, addr := range []string{"127.evil.example:1", "localhost.evil.example:80", "[::]:8080", ":8080", "10.0.0.1:8080"} {
		_, err := Load(env(map[string]string{"DSPIPE_API_ADDR": addr}))
		require.ErrorContains(t, err, "DSPIPE_API_TOKENS is required", addr)
	}
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.2:1", "localhost:8080", "[::1]:8080"} {
		c, err := Load(env(map[string]string{"DSPIPE_API_ADDR": addr}))
		require.NoError(t, err, addr)
		require.True(t, c.DevToken, "the development token is on, and the API warns")
	}
	c, err := Load(env(map[string]string{"DSPIPE_API_ADDR": "0.0.0.0:8080", "DSPIPE_API_TOKENS": "abcdefgh:u:admin", "KAFKA_BROKERS": "k1:9092, k2:9092"}))
	require.NoError(t, err)
	require.False(t, c.Embedded)
	require.Equal(t, []string{"k1:9092", "k2:9092"}, c.Kafka.Brokers)
}
