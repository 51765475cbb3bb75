package auditlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Strict JSON: the I-JSON profile (RFC 7493) that RFC 8785 hashing presumes.
//
// encoding/json keeps the last of two members with the same name (matching struct fields
// case-insensitively) and rounds numbers to float64, so a verifier using it alone could hash one
// event and show another. [CheckStrictJSON] refuses such text instead (docs/FORMATS.md "Strict
// JSON"), and every verifier of this package runs it before decoding. The rule, the same in
// every implementation of the log and pinned by test-vectors/v1/strict-json.json:
//
//   - the text is JSON (RFC 8259) in UTF-8 (invalid_json, no path);
//   - no object has two members with the same name, compared after unescaping
//     (duplicate_member, at the second one);
//   - an integer literal lies within ±(2^53-1) (unsafe_integer); any other number is exactly
//     the value of its nearest float64, whose shortest form is what JCS writes
//     (inexact_number); and a float64 that is an integer from 2^53 up to (not including) 10^21
//     is unsafe_integer;
//   - strings and names hold no surrogate code point and no Unicode noncharacter
//     (invalid_string);
//   - arrays and objects nest at most [MaxStrictDepth] deep, as deep as serde_json reads
//     (invalid_json).
//
// The checker is a small recursive-descent scanner rather than json.Decoder.Token: the decoder
// turns invalid UTF-8 and lone surrogate escapes into U+FFFD, so they could not be told from a
// real U+FFFD.

// The kinds of [StrictJSONError], as test-vectors/v1/strict-json.json names them.
const (
	StrictInvalidJSON     = "invalid_json"
	StrictDuplicateMember = "duplicate_member"
	StrictUnsafeInteger   = "unsafe_integer"
	StrictInexactNumber   = "inexact_number"
	StrictInvalidString   = "invalid_string"
)

// StrictJSONError is JSON text outside the rule of [CheckStrictJSON]. Path is where the fault
// is: member names joined by ".", array indices as "[i]" (`events[3].metadata.list[2]`), empty
// for the root; invalid_json has no path.
type StrictJSONError struct {
	Kind   string
	Path   string
	Detail string
}

func (e *StrictJSONError) Error() string {
	switch {
	case e.Kind == StrictInvalidJSON:
		return e.Kind + ": " + e.Detail
	case e.Path == "":
		return e.Kind + " at the root: " + e.Detail
	default:
		return e.Kind + " at " + e.Path + ": " + e.Detail
	}
}

// MaxStrictDepth is the deepest nesting of arrays and objects accepted (serde_json refuses a
// 128th level).
const MaxStrictDepth = 127

// CheckStrictJSON returns a *[StrictJSONError] for JSON text that is not valid JSON or breaks
// the strict rule (see the package's strict JSON notes above), and nil otherwise. Text that
// passes decodes with encoding/json to exactly the values that were hashed.
func CheckStrictJSON(data []byte) error {
	if !utf8.Valid(data) {
		return &StrictJSONError{Kind: StrictInvalidJSON, Detail: "the text is not UTF-8"}
	}
	s := &strictScanner{data: data}
	s.whitespace()
	if err := s.value(0); err != nil {
		return err
	}
	s.whitespace()
	if s.pos != len(data) {
		return s.syntax("text after the value")
	}
	return nil
}

// readsLeniently reports whether serde_json would read data as a Value: the last of duplicate
// members wins, numbers are rounded and noncharacters pass, but syntax errors, lone surrogate
// escapes, numbers beyond the float64 range and nesting deeper than [MaxStrictDepth] fail. Only
// for naming the seq of an export row that is not strict JSON, as the Rust verifier does.
func readsLeniently(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := &strictScanner{data: data, lenient: true}
	s.whitespace()
	if s.value(0) != nil {
		return false
	}
	s.whitespace()
	return s.pos == len(data)
}

