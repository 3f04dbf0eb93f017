package stage

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Standardize maps a validated input to the canonical record: ChatML
// messages, ShareGPT conversations, ESConv dialogs, Alpaca
// instruction/input/output, question/answer pairs (counsel-chat CSV) and
// plain text. Text is NFC-normalised and whitespace is tidied.
func Standardize(in *input, prov Provenance, idKey []byte) (Record, error) {
	var msgs []Message
	format := ""
	switch {
	case len(in.Messages) > 0:
		format = "chatml"
		msgs = turns(in.Messages)
	case len(in.Conversations) > 0:
		format = "sharegpt"
		msgs = turns(in.Conversations)
	case len(in.Dialog) > 0:
		format = "esconv"
		msgs = turns(in.Dialog)
	case in.Instruction != "" && in.Output != "":
		format = "alpaca"
		q := in.Instruction
		if in.Input != "" {
			q += "\n\n" + in.Input
		}
		msgs = []Message{{Role: RoleUser, Content: q}, {Role: RoleAssistant, Content: in.Output}}
	case (in.Question != "" || in.QuestionText != "" || in.QuestionTitle != "") && (in.Answer != "" || in.AnswerText != ""):
		format = "qa"
		q := firstNonEmpty(in.Question, in.QuestionText, in.QuestionTitle)
		a := firstNonEmpty(in.Answer, in.AnswerText)
		msgs = []Message{{Role: RoleUser, Content: q}, {Role: RoleAssistant, Content: a}}
	case in.Text != "":
		format = "text"
		msgs = []Message{{Role: RoleUser, Content: in.Text}}
	default:
		return Record{}, fmt.Errorf("%w: unrecognised format: expected messages, conversations, dialog, instruction/output, question/answer or text", ErrInvalid)
	}
	changed := false
	empty := 0
	out := msgs[:0]
	for i, m := range msgs {
		if m.Role == "" {
			return Record{}, fmt.Errorf("%w: message %d has an unknown role", ErrInvalid, i)
		}
		c := Clean(m.Content)
		if c != m.Content {
			changed = true
		}
		if c == "" {
			changed = true
			empty++
			continue
		}
		m.Content = c
		// Consecutive turns of one speaker (ESConv splits them) are one turn.
		if n := len(out); n > 0 && out[n-1].Role == m.Role {
			out[n-1].Content += "\n" + m.Content
			changed = true
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return Record{}, fmt.Errorf("%w: every message is empty", ErrInvalid)
	}
	md := map[string]string{"format": format}
	for k, v := range map[string]string{"topic": in.Topic, "language": in.Language, "emotion_type": in.EmotionType,
		"problem_type": in.ProblemType, "experience_type": in.ExperienceType, "split": in.Split} {
		if v != "" {
			md[k] = Clean(v)
		}
	}
	natural := naturalKey(in.ID)
	if natural == "" {
		natural = naturalKey(in.QuestionID)
	}
	if natural != "" {
		md["source_id"] = natural
	}
	return Record{
		ID:       recordID(idKey, prov.Name, out),
		Source:   prov,
		Messages: out,
		Metadata: md,
		Lineage: []Lineage{
			{Stage: "validation", Version: ValidationVersion},
			{Stage: "standardization", Version: StandardizationVersion, Changed: changed},
		},
		EmptyDropped: empty,
	}, nil
}

func turns(ts []turn) []Message {
	out := make([]Message, 0, len(ts))
	for _, t := range ts {
		role := firstNonEmpty(t.Role, t.From, t.Speaker)
		out = append(out, Message{Role: normaliseRole(role), Content: firstNonEmpty(t.Content, t.Value, t.Text)})
	}
	return out
}

func normaliseRole(r string) string {
	switch strings.ToLower(strings.TrimSpace(r)) {
	case "user", "human", "usr", "seeker", "client", "patient", "prompter", "question":
		return RoleUser
	case "assistant", "gpt", "sys", "bot", "supporter", "therapist", "counselor", "counsellor", "model", "chatgpt", "answer":
		return RoleAssistant
	case "system":
		return RoleSystem
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func naturalKey(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// recordID is a keyed content hash (HMAC-SHA-256 under key): the same
// conversation from the same source always gets the same id, whatever its
// position, and without the key nobody can test a guessed conversation
// against an id (an id travels in events and outputs; the text it is
// computed from holds personal data). A nil key gives a plain SHA-256.
// SourceIDHash is the keyed pseudonym of an input's own record id:
// "sid_" and 32 hex digits of HMAC-SHA-256 under the record id key, over
// the source name and the id. The same id of the same source always maps
// to the same pseudonym under one key, so joins still work for whoever
// holds the key; nobody else can test a guess against it.
func SourceIDHash(key []byte, source, id string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("source_id\x00"))
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return "sid_" + hex.EncodeToString(h.Sum(nil)[:16])
}

func recordID(key []byte, source string, msgs []Message) string {
	bp := idBufs.Get().(*[]byte)
	b := append((*bp)[:0], source...)
	for _, m := range msgs {
		b = append(b, 0)
		b = append(b, m.Role...)
		b = append(b, 0)
		b = append(b, m.Content...)
	}
	var sum []byte
	if len(key) > 0 {
		h := hmac.New(sha256.New, key)
		h.Write(b)
		sum = h.Sum(nil)
	} else {
		s := sha256.Sum256(b)
		sum = s[:]
	}
	*bp = b
	idBufs.Put(bp)
	return hex.EncodeToString(sum[:16])
}

// idBufs recycles the buffers recordID hashes, one allocation fewer per record.
var idBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Clean normalises text to NFC, turns CR and CRLF into LF, drops control
// characters other than newline and tab, collapses runs of horizontal space,
// allows at most one blank line in a row, and trims the ends.
func Clean(s string) string {
	if !needsCleaning(s) {
		return s
	}
	s = norm.NFC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space, newlines := false, 0
	for _, r := range s {
		switch {
		case r == '\r' || r == '\n':
			if r == '\r' {
				r = '\n'
			}
			space = false
			newlines++
			if newlines <= 2 {
				b.WriteRune('\n')
			}
			continue
		case r == '\t' || unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r) || r == utf8.RuneError:
			continue
		}
		if space && b.Len() > 0 && newlines == 0 {
			b.WriteByte(' ')
		}
		space, newlines = false, 0
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// needsCleaning is a fast scan for the common case of already-clean ASCII:
// no control or non-ASCII bytes, no doubled or edge spaces or newlines.
func needsCleaning(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		switch byteClass[s[i]] {
		case classPlain:
			prevSpace = false
		case classSpace:
			if prevSpace {
				return true
			}
			prevSpace = true
		default:
			return true
		}
	}
	return prevSpace && len(s) > 0
}

const (
	classPlain = iota
	classSpace
	classOther
)

// byteClass sorts bytes for needsCleaning: space and newline, other bytes
// that need work (control characters, DEL, non-ASCII), and plain text.
var byteClass = func() (t [256]byte) {
	for i := range t {
		switch {
		case i == ' ' || i == '\n':
			t[i] = classSpace
		case i < 0x20 || i >= 0x7f:
			t[i] = classOther
		}
	}
	return t
}()
