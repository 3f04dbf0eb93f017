package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Payload is the data of one event type. EventType is the stable wire name
// (never a Go type name); EventVersion would be bumped for a breaking
// change. Every type is still at version 1: changes so far were compatible
// additions (optional fields, marked where they are declared), so there is
// nothing to upcast yet. A version 2 would come with its upcaster in Parse.
type Payload interface {
	EventType() string
	EventVersion() string
}

// Stable event type names.
const (
	TypeExecutionRequested = "dataset.execution.requested"
	TypeExecutionQueued    = "dataset.execution.queued"
	TypeExecutionStarted   = "dataset.execution.started"
	TypeSourceStarted      = "dataset.source.started"
	TypeSourceCompleted    = "dataset.source.completed"
	TypeSourceFailed       = "dataset.source.failed"
	TypeStageStarted       = "dataset.stage.started"
	TypeStageProgress      = "dataset.stage.progress"
	TypeStageCompleted     = "dataset.stage.completed"
	TypeStageFailed        = "dataset.stage.failed"
	TypeAlert              = "dataset.alert"
	TypeProgressReported   = "dataset.execution.progress_reported"
	TypeExecutionCompleted = "dataset.execution.completed"
	TypeExecutionFailed    = "dataset.execution.failed"
	TypeExecutionCancelled = "dataset.execution.cancelled"
	TypeReviewOpened       = "dataset.review.opened"
	TypeReviewAcknowledged = "dataset.review.acknowledged"
	// TypeChainCheckpoint signs an execution's chain head at a stage
	// boundary; TypeExecutionSealed signs it at the end (and again after
	// any later event, such as a review acknowledged afterwards).
	TypeChainCheckpoint = "dataset.audit.checkpoint"
	TypeExecutionSealed = "dataset.execution.sealed"
	// TypeAccessRecorded is one API call in the access audit;
	// TypeAccessSealed signs an access chain's head.
	TypeAccessRecorded = "dataset.access.recorded"
	// TypeExecutionDataDeleted records the right to deletion carried out
	// for one execution: outputs deleted, data key destroyed.
	TypeExecutionDataDeleted = "dataset.execution.data_deleted"
	// TypeOutputRewritten records a finished execution's output written
	// again without the records an erasure names.
	TypeOutputRewritten = "dataset.execution.output_rewritten"
	TypeAccessSealed    = "dataset.access.sealed"
)

// Stage names, in pipeline order.
const (
	StageAcquisition     = "acquisition"
	StageValidation      = "validation"
	StageStandardization = "standardization"
	StageQuality         = "quality_assessment"
	StageSafety          = "safety_validation"
	StageBias            = "bias_detection"
	StageFusion          = "fusion"
	StageBalancing       = "balancing"
	StageOutput          = "output"
)

// RecordStage reports whether stage is one of the per-record stages,
// which run side by side while records stream (acquisition through bias
// detection); the dataset stages (fusion, balancing, output) follow.
func RecordStage(stage string) bool {
	switch stage {
	case StageAcquisition, StageValidation, StageStandardization, StageQuality, StageSafety, StageBias:
		return true
	}
	return false
}

// Error categories: what kind of failure an execution had (docs/OPERATIONS.md).
const (
	CategoryValidation  = "validation_error"
	CategoryIntegration = "integration_error"
	CategorySafety      = "safety_violation"
	CategoryProcessing  = "processing_error"
	CategoryStorage     = "storage_error"
	CategoryTimeout     = "timeout"
)

// Request is the processing request as accepted by the API (version 1).
// Credentials appear only as ${ENV_VAR} references, resolved server-side.
type Request struct {
	Sources    []SourceSpec               `json:"sources"`
	Processing map[string]json.RawMessage `json:"processing,omitempty"`
	Safety     json.RawMessage            `json:"safety,omitempty"`
	Fusion     json.RawMessage            `json:"fusion,omitempty"`
	Output     OutputSpec                 `json:"output"`
}

