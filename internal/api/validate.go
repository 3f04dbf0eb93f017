package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dspipe/dspipe/events"
	"github.com/dspipe/dspipe/internal/balance"
	"github.com/dspipe/dspipe/internal/fusion"
	"github.com/dspipe/dspipe/internal/sink"
	"github.com/dspipe/dspipe/internal/source"
	"github.com/dspipe/dspipe/internal/stages"
)

// maxBody bounds a processing request.
const maxBody = 1 << 20

// errTooLarge is a body over its endpoint's limit: 413.
var errTooLarge = errors.New("request body is too large")

// readJSON decodes exactly one JSON object of at most limit bytes into v,
// refusing unknown fields and anything after the object; optional lets
// the body be empty. It returns the status to answer with on error: 413
// for a body over the limit, 400 otherwise.
func readJSON(body io.Reader, limit int64, v any, optional bool) (int, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("cannot read the request body")
	}
	if int64(len(b)) > limit {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("%w: at most %d bytes", errTooLarge, limit)
	}
	if optional && len(bytes.TrimSpace(b)) == 0 {
		return 0, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("not the expected JSON object")
	}
	if !atEOF(dec) {
		return http.StatusBadRequest, fmt.Errorf("data after the JSON object")
	}
	if problem := shapeProblem(b); problem != "" {
		return http.StatusBadRequest, errors.New(problem)
	}
	return 0, nil
}

// atEOF reports whether nothing but white space follows the decoded value.
func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// validID matches execution ids: ds_<unix seconds>_<hex>, or any short
// name of letters, digits, '_', '-' and '.'.
var validIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func validID(id string) bool { return validIDRe.MatchString(id) }

// checkID answers 400 for an execution id that cannot be one.
func checkID(w http.ResponseWriter, id string) bool {
	if validID(id) {
		return true
	}
	writeError(w, http.StatusBadRequest, "not a valid execution id: ids are letters, digits, '_', '-' and '.', such as ds_1767225600_0123456789abcdef")
	return false
}

