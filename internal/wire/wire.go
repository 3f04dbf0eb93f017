// Package wire defines the Kafka record formats services exchange besides
// events: commands (from the API to the processor) and the raw and staged
// record streams with their in-band markers.
package wire

import (
	"encoding/json"
	"fmt"
	"github.com/dspipe/dspipe/internal/kafka"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dspipe/dspipe/events"
)

// Command kinds.
const (
	CmdProcess  = "process"
	CmdCancel   = "cancel"
	CmdProgress = "progress"
	// CmdFinalize is sent by the processor to itself: once the transaction
	// that staged an execution's last record has committed, the dataset
	// stages can read every staged record.
	CmdFinalize = "finalize"
	// CmdAckReview closes a review with a note (Review, Message).
	CmdAckReview = "ack_review"
	// CmdDeleteData deletes a finished execution's outputs and destroys
	// its data key (the right to deletion).
	CmdDeleteData = "delete_data"
	// CmdApplyErasure asks the processor to rewrite a finished
	// execution's output without the records erasures name (Message: the
	// erasure id).
	CmdApplyErasure = "apply_erasure"
)

// Command is a request to the processor, keyed by execution id.
type Command struct {
	Kind        string          `json:"kind"`
	ExecutionID string          `json:"execution_id"`
	UserID      string          `json:"user_id,omitempty"`
	Request     *events.Request `json:"request,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Stage       string          `json:"stage,omitempty"`
	Percent     float64         `json:"percent,omitempty"`
	Message     string          `json:"message,omitempty"`
	Review      int             `json:"review,omitempty"`
	// SubmittedAt is when the API accepted a process command.
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
}

// Record wraps a command for the commands topic.
func (c Command) Record(topic string) (*kgo.Record, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("wire: encode command: %w", err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(c.ExecutionID), Value: b}, nil
}

// DecodeCommand parses a command record.
func DecodeCommand(r *kgo.Record) (Command, error) {
	var c Command
	if err := json.Unmarshal(r.Value, &c); err != nil {
		return c, fmt.Errorf("wire: decode command at offset %d: %w", r.Offset, err)
	}
	if c.ExecutionID == "" || c.ExecutionID != string(r.Key) {
		return c, fmt.Errorf("wire: command at offset %d has no or a mismatched execution id", r.Offset)
	}
	return c, nil
}

// Raw record kinds (header "k").
const (
	KindRecord      = "rec"       // one input record, value is its bytes
	KindBad         = "bad"       // an input record acquisition could not frame; header "e" is the reason
	KindSourceStart = "src_start" // value: SourceMarker
	KindSourceEnd   = "src_end"   // value: SourceMarker
	KindSourceFail  = "src_fail"  // value: SourceMarker
	KindSourceRetry = "src_retry" // an attempt failed and will be retried; value: SourceMarker
	KindAcqEnd      = "acq_end"   // every source is finished; value: AcqEnd
	KindStaged      = "ok"        // staged topic: a canonical record
	KindRejected    = "rej"       // staged topic: a Rejection
	KindQuarantined = "quar"      // staged topic: a canonical record held for crisis review
)

// SourceMarker is the value of source start, end and failure markers.
type SourceMarker struct {
	Source   int    `json:"source"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Records  int64  `json:"records,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Category string `json:"category,omitempty"`
	// Attempt and Attempts number a retry; Fallback says a failed source
	// is skipped and the execution goes on with the others.
	Attempt  int  `json:"attempt,omitempty"`
	Attempts int  `json:"attempts,omitempty"`
	Fallback bool `json:"fallback,omitempty"`
}

// AcqEnd is the value of the acquisition-end marker.
type AcqEnd struct {
	Records int64  `json:"records"`
	Failed  bool   `json:"failed"`
	Reason  string `json:"reason,omitempty"`
}

// Outcome is what the record stages made of one raw record, sent by the
// processor that ran them to the execution's home partition (the outcomes
// topic), sealed under the execution's data key: where the record was, its
// fate, and each stage's finding in the stage's own encoding. Never text.
type Outcome struct {
	Source   int    `json:"s"`
	Position int64  `json:"p"`
	Seq      int64  `json:"n,omitempty"`
	Object   string `json:"u,omitempty"`
	Read     int64  `json:"r,omitempty"`
	Size     int64  `json:"z,omitempty"`
	// Stage and Reason say where and why the record was rejected ("": it
	// was not).
	Stage  string `json:"stage,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Action, FateStage and FateReason are the stages' verdict
	// (pipeline.Fate).
	Action     uint8  `json:"a,omitempty"`
	FateStage  string `json:"fs,omitempty"`
	FateReason string `json:"fr,omitempty"`
	// Findings are the active record stages' findings, in list order (null
	// where a stage did not run).
	Findings []json.RawMessage `json:"f,omitempty"`
	// Withdrawn is the pseudonym of a data subject whose consent this
	// record says was withdrawn.
	Withdrawn string `json:"w,omitempty"`
}

