package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	json "github.com/goccy/go-json"

	"github.com/dspipe/dspipe/internal/bias"
	"github.com/dspipe/dspipe/internal/content"
	"github.com/dspipe/dspipe/internal/crisis"
	"github.com/dspipe/dspipe/internal/pii"
	"github.com/dspipe/dspipe/internal/quality"
	dstage "github.com/dspipe/dspipe/internal/stage"
)

// analyzeInput is one line of `dsctl analyze`'s input (../shared/eval/README.md).
type analyzeInput struct {
	ID       json.RawMessage `json:"id"`
	Text     *string         `json:"text"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Posts []string `json:"posts"`
}

// cmdAnalyze runs one detector over JSON Lines on stdin and writes one JSON
// object per input line on stdout, in order. A line that cannot be read
// gets an object with "error" (no content), so positions stay aligned.
func cmdAnalyze(_ context.Context, args []string, _ func(string) string) error {
	if len(args) == 0 {
		return errors.New("usage: dsctl analyze pii|crisis|content|quality|bias [-mask tag|pseudonym|hash] [-min-score 0.5] < in.jsonl > out.jsonl")
	}
	stage, rest := args[0], args[1:]
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	mask := fs.String("mask", pii.MaskTag, "masking strategy for pii: tag, pseudonym or hash")
	salt := fs.String("salt-env", "DSPIPE_PII_SALT", "environment variable holding the salt for -mask hash")
	minScore := fs.Float64("min-score", quality.DefaultMinScore, "quality: the score below which a record is rejected (its reasons are listed)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	var fn func(analyzeInput) (any, error)
	switch stage {
	case "pii":
		s := []byte(os.Getenv(*salt))
		fn = func(in analyzeInput) (any, error) { return analyzePII(in, *mask, s) }
	case "crisis":
		fn = analyzeCrisis
	case "content":
		fn = analyzeContent
	case "quality":
		fn = func(in analyzeInput) (any, error) { return analyzeQuality(in, *minScore) }
	case "bias":
		fn = analyzeBias
	default:
		return fmt.Errorf("unknown analyzer %q: use pii, crisis, content, quality or bias", stage)
	}
	r := bufio.NewReaderSize(os.Stdin, 1<<20)
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	enc := json.NewEncoder(w)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			var in analyzeInput
			var out any
			if jerr := json.Unmarshal(b, &in); jerr != nil {
				out = map[string]any{"error": fmt.Sprintf("line %d is not a JSON object with id and text or messages", line)}
			} else if out, jerr = fn(in); jerr != nil {
				out = map[string]any{"id": in.ID, "error": jerr.Error()}
			}
			if err := enc.Encode(out); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type piiText struct {
	ID     json.RawMessage `json:"id"`
	Masked string          `json:"masked"`
	Spans  []pii.Span      `json:"spans"`
}

type piiMessage struct {
	Role   string     `json:"role"`
	Masked string     `json:"masked"`
	Spans  []pii.Span `json:"spans"`
}

func analyzePII(in analyzeInput, strategy string, salt []byte) (any, error) {
	m := pii.NewMasker(strategy, salt)
	switch {
	case in.Text != nil:
		spans := pii.Detect(*in.Text)
		if spans == nil {
			spans = []pii.Span{}
		}
		return piiText{ID: in.ID, Masked: m.Mask(*in.Text, spans), Spans: spans}, nil
	case in.Messages != nil:
		// One masker for the conversation: a person keeps one pseudonym
		// across turns.
		out := struct {
			ID       json.RawMessage `json:"id"`
			Messages []piiMessage    `json:"messages"`
		}{ID: in.ID}
		for _, msg := range in.Messages {
			spans := pii.Detect(msg.Content)
			if spans == nil {
				spans = []pii.Span{}
			}
			out.Messages = append(out.Messages, piiMessage{Role: msg.Role, Masked: m.Mask(msg.Content, spans), Spans: spans})
		}
		return out, nil
	}
	return nil, errors.New("the line has neither text nor messages")
}

// analyzeCrisis grades a text, a person's posts, or the user turns of a
// conversation (the responder's turns are not the person at risk).
func analyzeCrisis(in analyzeInput) (any, error) {
	var texts []string
	switch {
	case in.Text != nil:
		texts = []string{*in.Text}
	case in.Posts != nil:
		texts = in.Posts
	case in.Messages != nil:
		for _, m := range in.Messages {
			if m.Role == "user" || m.Role == "human" || m.Role == "seeker" || m.Role == "client" || m.Role == "patient" {
				texts = append(texts, m.Content)
			}
		}
	default:
		return nil, errors.New("the line has neither text, posts nor messages")
	}
	r := crisis.Assess(texts)
	return struct {
		ID json.RawMessage `json:"id"`
		crisis.Result
	}{in.ID, r}, nil
}

// analyzeContent scores a text, or every turn of a conversation (the
// conversation's score per category is its highest turn's).
func analyzeContent(in analyzeInput) (any, error) {
	var texts []string
	switch {
	case in.Text != nil:
		texts = []string{*in.Text}
	case in.Messages != nil:
		for _, m := range in.Messages {
			texts = append(texts, m.Content)
		}
	case in.Posts != nil:
		texts = in.Posts
	default:
		return nil, errors.New("the line has neither text, messages nor posts")
	}
	out := content.Result{Categories: map[string]float64{}, Codes: []string{}}
	for _, t := range texts {
		r := content.Assess(t)
		for c, v := range r.Categories {
			out.Categories[c] = max(out.Categories[c], v)
		}
		out.Flagged = out.Flagged || r.Flagged
		out.SelfHarmInstructions = out.SelfHarmInstructions || r.SelfHarmInstructions
		out.Codes = append(out.Codes, r.Codes...)
	}
	return struct {
		ID json.RawMessage `json:"id"`
		content.Result
	}{in.ID, out}, nil
}

// analyzeQuality scores a conversation (or a text, as one user turn) the
// way the pipeline does: through validation and standardization first, so
// roles, cleaning and dropped empty turns are the same.
func analyzeQuality(in analyzeInput, minScore float64) (any, error) {
	var raw []byte
	var err error
	switch {
	case in.Messages != nil:
		raw, err = json.Marshal(map[string]any{"messages": in.Messages})
	case in.Text != nil:
		raw, err = json.Marshal(map[string]any{"text": *in.Text})
	default:
		return nil, errors.New("the line has neither messages nor text")
	}
	if err != nil {
		return nil, err
	}
	v, err := dstage.Validate(raw, dstage.DefaultLimits)
	if err != nil {
		return nil, err
	}
	rec, err := dstage.Standardize(v, dstage.Provenance{Name: "analyze"}, nil)
	if err != nil {
		return quality.Output{ID: in.ID, Score: 0, Signals: map[string]float64{}, Reasons: []string{"standardization: " + err.Error()}}, nil
	}
	r := quality.Assess(rec.Messages, rec.EmptyDropped)
	return quality.Output{ID: in.ID, Score: r.Score, Signals: r.Signals, Reasons: r.Reasons(minScore), Language: r.Language}, nil
}

// analyzeBias lists the protected-attribute mentions of a text (offsets
// into it) or of a conversation (each mention with its message index).
func analyzeBias(in analyzeInput) (any, error) {
	type msgMention struct {
		Message int `json:"message"`
		bias.Mention
	}
	switch {
	case in.Text != nil:
		ms := bias.Detect(*in.Text)
		if ms == nil {
			ms = []bias.Mention{}
		}
		return struct {
			ID       json.RawMessage `json:"id"`
			Mentions []bias.Mention  `json:"mentions"`
		}{in.ID, ms}, nil
	case in.Messages != nil:
		out := []msgMention{}
		for i, m := range in.Messages {
			for _, x := range bias.Detect(m.Content) {
				out = append(out, msgMention{i, x})
			}
		}
		return struct {
			ID       json.RawMessage `json:"id"`
			Mentions []msgMention    `json:"mentions"`
		}{in.ID, out}, nil
	}
	return nil, errors.New("the line has neither text nor messages")
}
