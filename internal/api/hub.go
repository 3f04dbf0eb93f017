package api

import (
	"context"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
)

// subscriberBuffer is how many events a WebSocket client may lag behind
// before it is disconnected; it resumes with ?since=<seq>.
const subscriberBuffer = 256

// Hub tails the event topic and fans events out to WebSocket subscribers of
// each execution. It never blocks on a subscriber: one whose buffer is full
// is dropped.
type Hub struct {
	kafka kafka.Config
	log   *slog.Logger

	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{}
}

type subscriber struct {
	ch      chan hubEvent
	dropped chan struct{}
	once    sync.Once
}

type hubEvent struct {
	env events.Envelope
	raw []byte
}

// NewHub builds a hub.
func NewHub(kc kafka.Config, log *slog.Logger) *Hub {
	return &Hub{kafka: kc, log: log, subs: map[string]map[*subscriber]struct{}{}}
}

// Run tails the event topic from its end until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	cl, err := h.kafka.Client(
		kgo.ConsumeTopics(h.kafka.Topics().Events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100e6),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachRecord(func(r *kgo.Record) {
			e, err := events.Decode(r.Value)
			if err != nil {
				return
			}
			h.publish(hubEvent{env: e, raw: r.Value})
		})
	}
}

func (h *Hub) publish(ev hubEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[ev.env.Subject] {
		select {
		case s.ch <- ev:
		default:
			s.drop()
			delete(h.subs[ev.env.Subject], s)
		}
	}
}

func (s *subscriber) drop() { s.once.Do(func() { close(s.dropped) }) }

func (h *Hub) subscribe(id string) *subscriber {
	s := &subscriber{ch: make(chan hubEvent, subscriberBuffer), dropped: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[id] == nil {
		h.subs[id] = map[*subscriber]struct{}{}
	}
	h.subs[id][s] = struct{}{}
	return s
}

func (h *Hub) unsubscribe(id string, s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[id], s)
	if len(h.subs[id]) == 0 {
		delete(h.subs, id)
	}
}
