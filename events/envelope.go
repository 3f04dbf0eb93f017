// Package events defines the event envelope shared by every service, the
// execution's event types with their stable names and versions, the codec,
// and the per-execution SHA-256 hash chain that makes the log tamper-evident.
//
// Events carry identifiers, counts, scores and hashes only: never
// conversation text or personal data.
package events

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// SpecVersion is the CloudEvents specification version the envelope follows.
const SpecVersion = "1.0"

// Envelope is one event: CloudEvents 1.0 attributes plus the per-execution
// sequence number and hash chain. Subject is the execution id and also the
// Kafka record key, so one execution's events stay in order on one partition.
type Envelope struct {
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject"`
	Time        time.Time       `json:"time"`
	SpecVersion string          `json:"specversion"`
	DataVersion string          `json:"dataversion"`
	Seq         uint64          `json:"seq"`
	PrevHash    string          `json:"prevhash"`
	Hash        string          `json:"hash"`
	Data        json.RawMessage `json:"data"`
}

// Errors returned by Decode and Verify.
var (
	ErrMalformed   = errors.New("events: malformed envelope")
	ErrBrokenChain = errors.New("events: broken hash chain")
)

// New builds an unsealed envelope of the payload's type. The id is random;
// Seal assigns seq and hashes.
func New(source, subject string, at time.Time, p Payload) (Envelope, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: marshal %s: %w", p.EventType(), err)
	}
	return Envelope{
		ID:          newID(),
		Source:      source,
		Type:        p.EventType(),
		Subject:     subject,
		Time:        at.UTC().Truncate(time.Microsecond),
		SpecVersion: SpecVersion,
		DataVersion: p.EventVersion(),
		Data:        data,
	}, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Chain is the running state of one execution's hash chain: the last
// sequence number and hash. The zero value starts a new chain.
type Chain struct {
	Seq  uint64
	Hash string
}

// Seal assigns the next sequence number and links e into the chain.
func (c *Chain) Seal(e *Envelope) {
	e.Seq = c.Seq + 1
	e.PrevHash = c.Hash
	e.Hash = ComputeHash(e)
	c.Seq, c.Hash = e.Seq, e.Hash
}

// Next checks that e continues the chain and advances it.
func (c *Chain) Next(e *Envelope) error {
	if e.Seq != c.Seq+1 {
		return fmt.Errorf("%w: %s seq %d after %d", ErrBrokenChain, e.Subject, e.Seq, c.Seq)
	}
	if e.PrevHash != c.Hash {
		return fmt.Errorf("%w: %s seq %d prevhash does not match", ErrBrokenChain, e.Subject, e.Seq)
	}
	if ComputeHash(e) != e.Hash {
		return fmt.Errorf("%w: %s seq %d content does not match its hash", ErrBrokenChain, e.Subject, e.Seq)
	}
	c.Seq, c.Hash = e.Seq, e.Hash
	return nil
}

// ComputeHash is SHA-256 over every attribute but Hash itself, each field
// length-prefixed so that no two different envelopes hash the same bytes.
func ComputeHash(e *Envelope) string {
	h := sha256.New()
	var buf []byte
	field := func(s []byte) {
		buf = strconv.AppendInt(buf[:0], int64(len(s)), 10)
		buf = append(buf, ':')
		h.Write(buf)
		h.Write(s)
	}
	field([]byte(e.PrevHash))
	field([]byte(e.ID))
	field([]byte(e.Source))
	field([]byte(e.Type))
	field([]byte(e.Subject))
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.SpecVersion))
	field([]byte(e.DataVersion))
	field(strconv.AppendUint(nil, e.Seq, 10))
	field(e.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// Encode serialises an envelope for Kafka and the audit table.
func Encode(e Envelope) ([]byte, error) {
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// HTML escaping would rewrite the data bytes the hash was computed over.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", e.Type, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode parses an envelope and checks the attributes every consumer relies on.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case e.ID == "":
		return Envelope{}, fmt.Errorf("%w: missing id", ErrMalformed)
	case e.Type == "":
		return Envelope{}, fmt.Errorf("%w: missing type", ErrMalformed)
	case e.Subject == "":
		return Envelope{}, fmt.Errorf("%w: missing subject", ErrMalformed)
	case e.SpecVersion != SpecVersion:
		return Envelope{}, fmt.Errorf("%w: specversion %q", ErrMalformed, e.SpecVersion)
	case e.Seq == 0:
		return Envelope{}, fmt.Errorf("%w: missing seq", ErrMalformed)
	}
	if len(e.Data) == 0 || bytes.Equal(e.Data, []byte("null")) {
		e.Data = json.RawMessage("{}")
	}
	// Our producers write compact data; compacting here makes the decoded
	// envelope byte-identical to what Encode will write back.
	var compact bytes.Buffer
	if err := json.Compact(&compact, e.Data); err != nil {
		return Envelope{}, fmt.Errorf("%w: data: %v", ErrMalformed, err)
	}
	e.Data = compact.Bytes()
	return e, nil
}

// Verify checks a whole execution's events, in order, from seq 1.
func Verify(envs []Envelope) error {
	var c Chain
	for i := range envs {
		if err := c.Next(&envs[i]); err != nil {
			return err
		}
	}
	return nil
}
