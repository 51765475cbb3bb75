package auditlog

import (
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
)

// Canonicalize returns the RFC 8785 (JCS) form of JSON text: members sorted by UTF-16 code
// units, no whitespace, numbers in ECMAScript form, minimal string escapes. Duplicate member
// names and invalid UTF-8 are errors.
func Canonicalize(jsonText []byte) ([]byte, error) {
	out, err := jcs.Transform(jsonText)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return out, nil
}

// CanonicalizeValue marshals v with encoding/json and returns the RFC 8785 form of the result.
func CanonicalizeValue(v any) ([]byte, error) {
	text, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return Canonicalize(text)
}
