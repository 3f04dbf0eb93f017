package stage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// ErrInvalid marks a record that fails validation; the message says why and
// never quotes the record's content.
var ErrInvalid = errors.New("invalid record")

// Limits bound what validation accepts.
type Limits struct {
	MaxRecordBytes int
	MaxMessages    int
}

// DefaultLimits are used when a request sets none.
var DefaultLimits = Limits{MaxRecordBytes: 1 << 20, MaxMessages: 1000}

// input is the union of the fields of every supported input format.
type input struct {
	Messages      []turn `json:"messages"`
	Conversations []turn `json:"conversations"`
	Dialog        []turn `json:"dialog"`

	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`

	Question      string `json:"question"`
	Answer        string `json:"answer"`
	QuestionTitle string `json:"questionTitle"`
	QuestionText  string `json:"questionText"`
	AnswerText    string `json:"answerText"`

	Text string `json:"text"`

	ID             json.RawMessage `json:"id"`
	QuestionID     json.RawMessage `json:"questionID"`
	Topic          string          `json:"topic"`
	Language       string          `json:"language"`
	EmotionType    string          `json:"emotion_type"`
	ProblemType    string          `json:"problem_type"`
	ExperienceType string          `json:"experience_type"`
	Split          string          `json:"split"`
}

// turn covers ChatML {role, content}, ShareGPT {from, value} and ESConv
// {speaker, text}.
type turn struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	From    string `json:"from"`
	Value   string `json:"value"`
	Speaker string `json:"speaker"`
	Text    string `json:"text"`
}

// Validate checks encoding, size and shape, and returns the parsed input for
// standardization.
func Validate(raw []byte, lim Limits) (*input, error) {
	if lim.MaxRecordBytes > 0 && len(raw) > lim.MaxRecordBytes {
		return nil, fmt.Errorf("%w: record is %d bytes, over the %d-byte limit", ErrInvalid, len(raw), lim.MaxRecordBytes)
	}
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty record", ErrInvalid)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: expected a JSON object", ErrInvalid)
	}
	var in input
	if err := json.Unmarshal(trimmed, &in); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON: %s", ErrInvalid, jsonErrorWithoutContent(err, len(trimmed)))
	}
	n := len(in.Messages) + len(in.Conversations) + len(in.Dialog)
	if lim.MaxMessages > 0 && n > lim.MaxMessages {
		return nil, fmt.Errorf("%w: %d messages, over the limit of %d", ErrInvalid, n, lim.MaxMessages)
	}
	return &in, nil
}

// jsonErrorWithoutContent describes a decoding error by kind and offset only:
// encoding/json's messages can quote input, which may be personal data.
func jsonErrorWithoutContent(err error, n int) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) && syn.Offset >= int64(n):
		return fmt.Sprintf("truncated JSON (input ends at byte %d)", n)
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type (%s)", typ.Field, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	default:
		return "cannot decode"
	}
}