// SourceSpec names one source of a request.
type SourceSpec struct {
	Name     string            `json:"name,omitempty"`
	Type     string            `json:"type"`
	Config   map[string]string `json:"config"`
	Priority int               `json:"priority"`
	// OnFailure is "fail" (the default: a source that still fails after its
	// retries fails the execution) or "fallback" (it is skipped and the
	// other sources go on).
	OnFailure string `json:"on_failure,omitempty"`
	// Mapping renames input fields to the names standardization reads, for
	// example {"prompt": "question", "response": "answer"}.
	Mapping map[string]string `json:"mapping,omitempty"`
	// ConsentField names the top-level input field that records the data
	// subject's consent, and ConsentValues the values that mean consent
	// given (default true, yes, 1, granted; compared case-insensitively).
	// With processing.require_consent, a record without one of those
	// values is rejected with reason no_consent. Optional: compatible
	// additions to version 1.
	ConsentField  string   `json:"consent_field,omitempty"`
	ConsentValues []string `json:"consent_values,omitempty"`
	// ConsentWithdrawn are the consent field's values that mean consent
	// withdrawn (default withdrawn, revoked): besides being rejected, such
	// a record's data subject is erased from every later execution and
	// every finished output. Optional: a compatible addition to version 1.
	ConsentWithdrawn []string `json:"consent_withdrawn_values,omitempty"`
}

// Source failure policies.
const (
	OnFailureFail     = "fail"
	OnFailureFallback = "fallback"
)

// DisplayName is the source's name, or "source-<n>" (1-based) when it has none.
func (s SourceSpec) DisplayName(index int) string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("source-%d", index+1)
}

// OutputSpec says what the output stage writes and where.
type OutputSpec struct {
	Formats     []string `json:"formats,omitempty"`
	Compression string   `json:"compression,omitempty"`
	Destination string   `json:"destination,omitempty"`
	// ShardBytes splits data files into shards of about this many bytes
	// of records (as JSON, before compression); 0 writes one file per
	// format. Optional: a compatible addition to version 1.
	ShardBytes int64 `json:"shard_bytes,omitempty"`
	// Overwrite is "" (the default: a destination that holds an output is
	// refused) or "new_version": when the destination holds an output of
	// the same user, the new one is written beside it as
	// <destination>.v2, .v3, ... Another execution's files are never
	// replaced. Optional: a compatible addition to version 1.
	Overwrite string `json:"overwrite,omitempty"`
	// KeepSourceIDs writes metadata.source_id as the input had it; by
	// default it is a keyed hash (HMAC under DSPIPE_RECORD_ID_KEY), since
	// an input's own ids can identify a person. Optional: a compatible
	// addition to version 1.
	KeepSourceIDs bool `json:"keep_source_ids,omitempty"`
	// Splits writes the data as separate train/validation/test (or other
	// named) files, each record in the split its id hashes to, so a
	// record and its balancing copies are always in the same split and a
	// rerun puts every record where it was. Optional: a compatible
	// addition to version 1.
	Splits []Split `json:"splits,omitempty"`
}

// Split is one named share of the output's records.
type Split struct {
	Name     string  `json:"name"`
	Fraction float64 `json:"fraction"`
}

// OverwriteNewVersion asks for a versioned directory beside an existing
// output of the same user.
const OverwriteNewVersion = "new_version"

// Counts are the cumulative record counts of an execution.
type Counts struct {
	Received int64 `json:"received"`
	Valid    int64 `json:"valid"`
	Rejected int64 `json:"rejected"`
	// Total is the number of records acquisition produced; zero until
	// acquisition has finished.
	Total int64 `json:"total,omitempty"`
}

