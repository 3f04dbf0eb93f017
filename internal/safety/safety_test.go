package safety

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/stage"
)

// TestProvenanceKeepsFileNamesAndLosesPeople: a file name that reads like
// an organisation stays in the record's source URI; a person's name or
// an email address in a path is masked.
func TestProvenanceKeepsFileNamesAndLosesPeople(t *testing.T) {
	s := Settings{Enabled: true, PIIMasking: "tag", CrisisThreshold: 0.8, MaxQuarantineRate: 1}
	for uri, want := range map[string]string{
		"local:data/source-1-chatml.jsonl":           "local:data/source-1-chatml.jsonl",
		"local:exports/jane.doe@example.com/a.jsonl": "local:exports/[EMAIL]/a.jsonl",
	} {
		// The second record from the same place takes the remembered
		// answer: masked the same.
		for range 2 {
			rec := stage.Record{ID: "r", Source: stage.Provenance{URI: uri}, Messages: []stage.Message{{Role: "user", Content: "hello there"}}}
			Apply(&rec, s, []byte("salt"))
			require.Equal(t, want, rec.Source.URI)
		}
	}
}
