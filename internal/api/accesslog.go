package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
)

// AccessLog is the access audit's writer: it chains every access record of
// this API instance run into one hash chain on the access topic and seals
// the chain head with the audit key periodically and when it closes.
// Recording never waits for Kafka: records are chained by one goroutine
// and produced asynchronously, so GET /status stays fast; a full buffer
// slows callers down rather than dropping a record.
//
// What a crash can lose: records still in the buffer or in flight to the
// broker (up to about SealEvery of calls), and the final seal; the chain
// then ends unsealed, which verification reports.
type AccessLog struct {
	prod    *kgo.Client
	topic   string
	signer  *audit.Signer
	log     *slog.Logger
	subject string
	every   time.Duration

	mu     sync.RWMutex
	closed bool
	in     chan Access

	chain    events.Chain
	unsealed int
	failed   atomic.Int64
}

// SealEvery is how often an access chain with new records is sealed.
const SealEvery = 5 * time.Second

// NewAccessLog builds the writer for one API instance run; instance names
// the API instance in the chain id.
func NewAccessLog(prod *kgo.Client, topic string, signer *audit.Signer, instance string, log *slog.Logger) *AccessLog {
	var b [4]byte
	_, _ = rand.Read(b[:])
	subject := "access-" + instance + "-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	return &AccessLog{prod: prod, topic: topic, signer: signer, log: log, subject: subject, every: SealEvery, in: make(chan Access, 4096)}
}

// Subject is this run's chain id (the Kafka key of its records).
func (a *AccessLog) Subject() string { return a.subject }

// Record queues one access record. After Close it is dropped with an
// error log: the HTTP server is shut down before the log closes, so no
// request is served then.
func (a *AccessLog) Record(x Access) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.log.Error("api: access record after the access log closed", "action", x.Action)
		return
	}
	a.in <- x
}

// Close stops taking records; Run then writes the rest, seals the chain and
// flushes.
func (a *AccessLog) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.in)
	}
}

// Run chains and produces records until Close, then seals and flushes. It
// returns when everything is on the broker (or the flush timed out).
func (a *AccessLog) Run(ctx context.Context) error {
	tick := time.NewTicker(a.every)
	defer tick.Stop()
	for {
		select {
		case x, ok := <-a.in:
			if !ok {
				a.seal()
				fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := a.prod.Flush(fctx); err != nil {
					a.log.Error("api: access log flush", "err", err)
				}
				if n := a.failed.Load(); n > 0 {
					a.log.Error("api: access records the broker did not take", "records", n, "chain", a.subject)
				}
				return nil
			}
			a.append(x.Access, x.Time)
		case <-tick.C:
			a.seal()
		}
	}
}

func (a *AccessLog) append(p events.Payload, at time.Time) {
	e, err := events.New("dspipe/api", a.subject, at, p)
	if err != nil {
		a.log.Error("api: access event", "err", err)
		return
	}
	a.chain.Seal(&e)
	b, err := events.Encode(e)
	if err != nil {
		a.log.Error("api: access event", "err", err)
		return
	}
	a.unsealed++
	// A background context: a record accepted before shutdown is still
	// written during it.
	a.prod.Produce(context.Background(), &kgo.Record{Topic: a.topic, Key: []byte(a.subject), Value: b}, func(_ *kgo.Record, err error) {
		if err != nil {
			a.failed.Add(1)
			a.log.Error("api: access record not written", "chain", a.subject, "seq", e.Seq, "err", err)
		}
	})
}

// seal signs the chain head when records were added since the last seal.
func (a *AccessLog) seal() {
	if a.unsealed == 0 || a.signer == nil {
		return
	}
	a.append(a.signer.Seal(events.TypeAccessSealed, a.subject, a.chain.Seq, a.chain.Hash), time.Now())
	a.unsealed = 0
}
