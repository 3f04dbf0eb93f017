package ops

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// AddKafkaLag reports, at scrape time, each consumer group's lag per topic
// and partition (records between its committed offset and the end), and
// makes the broker a readiness check. cl is a client of the process's
// own; the groups are the services' consumer groups.
func (o *Ops) AddKafkaLag(cl *kgo.Client, groups ...string) {
	adm := kadm.NewClient(cl)
	o.AddCheck("kafka", func(ctx context.Context) error { return cl.Ping(ctx) })
	o.Registry.MustRegister(&lagCollector{adm: adm, groups: groups})
}

var (
	descLag       = prometheus.NewDesc("dspipe_kafka_consumer_lag", "Records a consumer group has yet to commit, per topic and partition.", []string{"group", "topic", "partition"}, nil)
	descLagErrors = prometheus.NewDesc("dspipe_kafka_lag_scrape_errors", "1 when the lag could not be read for this scrape.", nil, nil)
)

type lagCollector struct {
	adm    *kadm.Client
	groups []string
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLag
	ch <- descLagErrors
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	lags, err := c.adm.Lag(ctx, c.groups...)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	for _, g := range lags {
		if g.Error() != nil {
			failed = 1
			continue
		}
		for topic, parts := range g.Lag {
			for p, l := range parts {
				if l.Err != nil || l.Lag < 0 {
					continue
				}
				ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(l.Lag), g.Group, topic, strconv.Itoa(int(p)))
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descLagErrors, prometheus.GaugeValue, failed)
}
