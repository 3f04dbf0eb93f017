package source

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/internal/stage"
	"github.com/dspipe/dspipe/internal/testenv"
)

// sharedData returns ../shared/data/<name>, or skips saying so.
func sharedData(t *testing.T, name string) string { return testenv.Shared(t, "data", name) }

// standardizeFile reads a real file through the local source (listing,
// resumable reading, compression sniffing, framing: the path ingest uses)
// and runs validation and standardization, returning the records and the
// rejection reasons.
func standardizeFile(t *testing.T, path string) ([]stage.Record, []string) {
	src := &Local{Path: path, Roots: []string{filepath.Dir(path)}}
	objs, err := src.List(context.Background())
	require.NoError(t, err)
	require.Len(t, objs, 1)
	var recs []stage.Record
	var rejected []string
	err = Each(context.Background(), src, objs[0], ReadOptions{MaxRecord: 1 << 20, Attempts: 3}, func(it Item, _ Counter) error {
		if it.Err != "" {
			rejected = append(rejected, it.Err)
			return nil
		}
		in, err := stage.Validate(it.Data, stage.DefaultLimits)
		if err == nil {
			var rec stage.Record
			rec, err = stage.Standardize(in, stage.Provenance{Name: "local", URI: objs[0].URI, Position: it.Position}, nil)
			if err == nil {
				recs = append(recs, rec)
				return nil
			}
		}
		rejected = append(rejected, err.Error())
		return nil
	})
	require.NoError(t, err)
	return recs, rejected
}

func TestRealESConvBecomesCanonicalDialogues(t *testing.T) {
	t.Parallel()
	recs, rejected := standardizeFile(t, sharedData(t, "esconv-test.json"))
	require.Empty(t, rejected)
	require.Len(t, recs, 195, "every ESConv dialogue in the file")
	for _, r := range recs {
		require.Equal(t, "esconv", r.Metadata["format"])
		require.GreaterOrEqual(t, len(r.Messages), 2)
		for i := 1; i < len(r.Messages); i++ {
			require.NotEqual(t, r.Messages[i-1].Role, r.Messages[i].Role, "consecutive turns of one speaker are merged")
		}
		require.NotEmpty(t, r.Metadata["problem_type"])
	}
}

func TestRealCounselChatBecomesQuestionAnswerPairs(t *testing.T) {
	t.Parallel()
	recs, rejected := standardizeFile(t, sharedData(t, "counsel-chat.csv"))
	require.Empty(t, rejected)
	require.Len(t, recs, 2129, "every answer row of the file, multi-line quoted fields included")
	for _, r := range recs {
		require.Equal(t, "qa", r.Metadata["format"])
		require.Len(t, r.Messages, 2)
		require.Equal(t, stage.RoleUser, r.Messages[0].Role)
		require.Equal(t, stage.RoleAssistant, r.Messages[1].Role)
	}
}
