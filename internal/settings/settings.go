// Package settings decodes the per-stage settings objects of a processing
// request the same way everywhere: strictly, so a misspelt key is an error
// the user sees rather than a setting silently ignored.
package settings

import (
	"bytes"
	"encoding/json"
)

// Decode reads a settings object into v, refusing unknown fields. absent
// is true when there is no object (missing or null); v is then untouched.
func Decode(raw []byte, v any) (absent bool, err error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return true, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return false, dec.Decode(v)
}
