package events

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixedChain builds a deterministic three-event chain for golden tests.
func fixedChain(t *testing.T) []Envelope {
	t.Helper()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	payloads := []Payload{
		ExecutionRequested{UserID: "u1", Request: Request{
			Sources: []SourceSpec{{Name: "a", Type: "local", Config: map[string]string{"path": "a.jsonl"}, Priority: 1}},
			Output:  OutputSpec{Formats: []string{"jsonl"}, Compression: "zstd"},
		}},
		ExecutionStarted{StagedOffset: 42},
		StageProgress{Stage: StageValidation, Counts: Counts{Received: 10, Valid: 9, Rejected: 1}},
	}
	var c Chain
	var out []Envelope
	for i, p := range payloads {
		e, err := New("test", "ds_1", at.Add(time.Duration(i)*time.Second), p)
		require.NoError(t, err)
		e.ID = "id-" + string(rune('a'+i))
		c.Seal(&e)
		out = append(out, e)
	}
	return out
}

func TestEnvelopeGolden(t *testing.T) {
	t.Parallel()
	envs := fixedChain(t)
	var got []byte
	for _, e := range envs {
		b, err := Encode(e)
		require.NoError(t, err)
		got = append(append(got, b...), '\n')
	}
	path := filepath.Join("testdata", "chain.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "wire format changed: published versions are never edited")
}

func TestDecodeRoundTripKeepsHash(t *testing.T) {
	t.Parallel()
	var decoded []Envelope
	for _, e := range fixedChain(t) {
		b, err := Encode(e)
		require.NoError(t, err)
		d, err := Decode(b)
		require.NoError(t, err)
		decoded = append(decoded, d)
	}
	require.NoError(t, Verify(decoded))
	p, err := Parse(decoded[0])
	require.NoError(t, err)
	require.Equal(t, "u1", p.(*ExecutionRequested).UserID)
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	cases := map[string]func([]Envelope) []Envelope{
		"edited data":   func(e []Envelope) []Envelope { e[1].Data = json.RawMessage(`{"staged_offset":43}`); return e },
		"removed event": func(e []Envelope) []Envelope { return append(e[:1], e[2:]...) },
		"reordered":     func(e []Envelope) []Envelope { e[1], e[2] = e[2], e[1]; return e },
		"edited time":   func(e []Envelope) []Envelope { e[2].Time = e[2].Time.Add(time.Second); return e },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, Verify(tamper(fixedChain(t))), ErrBrokenChain)
		})
	}
}

func TestDecodeRejectsIncompleteEnvelopes(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `{`, `[]`, `{"id":"x"}`, `{"id":"x","type":"t","subject":"s","specversion":"1.0"}`,
		`{"id":"x","type":"t","subject":"s","specversion":"0.3","seq":1}`} {
		_, err := Decode([]byte(in))
		require.ErrorIs(t, err, ErrMalformed, "input %q", in)
	}
}

func TestParseRejectsUnknownVersion(t *testing.T) {
	t.Parallel()
	e := fixedChain(t)[1]
	e.DataVersion = "9"
	_, err := Parse(e)
	require.ErrorIs(t, err, ErrMalformed)
}

func FuzzDecode(f *testing.F) {
	for _, e := range fixedChain(&testing.T{}) {
		b, _ := Encode(e)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","type":"dataset.stage.progress","subject":"s","specversion":"1.0","seq":1,"data":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		_, _ = Parse(e)
		out, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		e2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if ComputeHash(&e) != ComputeHash(&e2) {
			t.Fatalf("hash not stable across round trip")
		}
	})
}
