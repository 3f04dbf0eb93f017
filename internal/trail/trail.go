// Package trail fetches an execution's audit trail from wherever an
// auditor reads it (the API, Postgres, or the Kafka event topic itself)
// and verifies it with internal/audit: the hash chain, the signed seals,
// and, where there is one, the read model's owner and counts. dsctl audit
// and the tests use it alike.
package trail

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/audit"
	"github.com/dspipe/dspipe/internal/client"
	"github.com/dspipe/dspipe/internal/kafka"
	"github.com/dspipe/dspipe/internal/store"
)

// Trail is an execution's events as published, in the order its source
// holds them, and the read model next to them when the source has one.
type Trail struct {
	ExecutionID string
	Raw         [][]byte
	ReadModel   *audit.ReadModel
}

// Verify decodes and verifies the trail with keys.
func (t Trail) Verify(keys audit.Keys) (audit.Report, error) {
	envs := make([]events.Envelope, 0, len(t.Raw))
	for i, b := range t.Raw {
		e, err := events.Decode(b)
		if err != nil {
			r := audit.Report{Subject: t.ExecutionID, Events: len(t.Raw), BrokenAt: uint64(i + 1),
				Problem: fmt.Sprintf("event at position %d cannot be decoded: %v", i+1, err)}
			return r, nil
		}
		envs = append(envs, e)
	}
	r := audit.VerifyExecution(t.ExecutionID, envs, keys)
	if t.ReadModel != nil {
		audit.CheckReadModel(&r, *t.ReadModel)
	}
	return r, nil
}

// FromAPI fetches the trail and the read model's view through the API.
func FromAPI(ctx context.Context, c *client.Client, id string) (Trail, error) {
	var out struct {
		Events    []json.RawMessage `json:"events"`
		ReadModel audit.ReadModel   `json:"read_model"`
	}
	if err := c.Do(ctx, "GET", "/"+id+"/events", nil, &out); err != nil {
		return Trail{}, err
	}
	t := Trail{ExecutionID: id, ReadModel: &out.ReadModel}
	for _, e := range out.Events {
		t.Raw = append(t.Raw, e)
	}
	return t, nil
}

// PublicKeyFromAPI fetches the API's published audit key. An auditor
// should pin the key out of band; this is the convenient default.
func PublicKeyFromAPI(ctx context.Context, c *client.Client) (audit.Keys, error) {
	var out struct {
		PEM string `json:"public_key_pem"`
	}
	if err := c.DoV1(ctx, "GET", "/audit/public-key", nil, &out); err != nil {
		return nil, err
	}
	return audit.ParsePublicKeys([]byte(out.PEM))
}

// FromPostgres reads the audit table and the executions read model
// directly.
func FromPostgres(ctx context.Context, st *store.Store, id string) (Trail, error) {
	x, err := st.Execution(ctx, id)
	if err != nil {
		return Trail{}, fmt.Errorf("execution %s: %w", id, err)
	}
	raw, err := st.EventsSince(ctx, id, 0, 100_000_000)
	if err != nil {
		return Trail{}, err
	}
	rm := audit.ReadModel{UserID: x.UserID, Status: x.Status, LastSeq: x.LastSeq, Received: x.Received, Valid: x.Valid, Rejected: x.Rejected}
	return Trail{ExecutionID: id, Raw: raw, ReadModel: &rm}, nil
}

// FromKafka reads every event of the execution from the event topic, in
// log order: the source of truth, with no read model beside it.
func FromKafka(ctx context.Context, kc kafka.Config, id string) (Trail, error) {
	t := Trail{ExecutionID: id}
	topic := kc.Topics().Events
	for p := int32(0); p < kc.Partitions; p++ {
		err := kc.ReadPartition(ctx, topic, p, 0, func(r *kgo.Record) error {
			if string(r.Key) == id {
				t.Raw = append(t.Raw, append([]byte(nil), r.Value...))
			}
			return nil
		})
		if err != nil {
			return t, err
		}
		if len(t.Raw) > 0 {
			break // one execution's events are all on one partition
		}
	}
	if len(t.Raw) == 0 {
		return t, fmt.Errorf("no events of %s on %s", id, topic)
	}
	return t, nil
}
