package stage

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func standardize(t *testing.T, raw string) (Record, error) {
	t.Helper()
	in, err := Validate([]byte(raw), DefaultLimits)
	if err != nil {
		return Record{}, err
	}
	return Standardize(in, Provenance{Name: "src", Type: "local", URI: "f.jsonl", Priority: 1, Position: 7}, nil)
}

// TestStandardizeGolden maps one record of every supported format to the
// canonical record and compares with testdata/standardize.golden.
func TestStandardizeGolden(t *testing.T) {
	t.Parallel()
	inputs := []string{
		`{"id":"c1","messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"I  feel\tlow "},{"role":"assistant","content":"I'm here."}],"topic":"depression"}`,
		`{"id":7,"conversations":[{"from":"human","value":"Cafe\u0301 anxiety"},{"from":"gpt","value":"Tell me more.\r\n\r\n\r\nOk?"}]}`,
		`{"emotion_type":"anxiety","problem_type":"job crisis","dialog":[{"speaker":"usr","text":"hi"},{"speaker":"usr","text":"I lost my job"},{"speaker":"sys","text":"I'm sorry."}]}`,
		`{"instruction":"How do I sleep better?","input":"I wake at 3am.","output":"Try a wind-down routine."}`,
		`{"questionID":"12","questionTitle":"Worthless","questionText":"I feel worthless.","answerText":"You are not.","topic":"self-esteem"}`,
		`{"text":"Just a journal entry."}`,
	}
	var got strings.Builder
	for _, in := range inputs {
		rec, err := standardize(t, in)
		require.NoError(t, err, in)
		b, err := json.Marshal(rec)
		require.NoError(t, err)
		got.Write(b)
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", "standardize.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got.String())
}

func TestValidationRejectsWithReasonsThatQuoteNoContent(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"truncated":     `{"messages":[{"role":"user","content":"my secret name is Zelda`,
		"invalid utf8":  "{\"text\":\"\xff\xfe\"}",
		"not object":    `["a"]`,
		"empty":         `   `,
		"unknown shape": `{"foo":"Zelda"}`,
		"empty content": `{"messages":[{"role":"user","content":"  "}]}`,
		"unknown role":  `{"messages":[{"role":"narrator","content":"Zelda"}]}`,
		"wrong type":    `{"messages":"Zelda"}`,
	}
	for name, in := range cases {
		_, err := standardize(t, in)
		require.ErrorIs(t, err, ErrInvalid, name)
		require.NotContains(t, err.Error(), "Zelda", "%s: reasons must not quote the record", name)
	}
	_, err := Validate([]byte(`{"text":"`+strings.Repeat("a", 100)+`"}`), Limits{MaxRecordBytes: 50})
	require.ErrorContains(t, err, "limit")
}

func TestRecordIDIsAContentHash(t *testing.T) {
	t.Parallel()
	a, err := standardize(t, `{"messages":[{"role":"user","content":"hi"}]}`)
	require.NoError(t, err)
	b, err := standardize(t, `{"messages":[{"role":"user","content":" hi "}]}`)
	require.NoError(t, err)
	c, err := standardize(t, `{"messages":[{"role":"user","content":"hello"}]}`)
	require.NoError(t, err)
	require.Equal(t, a.ID, b.ID, "normalised text gives the same id")
	require.NotEqual(t, a.ID, c.ID)
}

func TestCleanIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a  b", " x\n\n\n\ny ", "e\u0301", "tab\there", "ok"} {
		once := Clean(s)
		require.Equal(t, once, Clean(once), "%q", s)
	}
}

func FuzzValidateStandardize(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"dialog":[{"speaker":"usr","text":"a"},{"speaker":"sys","text":"b"}]}`))
	f.Add([]byte(`{"instruction":"a","output":"b"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := Validate(raw, DefaultLimits)
		if err != nil {
			return
		}
		rec, err := Standardize(in, Provenance{Name: "f"}, nil)
		if err != nil {
			return
		}
		if len(rec.Messages) == 0 {
			t.Fatal("a standardized record has no messages")
		}
		for _, m := range rec.Messages {
			if m.Content == "" || m.Content != Clean(m.Content) {
				t.Fatalf("message content not clean: %q", m.Content)
			}
		}
		if _, err := json.Marshal(rec); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRecordIDIsKeyed(t *testing.T) {
	in, err := Validate([]byte(`{"messages":[{"role":"user","content":"I am Jane"},{"role":"assistant","content":"Hello"}]}`), DefaultLimits)
	require.NoError(t, err)
	plain, err := Standardize(in, Provenance{Name: "s"}, nil)
	require.NoError(t, err)
	a, err := Standardize(in, Provenance{Name: "s"}, []byte("key-a"))
	require.NoError(t, err)
	again, err := Standardize(in, Provenance{Name: "s", Position: 9}, []byte("key-a"))
	require.NoError(t, err)
	b, err := Standardize(in, Provenance{Name: "s"}, []byte("key-b"))
	require.NoError(t, err)
	require.Equal(t, a.ID, again.ID, "same key, same conversation and source: same id")
	require.NotEqual(t, a.ID, b.ID, "another key gives another id")
	require.NotEqual(t, plain.ID, a.ID, "a keyed id is not the plain hash")
	require.Len(t, a.ID, 32)
}
