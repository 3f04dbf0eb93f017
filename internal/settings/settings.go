// Package settings decodes the per-stage settings objects of a processing
// request the same way everywhere: strictly, so a misspelt key is an error
// the user sees rather than a setting silently ignored.
package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// Fraction checks an optional share: nil, or between 0 and 1. The error
// names the field.
// Object decodes a stage's settings object into a T. absent is true when
// the request gives none; a malformed object is an error that names the
// object (path, such as processing.quality) and what it may hold.
func Object[T any](raw []byte, path, holds string) (v T, absent bool, err error) {
	absent, err = Decode(raw, &v)
	if err != nil {
		err = fmt.Errorf("%s: expected an object with %s", path, holds)
	}
	return v, absent, err
}

func Fraction(field string, v *float64) error {
	if v != nil && (*v < 0 || *v > 1 || *v != *v) {
		return fmt.Errorf("%s: must be between 0 and 1", field)
	}
	return nil
}
