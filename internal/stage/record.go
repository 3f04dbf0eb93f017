// Package stage holds the pipeline's per-record stages as pure functions of
// a record: no I/O, no clocks, so they are deterministic, fuzzable and
// benchmarkable on their own.
package stage

import "encoding/json"

// Version of each stage's logic; it goes into record lineage and the
// manifest so an output can be traced to the code that produced it.
const (
	ValidationVersion      = "1"
	StandardizationVersion = "1"
)

// Provenance says where a record came from.
type Provenance struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	URI      string `json:"uri"`
	Priority int    `json:"priority"`
	Position int64  `json:"position"`
}

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Lineage is one stage's mark on a record.
type Lineage struct {
	Stage   string `json:"stage"`
	Version string `json:"version"`
	Changed bool   `json:"changed"`
	// Merged lists the ids of the duplicates fusion removed in favour of
	// this record.
	Merged []string `json:"merged,omitempty"`
	// Repeat numbers the extra copies balancing wrote of an oversampled
	// record (1 for the first repeat).
	Repeat int `json:"repeat,omitempty"`
}

// Record is the canonical conversation record of DESIGN.md.
type Record struct {
	ID          string                     `json:"id"`
	Source      Provenance                 `json:"source"`
	Messages    []Message                  `json:"messages"`
	Metadata    map[string]string          `json:"metadata,omitempty"`
	Annotations map[string]json.RawMessage `json:"annotations,omitempty"`
	Lineage     []Lineage                  `json:"lineage"`
	// EmptyDropped is how many empty turns standardization removed; the
	// quality stage reads it in the same process (it is not serialised).
	EmptyDropped int `json:"-"`
}

// Roles of the canonical record.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)
