package app_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
)

// canaryRecords are input records with identifiers planted in message
// text, in metadata and in the record's own id.
const canaryRecords = `{"id":"canary-7731@example.org","topic":"Zelda Quarrington 123-45-6789","messages":[{"role":"user","content":"I'm Zelda Quarrington, write to canary-7731@example.org. My SSN is 123-45-6789 and I feel low."},{"role":"assistant","content":"Thank you for telling me. What has been weighing on you?"}]}
{"id":"q-2","topic":"work stress","messages":[{"role":"user","content":"I want to kill myself tonight, I have the pills ready."},{"role":"assistant","content":"I'm really glad you told me. Please call 988 now, you deserve support."}]}
`

// readAll returns a data file's text, zstd-decoded when it is compressed.
func readAllText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	if strings.HasSuffix(path, ".zst") {
		zr, err := zstd.NewReader(nil)
		require.NoError(t, err)
		defer zr.Close()
		b, err = zr.DecodeAll(b, nil)
		require.NoError(t, err)
	}
	return string(b)
}

// TestIdentifiersOutsideMessagesAreMasked is finding 2: identifiers in a
// record's metadata and its own id are masked (or pseudonymised) in JSONL,
// CSV and Parquet as they are in message text, and a review note naming a
// person is masked before it enters the audit trail.
func TestIdentifiersOutsideMessagesAreMasked(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{env: map[string]string{"ENABLE_SAFETY_VALIDATION": "true", "CRISIS_DETECTION_THRESHOLD": "0.5"}})
	in := filepath.Join(s.data, "canary.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(canaryRecords), 0o644))
	req := localRequest(in)
	req.Output = events.OutputSpec{Formats: []string{"jsonl", "csv", "parquet"}, Compression: "zstd"}
	id, msgs := s.run(t, req)
	require.Equal(t, "completed", msgs[len(msgs)-1].Data["status"], "%v", msgs[len(msgs)-1].Data)
	x := waitProjected(t, s, id, msgs)

	canaries := []string{"canary-7731@example.org", "Zelda", "Quarrington", "123-45-6789"}
	var all strings.Builder
	ents, err := os.ReadDir(x.OutputDir)
	require.NoError(t, err)
	for _, e := range ents {
		p := filepath.Join(x.OutputDir, e.Name())
		if strings.Contains(e.Name(), ".parquet") {
			all.WriteString(parquetText(t, p))
			continue
		}
		all.WriteString(readAllText(t, p))
	}
	for _, c := range canaries {
		require.NotContains(t, all.String(), c, "the output directory holds no canary")
	}

	data := readLines(t, filepath.Join(x.OutputDir, "data.jsonl.zst"))
	require.Len(t, data, 1)
	md := data[0]["metadata"].(map[string]any)
	require.Regexp(t, `^sid_[0-9a-f]{32}$`, md["source_id"], "the input's id is a keyed pseudonym")
	require.Contains(t, md["topic"], "[PERSON_", "metadata is masked like message text")
	require.Contains(t, md["topic"], "[SSN_")
	f, err := os.Open(filepath.Join(x.OutputDir, "data.csv.zst"))
	require.NoError(t, err)
	defer f.Close()
	zr, err := zstd.NewReader(f)
	require.NoError(t, err)
	defer zr.Close()
	rows, err := csv.NewReader(zr).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)

	// The quarantined record's review, acknowledged with a note that names
	// a person and an email: both are masked in the trail.
	ctx := context.Background()
	var ack map[string]any
	require.NoError(t, s.client.DoV1(ctx, "POST", "/reviews/"+id+"/1/acknowledge",
		map[string]string{"note": "Called Zelda Quarrington at canary-7731@example.org; excluded."}, &ack))
	require.Equal(t, "Called [PERSON] at [EMAIL]; excluded.", ack["note"])
	x = s.waitStatusSeq(t, id, x.LastSeq+1)
	trail := readEvents(t, s, id)
	for _, c := range canaries {
		require.NotContains(t, trail, c)
	}
	require.Contains(t, trail, "Called [PERSON] at [EMAIL]; excluded.")

	// Opting out keeps the input's ids (still masked when they hold an
	// identifier).
	req.Output.KeepSourceIDs = true
	id2, msgs := s.run(t, req)
	x2 := waitProjected(t, s, id2, msgs)
	data = readLines(t, filepath.Join(x2.OutputDir, "data.jsonl.zst"))
	require.Equal(t, "[EMAIL_1]", data[0]["metadata"].(map[string]any)["source_id"])
	b, _ := json.Marshal(data)
	require.NotContains(t, string(b), "canary-7731")
}

// parquetText is every value of a Parquet file as text, one a line.
func parquetText(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	var b strings.Builder
	rows := make([]parquet.Row, 64)
	for _, rg := range pf.RowGroups() {
		rr := rg.Rows()
		for {
			n, err := rr.ReadRows(rows)
			for _, row := range rows[:n] {
				for _, v := range row {
					b.WriteString(v.String() + "\n")
				}
			}
			if err != nil {
				break
			}
		}
		rr.Close()
	}
	require.NotZero(t, b.Len(), "the Parquet file holds values")
	return b.String()
}