// Rejection is one rejected record: where it was and why, never its content.
type Rejection struct {
	Source   string `json:"source"`
	SourceIx int    `json:"source_index"`
	Position int64  `json:"position"`
	// Object is the file or object of the source the record was in.
	Object string `json:"object,omitempty"`
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
}

// Meta is the header metadata of raw and staged records.
type Meta struct {
	Kind     string
	Source   int
	Position int64
	// Seq is the record's number within its source (1-based, in the order
	// acquisition read it, across the source's objects): it decides the
	// record's partition (kafka.Spread) and the output's order.
	Seq int64
	Err string
	// Object is the URI of the object (file) within the source.
	Object string
	// Read is how many bytes of the source (as stored: compressed bytes
	// for a compressed file) acquisition has consumed up to and including
	// this record; Size is the source's total when its listing gave every
	// object's size (0: unknown). Together they estimate the records still
	// to come while acquisition runs.
	Read, Size int64
}

// Headers encodes m as record headers.
func (m Meta) Headers() []kgo.RecordHeader {
	h := []kgo.RecordHeader{
		{Key: "k", Value: []byte(m.Kind)},
		{Key: "s", Value: strconv.AppendInt(nil, int64(m.Source), 10)},
		{Key: "p", Value: strconv.AppendInt(nil, m.Position, 10)},
	}
	if m.Seq > 0 {
		h = append(h, kgo.RecordHeader{Key: kafka.SeqHeader, Value: strconv.AppendInt(nil, m.Seq, 10)})
	}
	if m.Err != "" {
		h = append(h, kgo.RecordHeader{Key: "e", Value: []byte(m.Err)})
	}
	if m.Object != "" {
		h = append(h, kgo.RecordHeader{Key: "u", Value: []byte(m.Object)})
	}
	if m.Read > 0 && m.Size > 0 {
		h = append(h, kgo.RecordHeader{Key: "r", Value: strconv.AppendInt(nil, m.Read, 10)},
			kgo.RecordHeader{Key: "z", Value: strconv.AppendInt(nil, m.Size, 10)})
	}
	return h
}

// ReadMeta decodes the headers of a raw or staged record.
func ReadMeta(r *kgo.Record) (Meta, error) {
	var m Meta
	for _, h := range r.Headers {
		switch h.Key {
		case "k":
			m.Kind = string(h.Value)
		case "s":
			n, err := strconv.Atoi(string(h.Value))
			if err != nil {
				return m, fmt.Errorf("wire: bad source header at offset %d", r.Offset)
			}
			m.Source = n
		case "p":
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return m, fmt.Errorf("wire: bad position header at offset %d", r.Offset)
			}
			m.Position = n
		case kafka.SeqHeader:
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return m, fmt.Errorf("wire: bad sequence header at offset %d", r.Offset)
			}
			m.Seq = n
		case "e":
			m.Err = string(h.Value)
		case "u":
			m.Object = string(h.Value)
		case "r":
			m.Read, _ = strconv.ParseInt(string(h.Value), 10, 64) // an estimate only: a bad value reads as unknown
		case "z":
			m.Size, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	if m.Kind == "" {
		return m, fmt.Errorf("wire: record at offset %d has no kind header", r.Offset)
	}
	return m, nil
}