// OutputFile describes one file the output stage wrote.
type OutputFile struct {
	Name    string `json:"name"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
}

// ExecutionRequested opens an execution's log.
type ExecutionRequested struct {
	UserID  string  `json:"user_id"`
	Request Request `json:"request"`
	// SubmittedAt is when the API accepted the request: the queue's order
	// (requests reach the processor through several partitions, so the
	// event's own time is not). Absent in events written before it
	// existed, where the event's time stands in.
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
}

// ExecutionQueued says the execution waits for a free processing slot.
type ExecutionQueued struct {
	Active int `json:"active"`
	Limit  int `json:"limit"`
}

// ExecutionStarted says processing began. StagedOffsets are where this
// execution's staged records may begin in each staged-topic partition
// (its records are spread over all of them); StagedOffset is its home
// partition's, the only one an execution of an earlier version used.
type ExecutionStarted struct {
	StagedOffset  int64   `json:"staged_offset"`
	StagedOffsets []int64 `json:"staged_offsets,omitempty"`
}

// SourceStarted says acquisition of one source began.
type SourceStarted struct {
	Source int    `json:"source"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
}

// SourceCompleted says one source was read to its end.
type SourceCompleted struct {
	Source  int    `json:"source"`
	Name    string `json:"name"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// SourceFailed says one source could not be read.
type SourceFailed struct {
	Source   int    `json:"source"`
	Name     string `json:"name"`
	Reason   string `json:"reason"`
	Category string `json:"category"`
}

// StageStarted says a stage began.
type StageStarted struct {
	Stage string `json:"stage"`
}

// StageProgress carries cumulative counts; the processor emits one in every
// transaction that touched the execution, so its state can be rebuilt from
// the log alone.
type StageProgress struct {
	Stage     string  `json:"stage"`
	Counts    Counts  `json:"counts"`
	PerSource []int64 `json:"per_source,omitempty"`
	// NoConsent counts, per source, the records rejected for want of
	// consent. Optional: a compatible addition to version 1.
	NoConsent []int64 `json:"no_consent,omitempty"`
	// RatePerSec is records per second since the execution started.
	RatePerSec float64 `json:"rate_per_sec"`
	// MemoryMB is the memory held by the processor instance emitting the
	// event (Go runtime total), for the feed's memory_usage_mb (docs/openapi.yaml). Optional: a
	// compatible addition to version 1.
	MemoryMB float64 `json:"memory_mb,omitempty"`
	// Safety is the safety stage's cumulative summary, when it runs.
	// Optional: a compatible addition to version 1.
	Safety *SafetySummary `json:"safety,omitempty"`
	// Quality and Bias are the quality and bias stages' cumulative
	// summaries, when they run. Optional: compatible additions to version 1.
	Quality *QualitySummary `json:"quality,omitempty"`
	Bias    *BiasSummary    `json:"bias,omitempty"`
	// EstimatedTotal estimates, while acquisition runs, how many records
	// the sources hold: the records read so far scaled by the share of
	// the sources' bytes read (0 when no source's size is known). Optional:
	// a compatible addition to version 1.
	EstimatedTotal int64 `json:"estimated_total,omitempty"`
}

// QualityBins is the number of bins of the quality histogram (0.1 wide).
const QualityBins = 10

// QualitySummary counts the quality stage's scores: a histogram over
// 0..1 in QualityBins bins, their mean, the records rejected below the
// request's min_score and how often each rule failed. Counts only.
type QualitySummary struct {
	Scored    int64            `json:"scored"`
	Mean      float64          `json:"mean"`
	Histogram []int64          `json:"histogram"`
	Rejected  int64            `json:"rejected"`
	MinScore  float64          `json:"min_score"`
	Failed    map[string]int64 `json:"failed,omitempty"`
}

// Add counts one record's score and failed rules.
func (q *QualitySummary) Add(score float64, failed []string, rejected bool) {
	if len(q.Histogram) != QualityBins {
		q.Histogram = make([]int64, QualityBins)
	}
	bin := int(score * QualityBins)
	q.Histogram[min(max(bin, 0), QualityBins-1)]++
	q.Mean = (q.Mean*float64(q.Scored) + score) / float64(q.Scored+1)
	q.Scored++
	if rejected {
		q.Rejected++
	}
	for _, f := range failed {
		if q.Failed == nil {
			q.Failed = map[string]int64{}
		}
		q.Failed[f]++
	}
}

// Clone returns a deep copy.
func (q *QualitySummary) Clone() *QualitySummary {
	if q == nil {
		return nil
	}
	c := *q
	c.Histogram = append([]int64(nil), q.Histogram...)
	if q.Failed != nil {
		c.Failed = make(map[string]int64, len(q.Failed))
		for k, v := range q.Failed {
			c.Failed[k] = v
		}
	}
	return &c
}

// BiasSummary counts protected-attribute mentions per axis and group, and
// those sharing a sentence with a negative descriptor; Score is the bias
// score under the execution's settings (see internal/bias), Axis the axis
// it comes from. Counts only, never text.
type BiasSummary struct {
	Records  int64                       `json:"records_with_mentions"`
	Groups   map[string]map[string]int64 `json:"groups"`
	Negative map[string]map[string]int64 `json:"negative,omitempty"`
	Score    float64                     `json:"score"`
	Axis     string                      `json:"axis,omitempty"`
	// Distances is each scored axis's distance from its reference.
	Distances map[string]float64 `json:"distances,omitempty"`
	// Intervals is each scored axis's 95% confidence interval on its
	// distance [low, high]; the gate trips on the low end. Optional: a
	// compatible addition to version 1.
	Intervals map[string][2]float64 `json:"intervals,omitempty"`
	// Gate is the largest low end of any axis: what the threshold is
	// compared with.
	Gate float64 `json:"gate,omitempty"`
}

// Clone returns a deep copy.
func (b *BiasSummary) Clone() *BiasSummary {
	if b == nil {
		return nil
	}
	c := *b
	cp := func(m map[string]map[string]int64) map[string]map[string]int64 {
		if m == nil {
			return nil
		}
		out := make(map[string]map[string]int64, len(m))
		for a, g := range m {
			out[a] = make(map[string]int64, len(g))
			for k, v := range g {
				out[a][k] = v
			}
		}
		return out
	}
	c.Groups, c.Negative = cp(b.Groups), cp(b.Negative)
	if b.Intervals != nil {
		c.Intervals = make(map[string][2]float64, len(b.Intervals))
		for k, v := range b.Intervals {
			c.Intervals[k] = v
		}
	}
	if b.Distances != nil {
		c.Distances = make(map[string]float64, len(b.Distances))
		for k, v := range b.Distances {
			c.Distances[k] = v
		}
	}
	return &c
}

// SafetySummary counts what the safety stage found: identifiers per type,
// conversations per crisis level, records quarantined for review. Counts
// only, never text.
type SafetySummary struct {
	PII            map[string]int64 `json:"pii,omitempty"`
	RecordsWithPII int64            `json:"records_with_pii"`
	Crisis         map[string]int64 `json:"crisis,omitempty"`
	Quarantined    int64            `json:"quarantined"`
	// Content counts records flagged per content category; Flags counts
	// records per review flag; Blocked counts records rejected as never
	// keepable (sexual content involving minors).
	Content map[string]int64 `json:"content,omitempty"`
	Flags   map[string]int64 `json:"flags,omitempty"`
	Blocked int64            `json:"blocked,omitempty"`
}

// Clone returns a deep copy.
func (s *SafetySummary) Clone() *SafetySummary {
	if s == nil {
		return nil
	}
	c := &SafetySummary{RecordsWithPII: s.RecordsWithPII, Quarantined: s.Quarantined, Blocked: s.Blocked, PII: map[string]int64{}, Crisis: map[string]int64{},
		Content: map[string]int64{}, Flags: map[string]int64{}}
	for k, v := range s.Content {
		c.Content[k] = v
	}
	for k, v := range s.Flags {
		c.Flags[k] = v
	}
	for k, v := range s.PII {
		c.PII[k] = v
	}
	for k, v := range s.Crisis {
		c.Crisis[k] = v
	}
	return c
}

// StageCompleted says a stage finished; Counts are its final figures.
type StageCompleted struct {
	Stage      string `json:"stage"`
	Counts     Counts `json:"counts"`
	DurationMS int64  `json:"duration_ms"`
	// Safety is set on the safety stage's completion (optional, v1-compatible).
	Safety *SafetySummary `json:"safety,omitempty"`
	// Quality and Bias are set on those stages' completion (optional,
	// v1-compatible).
	Quality *QualitySummary `json:"quality,omitempty"`
	Bias    *BiasSummary    `json:"bias,omitempty"`
	// Fusion is set on the fusion stage's completion (optional,
	// v1-compatible).
	Fusion *FusionSummary `json:"fusion,omitempty"`
	// Balancing is set on the balancing stage's completion (optional,
	// v1-compatible).
	Balancing *BalancingSummary `json:"balancing,omitempty"`
}

// BalancingSummary is the distribution balancing achieved over its key,
// against the target: per group the records available (after fusion), the
// target share, the records selected and how many of them are repeats.
type BalancingSummary struct {
	Key      string           `json:"key"`
	Records  int64            `json:"records"`
	Selected int64            `json:"selected"`
	Groups   []BalancingGroup `json:"groups"`
}

// BalancingGroup is one group's figures.
type BalancingGroup struct {
	Group     string  `json:"group"`
	Available int64   `json:"available"`
	Target    float64 `json:"target_share,omitempty"`
	Selected  int64   `json:"selected"`
	Repeated  int64   `json:"repeated,omitempty"`
	Achieved  float64 `json:"achieved_share"`
}

// FusionSummary counts what fusion found: records in, duplicate clusters
// of two or more, records removed as exact and as near duplicates, and
// records kept, overall and per source (in request order).
type FusionSummary struct {
	Records       int64   `json:"records"`
	Clusters      int64   `json:"clusters"`
	RemovedExact  int64   `json:"removed_exact"`
	RemovedNear   int64   `json:"removed_near"`
	Kept          int64   `json:"kept"`
	KeptPerSource []int64 `json:"kept_per_source,omitempty"`
	NearThreshold float64 `json:"near_threshold"`
}

// StageFailed says a stage failed.
type StageFailed struct {
	Stage    string `json:"stage"`
	Reason   string `json:"reason"`
	Category string `json:"category"`
}

// Alert is a warning or critical notice for the user or a reviewer.
type Alert struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Stage    string `json:"stage,omitempty"`
}

// ProgressReported is a progress note posted by a service role through the
// internal progress endpoint.
type ProgressReported struct {
	Stage   string  `json:"stage"`
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
	By      string  `json:"by"`
}

// ExecutionCompleted closes a successful execution.
type ExecutionCompleted struct {
	Counts    Counts  `json:"counts"`
	PerSource []int64 `json:"per_source"`
	// NoConsent counts, per source, the records rejected for want of
	// consent. Optional: a compatible addition to version 1.
	NoConsent []int64      `json:"no_consent,omitempty"`
	StagesRun []string     `json:"stages_run"`
	OutputDir string       `json:"output_dir"`
	Files     []OutputFile `json:"files"`
}

// ExecutionFailed closes a failed execution.
type ExecutionFailed struct {
	Stage    string `json:"stage,omitempty"`
	Reason   string `json:"reason"`
	Category string `json:"category"`
}

// ExecutionCancelled closes a cancelled execution.
type ExecutionCancelled struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// ReviewOpened puts a quarantined record in the review queue: where it is
// and why, never its text.
type ReviewOpened struct {
	Review      int      `json:"review"` // 1-based within the execution
	RecordID    string   `json:"record_id"`
	Source      string   `json:"source"`
	Position    int64    `json:"position"`
	Flags       []string `json:"flags"`
	CrisisLevel string   `json:"crisis_level"`
	Score       float64  `json:"score"`
}

// ReviewAcknowledged closes a review with the reviewer's note.
type ReviewAcknowledged struct {
	Review int    `json:"review"`
	By     string `json:"by"`
	Note   string `json:"note"`
}

func (ReviewOpened) EventType() string          { return TypeReviewOpened }
func (ReviewAcknowledged) EventType() string    { return TypeReviewAcknowledged }
func (ReviewOpened) EventVersion() string       { return "1" }
func (ReviewAcknowledged) EventVersion() string { return "1" }

func (ExecutionRequested) EventType() string { return TypeExecutionRequested }
func (ExecutionQueued) EventType() string    { return TypeExecutionQueued }
func (ExecutionStarted) EventType() string   { return TypeExecutionStarted }
func (SourceStarted) EventType() string      { return TypeSourceStarted }
func (SourceCompleted) EventType() string    { return TypeSourceCompleted }
func (SourceFailed) EventType() string       { return TypeSourceFailed }
func (StageStarted) EventType() string       { return TypeStageStarted }
func (StageProgress) EventType() string      { return TypeStageProgress }
func (StageCompleted) EventType() string     { return TypeStageCompleted }
func (StageFailed) EventType() string        { return TypeStageFailed }
func (Alert) EventType() string              { return TypeAlert }
func (ProgressReported) EventType() string   { return TypeProgressReported }
func (ExecutionCompleted) EventType() string { return TypeExecutionCompleted }
func (ExecutionFailed) EventType() string    { return TypeExecutionFailed }
func (ExecutionCancelled) EventType() string { return TypeExecutionCancelled }

func (ExecutionRequested) EventVersion() string { return "1" }
func (ExecutionQueued) EventVersion() string    { return "1" }
func (ExecutionStarted) EventVersion() string   { return "1" }
func (SourceStarted) EventVersion() string      { return "1" }
func (SourceCompleted) EventVersion() string    { return "1" }
func (SourceFailed) EventVersion() string       { return "1" }
func (StageStarted) EventVersion() string       { return "1" }
func (StageProgress) EventVersion() string      { return "1" }
func (StageCompleted) EventVersion() string     { return "1" }
func (StageFailed) EventVersion() string        { return "1" }
func (Alert) EventVersion() string              { return "1" }
func (ProgressReported) EventVersion() string   { return "1" }
func (ExecutionCompleted) EventVersion() string { return "1" }
func (ExecutionFailed) EventVersion() string    { return "1" }
func (ExecutionCancelled) EventVersion() string { return "1" }

// Seal signs the head of a hash chain: the event just before it (seq and
// hash) under an Ed25519 key. The signed message is SealMessage.
type Seal struct {
	typ string
	// Seq and Hash are the head the seal covers: always the event right
	// before the seal itself in the same chain.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// KeyID names the signing key: the first 16 hex digits of the
	// SHA-256 of its 32-byte public key.
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature of SealMessage, base64 (standard
	// alphabet, padded).
	Signature string `json:"signature"`
}

// NewSeal is a seal payload of one of the seal types.
func NewSeal(typ string) *Seal { return &Seal{typ: typ} }

// EventType is the seal's type.
func (s *Seal) EventType() string { return s.typ }

// EventVersion is the seal's version.
func (s *Seal) EventVersion() string { return "1" }

// IsSeal reports the event types that carry a Seal.
func IsSeal(typ string) bool {
	return typ == TypeChainCheckpoint || typ == TypeExecutionSealed || typ == TypeAccessSealed
}

// SealMessage is the exact byte string a seal signs: the ASCII lines
// "dspipe-audit-seal-v1", the seal's event type, the chain's subject, the
// covered seq in decimal and the covered hash, each ended by "\n".
func SealMessage(typ, subject string, seq uint64, hash string) []byte {
	return fmt.Appendf(nil, "dspipe-audit-seal-v1\n%s\n%s\n%d\n%s\n", typ, subject, seq, hash)
}

// ExecutionDataDeleted says an execution's data was deleted: its outputs
// removed and its data key destroyed, so its records on Kafka are
// ciphertext no key opens. Ids and counts only.
type ExecutionDataDeleted struct {
	By           string `json:"by"`
	OutputDir    string `json:"output_dir,omitempty"`
	FilesDeleted int    `json:"files_deleted"`
	KeyDestroyed bool   `json:"key_destroyed"`
}

// EventType is the event's type.
func (ExecutionDataDeleted) EventType() string { return TypeExecutionDataDeleted }

// EventVersion is the event's version.
func (ExecutionDataDeleted) EventVersion() string { return "1" }

// OutputRewritten says an erasure removed records from a finished
// execution's output: a new version was written without them and the old
// one deleted. Ids and counts only.
type OutputRewritten struct {
	Erasure   string       `json:"erasure"`
	Removed   int64        `json:"removed"`
	Previous  string       `json:"previous_output_dir"`
	OutputDir string       `json:"output_dir"`
	Files     []OutputFile `json:"files"`
}

// EventType is the event's type.
func (OutputRewritten) EventType() string { return TypeOutputRewritten }

// EventVersion is the event's version.
func (OutputRewritten) EventVersion() string { return "1" }

// Access is one API call in the access audit: who (user and role), what
// (action, route, execution, review), when (the envelope's time), from
// where (remote address) and the outcome (HTTP status). Never a body, a
// query string, a token or record text.
type Access struct {
	UserID      string  `json:"user_id"`
	Role        string  `json:"role"`
	Action      string  `json:"action"`
	Method      string  `json:"method"`
	Route       string  `json:"route"`
	ExecutionID string  `json:"execution_id,omitempty"`
	Review      string  `json:"review,omitempty"`
	Remote      string  `json:"remote"`
	Status      int     `json:"status"`
	DurationMS  float64 `json:"duration_ms"`
}

// EventType is the access event's type.
func (Access) EventType() string { return TypeAccessRecorded }

// EventVersion is the access event's version.
func (Access) EventVersion() string { return "1" }

// Terminal reports whether an event type ends an execution.
func Terminal(typ string) bool {
	return typ == TypeExecutionCompleted || typ == TypeExecutionFailed || typ == TypeExecutionCancelled
}

// Parse decodes an envelope's data into its payload type. Unknown types and
// versions are errors, never guesses.
func Parse(e Envelope) (Payload, error) {
	var p Payload
	switch e.Type {
	case TypeExecutionRequested:
		p = &ExecutionRequested{}
	case TypeExecutionQueued:
		p = &ExecutionQueued{}
	case TypeExecutionStarted:
		p = &ExecutionStarted{}
	case TypeSourceStarted:
		p = &SourceStarted{}
	case TypeSourceCompleted:
		p = &SourceCompleted{}
	case TypeSourceFailed:
		p = &SourceFailed{}
	case TypeStageStarted:
		p = &StageStarted{}
	case TypeStageProgress:
		p = &StageProgress{}
	case TypeStageCompleted:
		p = &StageCompleted{}
	case TypeStageFailed:
		p = &StageFailed{}
	case TypeAlert:
		p = &Alert{}
	case TypeProgressReported:
		p = &ProgressReported{}
	case TypeExecutionCompleted:
		p = &ExecutionCompleted{}
	case TypeExecutionFailed:
		p = &ExecutionFailed{}
	case TypeExecutionCancelled:
		p = &ExecutionCancelled{}
	case TypeReviewOpened:
		p = &ReviewOpened{}
	case TypeReviewAcknowledged:
		p = &ReviewAcknowledged{}
	case TypeChainCheckpoint, TypeExecutionSealed, TypeAccessSealed:
		p = NewSeal(e.Type)
	case TypeAccessRecorded:
		p = &Access{}
	case TypeExecutionDataDeleted:
		p = &ExecutionDataDeleted{}
	case TypeOutputRewritten:
		p = &OutputRewritten{}
	default:
		return nil, fmt.Errorf("%w: unknown type %q", ErrMalformed, e.Type)
	}
	if e.DataVersion != p.EventVersion() {
		return nil, fmt.Errorf("%w: %s version %q not supported", ErrMalformed, e.Type, e.DataVersion)
	}
	if err := json.Unmarshal(e.Data, p); err != nil {
		return nil, fmt.Errorf("%w: %s data: %v", ErrMalformed, e.Type, err)
	}
	return p, nil
}
