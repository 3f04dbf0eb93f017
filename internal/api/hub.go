package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/clock"
	"github.com/dspipe/dspipe/internal/kafka"
)

const (
	// subscriberBuffer is how many live events a WebSocket client may lag
	// behind before the hub stops handing it events; its feed then reads
	// what it missed from Postgres, in order, so a slow client gets every
	// event and is not disconnected. Only a client that reads nothing for
	// feedWriteTimeout is.
	subscriberBuffer = 256
	// recentEvents is how many of an execution's latest events the hub
	// keeps, so a subscriber catches up from memory instead of Postgres.
	recentEvents = 256
	// maxTails bounds the executions whose recent events are kept; the
	// oldest without subscribers is forgotten first.
	maxTails = 128
	// DefaultFeedsPerUser caps the live feeds one user may hold open.
	DefaultFeedsPerUser = 64
)

// ErrTooManyFeeds is returned when a user already holds the most feeds
// allowed.
var ErrTooManyFeeds = errors.New("too many live feeds open")

// Positions tells the hub how far the projector has applied the event
// topic (store.Store implements it).
type Positions interface {
	ProjectedOffsets(ctx context.Context, topic string) (map[int32]int64, error)
}

// Hub tails the event topic once for the whole API and fans events out to
// WebSocket subscribers of each execution, keeping each execution's latest
// events and the highest seq it has seen. A subscriber therefore needs
// Postgres only for events older than the hub's memory, and never polls:
// the hub knows which seqs exist, so it can tell a gap from a quiet
// execution. It never blocks on a subscriber: one whose buffer is full
// misses live events and is told so (lagged); its feed fills the gap from
// Postgres.
type Hub struct {
	kafka     kafka.Config
	positions Positions
	log       *slog.Logger
	perUser   int

	// ready is closed once the hub consumes from where the projector
	// stands: from then on an event is in Postgres or passes through the
	// hub.
	ready chan struct{}

	mu    sync.Mutex
	tails map[string]*tail
	users map[string]int
}

// tail is the hub's view of one execution.
type tail struct {
	subs   map[*subscriber]struct{}
	recent []hubEvent // the latest events, in seq order
	head   uint64     // the highest seq seen
	seen   time.Time
}

type subscriber struct {
	user    string
	ch      chan hubEvent
	dropped chan struct{}
	// lagged is signalled (capacity 1) when a live event did not fit in
	// ch: the feed must catch up from Postgres to the hub's head.
	lagged chan struct{}
	once   sync.Once
}

type hubEvent struct {
	env events.Envelope
	raw []byte
}

// NewHub builds a hub; perUser ≤ 0 takes DefaultFeedsPerUser. positions
// may be nil only in tests that drive publish by hand.
func NewHub(kc kafka.Config, positions Positions, perUser int, log *slog.Logger) *Hub {
	if perUser <= 0 {
		perUser = DefaultFeedsPerUser
	}
	h := &Hub{kafka: kc, positions: positions, perUser: perUser, log: log, ready: make(chan struct{}),
		tails: map[string]*tail{}, users: map[string]int{}}
	if positions == nil {
		close(h.ready)
	}
	return h
}

// Run tails the event topic until ctx ends. It starts where the projector
// stands (its offsets are in Postgres, committed with what it applied), so
// every event is either in Postgres or passes through the hub, and a feed
// can always tell a gap from a quiet execution.
func (h *Hub) Run(ctx context.Context) error {
	topic := h.kafka.Topics().Events
	start, err := h.startOffsets(ctx, topic)
	if err != nil || ctx.Err() != nil {
		return err
	}
	cl, err := h.kafka.Client(
		h.kafka.Metered("api-feed"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	close(h.ready)
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

// startOffsets returns, for every partition of the event topic, the
// projector's next offset (the start of a partition it has not claimed),
// retrying until the broker and Postgres answer.
func (h *Hub) startOffsets(ctx context.Context, topic string) (map[int32]kgo.Offset, error) {
	adm, err := h.kafka.Client()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	for {
		ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		var projected map[int32]int64
		if err == nil {
			projected, err = h.positions.ProjectedOffsets(ctx, topic)
		}
		if err == nil {
			start := map[int32]kgo.Offset{}
			ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = kgo.NewOffset().At(projected[o.Partition]) })
			return start, nil
		}
		h.log.Warn("api: hub: reading where the projector stands; retrying", "err", err)
		if clock.Sleep(ctx, time.Second) != nil {
			return nil, nil
		}
	}
}

func (h *Hub) publish(ev hubEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.tailOf(ev.env.Subject)
	t.seen = time.Now()
	if ev.env.Seq > t.head {
		t.head = ev.env.Seq
		if len(t.recent) == recentEvents {
			copy(t.recent, t.recent[1:])
			t.recent = t.recent[:recentEvents-1]
		}
		t.recent = append(t.recent, ev)
	}
	for s := range t.subs {
		select {
		case s.ch <- ev:
		default:
			select {
			case s.lagged <- struct{}{}:
			default:
			}
		}
	}
}

// tailOf returns id's tail, making one (and room for it) if there is
// none. Called with mu held.
func (h *Hub) tailOf(id string) *tail {
	t := h.tails[id]
	if t == nil {
		h.forgetOldest()
		t = &tail{subs: map[*subscriber]struct{}{}, seen: time.Now()}
		h.tails[id] = t
	}
	return t
}

// forgetOldest makes room for one more tail, forgetting the least recently
// active execution nobody is watching. Called with mu held.
func (h *Hub) forgetOldest() {
	if len(h.tails) < maxTails {
		return
	}
	var oldest string
	var at time.Time
	for id, t := range h.tails {
		if len(t.subs) == 0 && (oldest == "" || t.seen.Before(at)) {
			oldest, at = id, t.seen
		}
	}
	if oldest != "" {
		delete(h.tails, oldest)
	}
}

func (s *subscriber) drop() { s.once.Do(func() { close(s.dropped) }) }

// subscribe registers a subscriber of id for user and returns, taken at
// the same instant, the execution's recent events and the highest seq the
// hub has seen (0: none since it started). Every later event goes to the
// subscriber's channel.
func (h *Hub) subscribe(id, user string) (*subscriber, []hubEvent, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[user] >= h.perUser {
		return nil, nil, 0, fmt.Errorf("%w: %d per user", ErrTooManyFeeds, h.perUser)
	}
	s := &subscriber{user: user, ch: make(chan hubEvent, subscriberBuffer), dropped: make(chan struct{}), lagged: make(chan struct{}, 1)}
	t := h.tailOf(id)
	t.subs[s] = struct{}{}
	h.users[user]++
	return s, append([]hubEvent(nil), t.recent...), t.head, nil
}

// Head returns the highest seq the hub has seen of id (0: none).
func (h *Hub) Head(id string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.tails[id]; t != nil {
		return t.head
	}
	return 0
}

// Feeds returns how many live feeds are open, over every execution.
func (h *Hub) Feeds() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.users {
		n += c
	}
	return n
}

// Subscribers returns how many live feeds of id are open.
func (h *Hub) Subscribers(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.tails[id]; t != nil {
		return len(t.subs)
	}
	return 0
}

func (h *Hub) unsubscribe(id string, s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(id, s)
}

// remove forgets s; called with mu held, at most once per subscriber
// counted.
func (h *Hub) remove(id string, s *subscriber) {
	t := h.tails[id]
	if t == nil {
		return
	}
	if _, ok := t.subs[s]; !ok {
		return
	}
	delete(t.subs, s)
	if h.users[s.user]--; h.users[s.user] <= 0 {
		delete(h.users, s.user)
	}
}
