package kafka

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// ClientMetrics collects franz-go's own client metrics (kprom: connections,
// bytes and records produced and fetched per topic, request latency,
// buffered records) of a service's long-lived clients, each labelled
// client=<name>. Register it once; Config.Metered hooks a client into it.
// Short-lived clients (one read of a partition) are not metered.
type ClientMetrics struct {
	mu      sync.Mutex
	clients map[string]*meteredClient
}

// NewClientMetrics makes an empty set.
func NewClientMetrics() *ClientMetrics {
	return &ClientMetrics{clients: map[string]*meteredClient{}}
}

// Describe describes nothing: the clients come and go, so the set is an
// unchecked collector.
func (s *ClientMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect gathers every open client's metrics.
func (s *ClientMetrics) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.Collect(ch)
	}
}

// meteredClient is one client's kprom hooks; closing the client takes its
// metrics out of the set (a client of the same name made again, such as a
// new transactional session, replaces it).
type meteredClient struct {
	*kprom.Metrics
	set  *ClientMetrics
	name string
}

func (m *meteredClient) OnClientClosed(*kgo.Client) {
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	if m.set.clients[m.name] == m {
		delete(m.set.clients, m.name)
	}
}

// Metered hooks a long-lived client into c.Metrics under name; without a
// set it adds nothing.
func (c Config) Metered(name string) kgo.Opt {
	s := c.Metrics
	if s == nil {
		return kgo.WithHooks()
	}
	m := &meteredClient{Metrics: kprom.NewMetrics("dspipe_kafka", kprom.Registry(nil),
		kprom.WithStaticLabel(prometheus.Labels{"client": name}),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.Batches, kprom.UncompressedBytes, kprom.CompressedBytes, kprom.ConsistentNaming)),
		set: s, name: name}
	s.mu.Lock()
	s.clients[name] = m
	s.mu.Unlock()
	return kgo.WithHooks(m)
}
