// Package snapshot is the processor's state snapshots: per partition of the
// event log, what the events up to an offset say of each execution. The
// processor writes one in the transaction whose events it covers; a
// restarted processor, and ingest when it is given a partition, read the
// latest and replay only the events after it, so neither restart grows
// with the history of the log.
//
// A snapshot holds what the event log holds (requests, counts, summaries,
// chain heads, review states): no record text, nothing personal.
package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/kafka"
)

// Version is the snapshot format; a snapshot of another version is not
// used (the partition is replayed from offset 0).
const Version = 1

// Snapshot is one partition's executions as of an offset of the event log.
type Snapshot struct {
	Version   int   `json:"version"`
	Partition int32 `json:"partition"`
	// Next is the event-log offset the replay resumes from: every event
	// below it is in the snapshot.
	Next       int64       `json:"next"`
	Executions []Execution `json:"executions"`
}

// Execution is what the event log says of one execution. A finished
// execution keeps only what is still asked of it (its owner, chain head,
// reviews, output and whether its data was deleted).
type Execution struct {
	ID          string                 `json:"id"`
	Partition   int32                  `json:"partition"`
	User        string                 `json:"user,omitempty"`
	Request     events.Request         `json:"request"`
	ChainSeq    uint64                 `json:"chain_seq"`
	ChainHash   string                 `json:"chain_hash"`
	Status      string                 `json:"status"`
	RequestedAt time.Time              `json:"requested_at,omitzero"`
	StartedAt   time.Time              `json:"started_at,omitzero"`
	StagedFrom  int64                  `json:"staged_from,omitempty"`
	StagedFroms []int64                `json:"staged_froms,omitempty"`
	Counts      events.Counts          `json:"counts"`
	PerSource   []int64                `json:"per_source,omitempty"`
	NoConsent   []int64                `json:"no_consent,omitempty"`
	Stages      map[string]time.Time   `json:"stages,omitempty"`
	Sources     []int                  `json:"sources,omitempty"`
	Reviews     map[int]string         `json:"reviews,omitempty"`
	Quality     *events.QualitySummary `json:"quality,omitempty"`
	Safety      *events.SafetySummary  `json:"safety,omitempty"`
	Bias        *events.BiasSummary    `json:"bias,omitempty"`
	OutputDir   string                 `json:"output_dir,omitempty"`
	DataDeleted bool                   `json:"data_deleted,omitempty"`
}

// Execution statuses as the processor keeps them.
const (
	StatusRequested  = "requested"
	StatusQueued     = "queued"
	StatusRunning    = "running"
	StatusFinalizing = "finalizing"
	StatusDone       = "done"
)

// Key is the record key of a partition's snapshots.
func Key(partition int32) []byte { return []byte("partition-" + strconv.Itoa(int(partition))) }

// Latest reads the latest snapshot of one partition. It returns nil, and no
// error, when there is none or it cannot be used (unknown version, another
// partition, undecodable: warn says which), so the caller replays from 0.
func Latest(ctx context.Context, kc kafka.Config, partition int32, warn func(string, ...any)) (*Snapshot, error) {
	r, err := kc.ReadLast(ctx, kc.Topics().Snapshots, partition)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read the latest of partition %d: %w", partition, err)
	}
	if r == nil {
		return nil, nil
	}
	var s Snapshot
	switch err := json.Unmarshal(r.Value, &s); {
	case err != nil:
		warn("snapshot: undecodable, replaying the partition from its start", "partition", partition, "offset", r.Offset, "err", err)
		return nil, nil
	case s.Version != Version || s.Partition != partition:
		warn("snapshot: of another version or partition, replaying the partition from its start",
			"partition", partition, "offset", r.Offset, "version", s.Version)
		return nil, nil
	}
	return &s, nil
}
