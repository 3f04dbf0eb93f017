package kafka

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is the in-process kfake broker used when KAFKA_BROKERS is unset.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a single-node kfake cluster persisting to dataDir and
// listening on 127.0.0.1:port (0 picks a free port).
func StartEmbedded(dataDir string, port int) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.ClusterID("dspipe")}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("kafka: embedded data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs are the broker addresses to give clients.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Cluster exposes the kfake cluster for fault injection in tests.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker, flushing its data directory.
func (e *Embedded) Close() { e.cluster.Close() }