// UnmarshalStrict is [CheckStrictJSON] followed by json.Unmarshal.
func UnmarshalStrict(data []byte, v any) error {
	if err := CheckStrictJSON(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// strictNumberFault is the fault of a JSON number literal under the rule, or "".
func strictNumberFault(literal string) string {
	if !strings.ContainsAny(literal, ".eE") {
		n, err := strconv.ParseInt(literal, 10, 64)
		if err != nil || n > 1<<53-1 || n < -(1<<53-1) {
			return StrictUnsafeInteger
		}
		return ""
	}
	f, err := strconv.ParseFloat(literal, 64)
	if err != nil || math.IsInf(f, 0) || !sameDecimal(literal, strconv.FormatFloat(f, 'g', -1, 64)) {
		return StrictInexactNumber
	}
	if a := math.Abs(f); a == math.Trunc(a) && a >= 1<<53 && a < 1e21 {
		return StrictUnsafeInteger
	}
	return ""
}

// sameDecimal reports whether two decimal literals have the same value.
func sameDecimal(a, b string) bool {
	da, okA := decimalValue(a)
	db, okB := decimalValue(b)
	return okA && okB && da == db
}

// decimalValue writes a decimal literal's value as "[-]digits e exponent" without leading or
// trailing zeros ("0" for zero). It fails only for an exponent beyond int64 with a non-zero
// mantissa, a value no float64 holds.
func decimalValue(literal string) (string, bool) {
	s := literal
	negative := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mantissa, exponentText, hasExponent := strings.Cut(strings.ToLower(s), "e")
	exponent := int64(0)
	intPart, fraction, _ := strings.Cut(mantissa, ".")
	digits := strings.TrimLeft(intPart+fraction, "0")
	if digits == "" {
		return "0", true
	}
	if hasExponent {
		var err error
		if exponent, err = strconv.ParseInt(exponentText, 10, 64); err != nil {
			return "", false
		}
	}
	significant := strings.TrimRight(digits, "0")
	exponent += int64(len(digits)-len(significant)) - int64(len(fraction))
	sign := ""
	if negative {
		sign = "-"
	}
	return sign + significant + "e" + strconv.FormatInt(exponent, 10), true
}

func isNoncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}

// strictScanner walks the text once; the first fault found, in document order, is returned.
// A lenient scanner reads as serde_json does (see readsLeniently).
type strictScanner struct {
	data    []byte
	pos     int
	path    []any // string member names and int array indices
	lenient bool
}

func (s *strictScanner) syntax(message string) error {
	return &StrictJSONError{Kind: StrictInvalidJSON, Detail: fmt.Sprintf("%s at offset %d", message, s.pos)}
}

func (s *strictScanner) fault(kind, detail string, path []any) error {
	var b strings.Builder
	for _, seg := range path {
		switch v := seg.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return &StrictJSONError{Kind: kind, Path: b.String(), Detail: detail}
}

func (s *strictScanner) whitespace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *strictScanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *strictScanner) value(depth int) error {
	switch c := s.peek(); {
	case (c == '{' || c == '[') && depth >= MaxStrictDepth:
		return s.syntax(fmt.Sprintf("arrays and objects nest deeper than %d levels", MaxStrictDepth))
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.string(false)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	for _, word := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
			s.pos += len(word)
			return nil
		}
	}
	return s.syntax("a value was expected")
}

func (s *strictScanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

func (s *strictScanner) number() error {
	start := s.pos
	if s.peek() == '-' {
		s.pos++
	}
	switch {
	case s.peek() == '0':
		s.pos++
	case s.digits() == 0:
		return s.syntax("a digit was expected")
	}
	if s.peek() == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.syntax("a digit was expected after the decimal point")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if s.digits() == 0 {
			return s.syntax("a digit was expected in the exponent")
		}
	}
	literal := string(s.data[start:s.pos])
	if s.lenient {
		if f, err := strconv.ParseFloat(literal, 64); err != nil || math.IsInf(f, 0) {
			return s.fault(StrictInexactNumber, fmt.Sprintf("the number %s is beyond the range of a float64", truncate(literal)), s.path)
		}
		return nil
	}
	switch fault := strictNumberFault(literal); fault {
	case StrictUnsafeInteger:
		return s.fault(fault, fmt.Sprintf("the number %s is an integer beyond ±(2^53-1)", truncate(literal)), s.path)
	case StrictInexactNumber:
		return s.fault(fault, fmt.Sprintf("the number %s is not exactly the value of a float64", truncate(literal)), s.path)
	}
	return nil
}