// decodeRequest parses and validates a processing request, returning a
// message that says what to fix.
func decodeRequest(body io.Reader) (events.Request, error) {
	var req events.Request
	b, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return req, fmt.Errorf("cannot read the request body")
	}
	if len(b) > maxBody {
		return req, fmt.Errorf("%w: a processing request is at most %d bytes", errTooLarge, maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(&req)
	if err == nil {
		if problem := shapeProblem(b); problem != "" {
			return req, errors.New(problem)
		}
	}
	if err != nil {
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
	if !atEOF(dec) {
		return req, fmt.Errorf("request body has data after the JSON object: send exactly one object")
	}
	// NUL characters cannot be stored or used in paths; encoding/json writes
	// them as \u0000, wherever they hide (keys, nested settings).
	if enc, err := json.Marshal(req); err != nil || bytes.Contains(enc, []byte(`\u0000`)) {
		return req, fmt.Errorf("request must not contain NUL characters (\\u0000) in any key or value")
	}
	if err := validateRequest(&req); err != nil {
		return req, err
	}
	return req, nil
}

// nullable are the request fields that may be null (meaning the default).
var nullable = map[string]bool{"output.compression": true, "output.destination": true}

// emptyConsentField matches a source's consent_field, which means nothing
// empty (encoding/json cannot tell it from an absent one).
var emptyConsentField = regexp.MustCompile(`^sources\[[0-9]+\]\.consent_field$`)

// shapeProblem finds, in one walk over a body, what encoding/json would
// silently accept but the specification does not: a JSON null outside the
// nullable fields (read as the zero value), or an empty consent_field. It
// returns the message that says what to fix, or "".
func shapeProblem(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	var walk func(v any, at string) string
	walk = func(v any, at string) string {
		switch x := v.(type) {
		case nil:
			if !nullable[at] {
				return at + " must not be null: leave it out for its default"
			}
		case string:
			if x == "" && emptyConsentField.MatchString(at) {
				return at + ": must not be empty; leave it out when the source records no consent"
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				p := k
				if at != "" {
					p = at + "." + k
				}
				if r := walk(x[k], p); r != "" {
					return r
				}
			}
		case []any:
			for i, e := range x {
				if r := walk(e, fmt.Sprintf("%s[%d]", at, i)); r != "" {
					return r
				}
			}
		}
		return ""
	}
	return walk(v, "")
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

// safeBucket matches an S3 bucket name.
var safeBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

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

// sourceKeys are the config keys each source type reads; "format" is common.
var sourceKeys = map[string][]string{
	"local":        {"path"},
	"s3":           {"bucket", "key", "prefix", "region", "endpoint", "access_key_id", "secret_access_key", "session_token"},
	"google_drive": {"file_id", "folder_id", "service_account_path"},
	"huggingface":  {"dataset", "config", "split", "revision", "path"},
}

// keyMax is the longest value (in characters) of config keys that have a
// tighter limit than 1024.
var keyMax = map[string]int{"bucket": 63, "region": 32, "file_id": 200, "folder_id": 200, "dataset": 200, "config": 100, "split": 100, "revision": 100}

// nonEmpty are config keys that mean nothing empty.
var nonEmpty = map[string]bool{"path": true, "key": true, "bucket": true, "file_id": true, "folder_id": true, "dataset": true, "endpoint": true}

var secretKeys = map[string]bool{"access_key_id": true, "secret_access_key": true, "session_token": true}

func validateSourceConfig(at string, s *events.SourceSpec) error {
	if err := validateConfigValues(at, s); err != nil {
		return err
	}
	if err := validateTypeConfig(at, s.Type, s.Config); err != nil {
		return err
	}
	if f := s.Config["format"]; f != "" && !slices.Contains(source.Formats, f) {
		return fmt.Errorf("%s.config.format: must be one of %s", at, strings.Join(source.Formats, ", "))
	}
	switch s.OnFailure {
	case "", events.OnFailureFail, events.OnFailureFallback:
	default:
		return fmt.Errorf("%s.on_failure: must be fail or fallback", at)
	}
	return validateMappingAndConsent(at, s)
}

// validateConfigValues checks each config key and value on its own: known
// to the source type, bounded, no control characters, credentials only as
// ${ENV} references, no '..' in paths.
func validateConfigValues(at string, s *events.SourceSpec) error {
	allowed := append([]string{"format"}, sourceKeys[s.Type]...)
	for k, v := range s.Config {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%s.config: %q is not a setting of %s sources (use %s)", at, k, s.Type, strings.Join(allowed, ", "))
		}
		limit := 1024
		if n, ok := keyMax[k]; ok {
			limit = n
		}
		if hasControl(v) || utf8.RuneCountInString(v) > limit {
			return fmt.Errorf("%s.config.%s: must not contain control characters and be at most %d characters", at, k, limit)
		}
		if v == "" && nonEmpty[k] && !(s.Type == "huggingface" && k == "path") {
			return fmt.Errorf("%s.config.%s: must not be empty", at, k)
		}
		if _, ok := source.SecretRef(v); secretKeys[k] && !ok {
			return fmt.Errorf("%s.config.%s: must be a ${ENV_VAR} reference resolved on the server, never a literal credential", at, k)
		}
		if strings.Contains(filepath.ToSlash(v), "..") && (k == "path" || k == "key" || k == "prefix" || k == "service_account_path") {
			return fmt.Errorf("%s.config.%s: must not contain '..'", at, k)
		}
	}
	return nil
}

// validateTypeConfig checks what each source type needs of its config as
// a whole.
func validateTypeConfig(at, typ string, c map[string]string) error {
	switch typ {
	case "local":
		if c["path"] == "" {
			return fmt.Errorf("%s.config.path: required for local sources (a file, a directory or a glob under the allowed roots)", at)
		}
	case "s3":
		return validateS3Config(at, c)
	case "google_drive":
		if c["file_id"] != "" && c["folder_id"] != "" {
			return fmt.Errorf("%s.config: give file_id or folder_id, not both", at)
		}
	case "huggingface":
		if c["dataset"] == "" {
			return fmt.Errorf("%s.config.dataset: required for huggingface sources (owner/name)", at)
		}
	}
	return nil
}

func validateS3Config(at string, c map[string]string) error {
	if b, ok := c["bucket"]; ok && !safeBucket.MatchString(b) {
		return fmt.Errorf("%s.config.bucket: an S3 bucket name is 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit", at)
	}
	_, hasKey := c["key"]
	_, hasPrefix := c["prefix"]
	if hasKey && hasPrefix {
		return fmt.Errorf("%s.config: give key or prefix, not both", at)
	}
	if c["key"] == "" && !hasPrefix {
		return fmt.Errorf("%s.config.key: an s3 source needs config.key (one object) or config.prefix (every object under it)", at)
	}
	if ep := c["endpoint"]; ep != "" {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("%s.config.endpoint: must be an http(s) URL without credentials", at)
		}
	}
	return nil
}

// validateMappingAndConsent bounds the field mapping and the consent
// settings.
func validateMappingAndConsent(at string, s *events.SourceSpec) error {
	if len(s.Mapping) > 64 {
		return fmt.Errorf("%s.mapping: at most 64 fields", at)
	}
	if utf8.RuneCountInString(s.ConsentField) > 128 || hasControl(s.ConsentField) {
		return fmt.Errorf("%s.consent_field: a field name of at most 128 characters without control characters", at)
	}
	for name, values := range map[string][]string{"consent_values": s.ConsentValues, "consent_withdrawn_values": s.ConsentWithdrawn} {
		if len(values) > 16 {
			return fmt.Errorf("%s.%s: at most 16 values", at, name)
		}
		for _, v := range values {
			if v == "" || utf8.RuneCountInString(v) > 64 || hasControl(v) {
				return fmt.Errorf("%s.%s: values of 1 to 64 characters without control characters", at, name)
			}
		}
	}
	for from, to := range s.Mapping {
		// Field names are only looked up, never printed: any text but
		// NUL (refused everywhere) will do.
		if utf8.RuneCountInString(from) > 128 || utf8.RuneCountInString(to) > 128 {
			return fmt.Errorf("%s.mapping: field names must be at most 128 characters", at)
		}
	}
	return nil
}

func validateRequest(req *events.Request) error {
	if err := validateSources(req.Sources); err != nil {
		return err
	}
	keys := map[string]bool{}
	for _, s := range stages.Record() {
		if err := s.Validate(*req); err != nil {
			return err
		}
		if k := s.Key(); k != "" {
			keys[k] = true
		}
	}
	if _, err := fusion.ParseRequest(req.Fusion); err != nil {
		return err
	}
	for k, raw := range req.Processing {
		if keys[k] {
			continue // checked by its stage
		}
		if err := validateProcessing(k, raw, req.Sources); err != nil {
			return err
		}
	}
	return validateOutput(&req.Output)
}

// validateSources checks every source and names the unnamed ones.
func validateSources(sources []events.SourceSpec) error {
	if len(sources) == 0 {
		return fmt.Errorf("sources: at least one source is required")
	}
	if len(sources) > 100 {
		return fmt.Errorf("sources: at most 100 sources per request")
	}
	names := map[string]bool{}
	for i := range sources {
		s := &sources[i]
		at := fmt.Sprintf("sources[%d]", i)
		if !sourceTypes[s.Type] {
			return fmt.Errorf("%s.type: must be one of local, s3, google_drive, huggingface", at)
		}
		if err := validateSourceConfig(at, s); err != nil {
			return err
		}
		if hasControl(s.Name) || utf8.RuneCountInString(s.Name) > 128 {
			return fmt.Errorf("%s.name: must not contain control characters and be at most 128 characters", at)
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
	return nil
}

// validateProcessing checks one stage's settings under processing.
func validateProcessing(k string, raw json.RawMessage, sources []events.SourceSpec) error {
	var err error
	switch k {
	case "balancing":
		_, _, err = balance.ParseRequest(raw)
	case "require_consent":
		var required bool
		if json.Unmarshal(raw, &required) != nil {
			return fmt.Errorf("processing.require_consent: must be true or false")
		}
		for i, src := range sources {
			if required && src.ConsentField == "" {
				return fmt.Errorf("processing.require_consent: sources[%d] names no consent_field, so none of its records could show consent", i)
			}
		}
	default:
		err = fmt.Errorf("processing.%s: unknown stage settings; processing takes quality, bias, balancing and require_consent", k)
	}
	return err
}

// validateOutput checks the output settings and fills the default format.
func validateOutput(o *events.OutputSpec) error {
	seenFormat := map[string]bool{}
	for _, f := range o.Formats {
		if !slices.Contains(sink.Formats, f) {
			return fmt.Errorf("output.formats: %q is not a format; use jsonl, csv or parquet", f)
		}
		if seenFormat[f] {
			return fmt.Errorf("output.formats: %q is listed twice", f)
		}
		seenFormat[f] = true
	}
	if b := o.ShardBytes; b != 0 && (b < 1024 || b > 1<<40) {
		return fmt.Errorf("output.shard_bytes: must be 0 (one file per format) or between 1024 and 1099511627776")
	}
	if err := sink.CheckSplits(o.Splits); err != nil {
		return err
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{"jsonl"}
	}
	switch o.Compression {
	case "", "none", "gzip", "zstd":
	default:
		return fmt.Errorf("output.compression: must be none, gzip or zstd")
	}
	switch o.Overwrite {
	case "", events.OverwriteNewVersion:
	default:
		return fmt.Errorf("output.overwrite: must be new_version or absent; an existing output is never replaced")
	}
	return validateDestination(o.Destination)
}

func validateDestination(d string) error {
	if strings.HasPrefix(d, "s3://") {
		s3d, _, err := sink.ParseS3(d)
		if err != nil {
			return err
		}
		if !safeBucket.MatchString(s3d.Bucket) || (s3d.Prefix != "" && !safeName.MatchString(s3d.Prefix)) || len(d) > 250 {
			return fmt.Errorf("output.destination: s3://bucket/prefix with a bucket name of 3 to 63 lower-case letters, digits, '.' and '-', and a prefix of letters, digits, '.', '_', '-' and '/'")
		}
		return nil
	}
	if d != "" && (!safeName.MatchString(d) || strings.Contains(d, "..") || len(d) > 250) {
		return fmt.Errorf("output.destination: must be a relative directory made of letters, digits, '.', '_', '-' and '/', without '..' (it is placed under the output root)")
	}
	return nil
}
