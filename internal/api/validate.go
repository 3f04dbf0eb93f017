package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"unicode"

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
			return req, fmt.Errorf("field %q must be %s", typ.Field, kindName(typ.Type.Kind()))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return req, fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return req, fmt.Errorf("request body is not valid JSON (it ends too early)")
		case errors.Is(err, io.EOF):
			return req, fmt.Errorf("request body is empty: send a JSON object with sources and output")
		}
		return req, fmt.Errorf("request body is not a valid processing request")
	}
	if err := validateRequest(&req); err != nil {
		return req, err
	}
	// NUL characters cannot be stored or used in paths; encoding/json writes
	// them as \u0000, wherever they hide (keys, nested settings).
	if enc, err := json.Marshal(req); err != nil || bytes.Contains(enc, []byte(`\u0000`)) {
		return req, fmt.Errorf("request must not contain NUL characters (\\u0000) in any key or value")
	}
	return req, nil
}

// kindName says in words what JSON value a Go kind takes.
func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

// safeName matches an output destination: relative path segments of
// letters, digits, dot, underscore and hyphen.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// hasControl reports control characters, which have no place in names,
// paths or destinations.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// MaxPriority bounds a source's priority.
const MaxPriority = 1_000_000

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
		if hasControl(s.Config["path"]) || hasControl(s.Name) || len(s.Name) > 128 {
			return fmt.Errorf("%s: name and config.path must not contain control characters (name at most 128 bytes)", at)
		}
		if f := s.Config["format"]; f != "" && f != "jsonl" && f != "json" && f != "csv" {
			return fmt.Errorf("%s.config.format: must be jsonl, json or csv", at)
		}
		if s.Priority < 0 || s.Priority > MaxPriority {
			return fmt.Errorf("%s.priority: must be between 0 and %d", at, MaxPriority)
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
		if !safeName.MatchString(d) || strings.Contains(d, "..") || len(d) > 200 {
			return fmt.Errorf("output.destination: must be a relative directory made of letters, digits, '.', '_', '-' and '/', without '..' (it is placed under the output root)")
		}
	}
	return nil
}