func (s *strictScanner) object(depth int) error {
	s.pos++
	names := map[string]struct{}{}
	s.whitespace()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntax("a member name was expected")
		}
		name, err := s.string(true)
		if err != nil {
			return err
		}
		if _, seen := names[name]; seen && !s.lenient {
			return s.fault(StrictDuplicateMember, fmt.Sprintf("the member name %q occurs twice", truncate(name)), append(s.path, name))
		}
		names[name] = struct{}{}
		s.whitespace()
		if s.peek() != ':' {
			return s.syntax("':' was expected")
		}
		s.pos++
		s.whitespace()
		s.path = append(s.path, name)
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.whitespace()
		switch s.peek() {
		case '}':
			s.pos++
			return nil
		case ',':
			s.pos++
			s.whitespace()
		default:
			return s.syntax("',' or '}' was expected")
		}
	}
}

func (s *strictScanner) array(depth int) error {
	s.pos++
	s.whitespace()
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		s.path = append(s.path, i)
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.whitespace()
		switch s.peek() {
		case ']':
			s.pos++
			return nil
		case ',':
			s.pos++
			s.whitespace()
		default:
			return s.syntax("',' or ']' was expected")
		}
	}
}

// string reads a string or member name (unescaped when keep is set, for names). A forbidden
// character is reported at the current path (for a name: the path of its object): an escaped
// lone surrogate where it stands, as serde_json and jiter do, any other once the whole string
// has been read. The text is known to be UTF-8.
func (s *strictScanner) string(keep bool) (string, error) {
	s.pos++
	var out strings.Builder
	bad := rune(-1)
	check := func(r rune) {
		if bad < 0 && ((r >= 0xD800 && r <= 0xDFFF) || isNoncharacter(r)) {
			bad = r
		}
	}
	for {
		if s.pos >= len(s.data) {
			return "", s.syntax("an unterminated string")
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			if bad >= 0 && !s.lenient {
				return "", s.fault(StrictInvalidString, fmt.Sprintf("the string holds U+%04X, a surrogate or noncharacter", bad), s.path)
			}
			return out.String(), nil
		case c < 0x20:
			return "", s.syntax("a control character in a string")
		case c == '\\':
			if err := s.escape(&out, keep, check); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			if keep {
				out.WriteByte(c)
			}
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			check(r)
			if keep {
				out.WriteRune(r)
			}
			s.pos += size
		}
	}
}

var simpleEscapes = map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func (s *strictScanner) escape(out *strings.Builder, keep bool, check func(rune)) error {
	if s.pos+1 < len(s.data) {
		if b, ok := simpleEscapes[s.data[s.pos+1]]; ok {
			if keep {
				out.WriteByte(b)
			}
			s.pos += 2
			return nil
		}
	}
	unit, err := s.hex4(s.pos + 1)
	if err != nil {
		return err
	}
	s.pos += 6
	lone := s.fault(StrictInvalidString, fmt.Sprintf(`the string holds the lone surrogate escape \u%04x`, unit), s.path)
	r := rune(unit)
	switch {
	case unit >= 0xD800 && unit <= 0xDBFF:
		after := s.data[s.pos:min(len(s.data), s.pos+2)]
		if len(after) == 0 || string(after) == `\` {
			return s.syntax("an unterminated string")
		}
		if string(after) != `\u` {
			return lone
		}
		low, err := s.hex4(s.pos + 1)
		if err != nil {
			return err
		}
		if low < 0xDC00 || low > 0xDFFF {
			return lone
		}
		r = 0x10000 + (rune(unit)-0xD800)<<10 + (rune(low) - 0xDC00)
		s.pos += 6
	case unit >= 0xDC00 && unit <= 0xDFFF:
		return lone
	}
	check(r)
	if keep {
		out.WriteRune(r)
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape whose "u" is at at.
func (s *strictScanner) hex4(at int) (uint16, error) {
	if at+5 > len(s.data) || s.data[at] != 'u' {
		return 0, s.syntax("an invalid escape in a string")
	}
	n, err := strconv.ParseUint(string(s.data[at+1:at+5]), 16, 16)
	if err != nil {
		return 0, s.syntax("an invalid escape in a string")
	}
	return uint16(n), nil
}
