package pipeline

import (
	"encoding/json"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/stage"
)

// StagedRecord is what a dataset stage sees of one staged (kept) record.
type StagedRecord struct {
	// Index is the record's order among the execution's staged records.
	Index       int
	ID          string
	Source      int
	Priority    int
	Position    int64
	Messages    []stage.Message
	Metadata    map[string]string
	Annotations map[string]json.RawMessage
	// Prepared is what the observing stage's Prepare returned for this
	// record (nil when it has none, or it was not called).
	Prepared any
}

// Preparer is a dataset run with per-record work that can run on any core
// before Observe (fusion's signatures). Prepare must not change the run;
// what it returns comes back to Observe as r.Prepared. Observe must also
// work without it.
type Preparer interface {
	Prepare(r *StagedRecord) any
}

// PreparedCodec is a Preparer whose result can travel with the record: the
// processor that ran the record stages prepares each kept record there (on
// every processor of the group, not only the execution's home) and the
// staged record carries the result, sealed, so the output's first pass
// decodes it instead of preparing again. Decode(Encode(v)) must observe
// exactly as v.
type PreparedCodec interface {
	Preparer
	EncodePrepared(v any) []byte
	DecodePrepared(b []byte) (any, error)
}

// Fields are the parts of a staged record that a dataset run's Observe
// reads besides its index, source, priority, position and prepared work.
type Fields uint8

const (
	FieldID Fields = 1 << iota
	FieldMessages
	FieldMetadata
	FieldAnnotations
	AllFields = FieldID | FieldMessages | FieldMetadata | FieldAnnotations
)

// FieldReader is a dataset run that says which Fields its Observe reads
// once its Preparer's work is in r.Prepared. The output's first pass
// skips the fields no active run reads (the messages, most of a record;
// with fusion alone the whole record, which it then neither opens nor
// decodes); a run that is not a FieldReader, or whose prepared work did
// not travel with the record, gets them all.
type FieldReader interface {
	DatasetRun
	Reads() Fields
}

// Plan is what the dataset stages decide about the staged records, by
// Index: how many times each is written (0 when a stage removed it or
// left it out, more than 1 when it is repeated), which ids a kept record
// absorbed, and the stages' summaries.
type Plan struct {
	Copies    []int32
	Merged    Merged
	Fusion    *events.FusionSummary
	Balancing *events.BalancingSummary
}

// DatasetStage is a stage that needs every record before it decides
// (fusion, balancing). Output, the writer, comes after the list.
type DatasetStage interface {
	Name() string
	// Resolve reads the stage's settings; nil means it does not run.
	Resolve(req events.Request, env Env) DatasetRun
}

// DatasetRun is a dataset stage resolved for one execution.
type DatasetRun interface {
	// Observe sees each staged record once, in order, before any stage
	// decides; a record's messages are only valid during the call.
	Observe(r *StagedRecord)
	// Decide changes the plan; stages decide in list order, each over
	// what the stages before it kept.
	Decide(p *Plan) error
	// Close releases what the run holds (temporary files), decided or
	// not.
	Close() error
	// Manifest is the stage's version and resolved settings.
	Manifest() (version string, settings any)
}

// DatasetActive is a dataset stage that runs for an execution.
type DatasetActive = Running[DatasetRun]

// ResolveDataset resolves the dataset list for one request.
func ResolveDataset(list []DatasetStage, req events.Request, env Env) []DatasetActive {
	return resolveList[DatasetStage, DatasetRun](list, req, env)
}

// NewPlan is the plan before any stage decides: every record once.
func NewPlan(n int) *Plan {
	p := &Plan{Copies: make([]int32, n)}
	for i := range p.Copies {
		p.Copies[i] = 1
	}
	return p
}
