package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dspipe/dspipe/events"
)

// maxBody bounds a processing request.
const maxBody = 1 << 20

// decodeRequest parses and validates a processing request, returning a
// message that says what to fix.
func decodeRequest(body io.Reader) (events.Request, error) {
	var req events.Request
	b, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return req, fmt.Errorf("cannot read the request body")
	}
	if len(b) > maxBody {
		return req, fmt.Errorf("request body is over %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return req, fmt.Errorf("request body is not valid JSON (syntax error at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return req, fmt.Errorf("field %q must be %s", typ.Field, typ.Type.String())
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return req, fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return req, fmt.Errorf("request body is not valid JSON (it ends too early)")
		case errors.Is(err, io.EOF):
			return req, fmt.Errorf("request body is empty: send a JSON object with sources and output")
		}
		return req, fmt.Errorf("request body is not a valid processing request")
	}
	return req, validateRequest(&req)
}

var sourceTypes = map[string]bool{"local": true, "s3": true, "google_drive": true, "huggingface": true}

func validateRequest(req *events.Request) error {
	if len(req.Sources) == 0 {
		return fmt.Errorf("sources: at least one source is required")
	}
	if len(req.Sources) > 100 {
		return fmt.Errorf("sources: at most 100 sources per request")
	}
	names := map[string]bool{}
	for i := range req.Sources {
		s := &req.Sources[i]
		at := fmt.Sprintf("sources[%d]", i)
		if !sourceTypes[s.Type] {
			return fmt.Errorf("%s.type: must be one of local, s3, google_drive, huggingface", at)
		}
		if s.Type != "local" {
			return fmt.Errorf("%s.type: %s sources are not available in this build yet; use local", at, s.Type)
		}
		if s.Config["path"] == "" {
			return fmt.Errorf("%s.config.path: required for local sources", at)
		}
		if strings.Contains(filepath.ToSlash(s.Config["path"]), "..") {
			return fmt.Errorf("%s.config.path: must not contain '..'", at)
		}
		if f := s.Config["format"]; f != "" && f != "jsonl" && f != "json" && f != "csv" {
			return fmt.Errorf("%s.config.format: must be jsonl, json or csv", at)
		}
		if s.Priority < 0 {
			return fmt.Errorf("%s.priority: must be 0 or more", at)
		}
		if s.Name == "" {
			s.Name = fmt.Sprintf("source-%d", i+1)
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: %q is used by another source", at, s.Name)
		}
		names[s.Name] = true
	}
	for _, f := range req.Output.Formats {
		if f != "jsonl" {
			return fmt.Errorf("output.formats: %q is not available in this build yet; use jsonl", f)
		}
	}
	if len(req.Output.Formats) == 0 {
		req.Output.Formats = []string{"jsonl"}
	}
	switch req.Output.Compression {
	case "", "none", "gzip", "zstd":
	default:
		return fmt.Errorf("output.compression: must be none, gzip or zstd")
	}
	if d := req.Output.Destination; d != "" {
		if filepath.IsAbs(d) || strings.Contains(filepath.ToSlash(d), "..") {
			return fmt.Errorf("output.destination: must be a relative directory name without '..' (it is placed under the output root)")
		}
	}
	return nil
}
