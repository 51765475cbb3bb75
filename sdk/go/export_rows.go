package auditlog

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

func isFlateError(err error) bool {
	var corrupt flate.CorruptInputError
	var internal flate.InternalError
	return errors.As(err, &corrupt) || errors.As(err, &internal)
}

// malformedRow builds the fault of a row that does not parse; seq is nil when unknown.
func malformedRow(seq *uint64, format string, args ...any) *ExportFault {
	return &ExportFault{Code: FaultRowMalformed, Seq: seq, Detail: fmt.Sprintf(format, args...)}
}

// jsonlRows reads data rows from JSON Lines.
type jsonlRows struct{ r *bufio.Reader }

var jsonlMembers = []string{"seq", "id", "received_at", "erased", "event", "salt", "content_digest", "leaf_hash", "chain_hash"}

func (j *jsonlRows) next() (*exportRow, *ExportFault, error) {
	line, err := readLine(j.r)
	if err == io.EOF {
		return nil, nil, nil
	}
	if err != nil {
		return nil, malformedRow(nil, "%v", err), nil
	}
	if len(line) == 0 {
		return nil, malformedRow(nil, "an empty line where a row should be"), nil
	}
	if err := CheckStrictJSON(line); err != nil {
		return nil, malformedRow(readableSeq(line), "the line does not parse: %v", err), nil
	}
	obj, err := jsonObject(line)
	if err != nil {
		return nil, malformedRow(nil, "the line is not a JSON object"), nil
	}
	seqValue, ok := rawUint(obj["seq"])
	if !ok {
		return nil, malformedRow(nil, "seq is missing or not a non-negative integer"), nil
	}
	seq := &seqValue
	for _, name := range jsonlMembers {
		if _, present := obj[name]; !present {
			return nil, malformedRow(seq, "member %s is missing", name), nil
		}
	}
	r := &exportRow{seq: seqValue}
	var fault *ExportFault
	var okID, okTime bool
	r.id, okID = rawString(obj["id"])
	r.receivedAt, okTime = rawString(obj["received_at"])
	if !okID || !okTime {
		return nil, malformedRow(seq, "id or received_at is not a string"), nil
	}
	erased, ok := rawBool(obj["erased"])
	if !ok {
		return nil, malformedRow(seq, "erased is not a boolean"), nil
	}
	r.erased = erased
	eventNull, saltNull := isNullJSON(obj["event"]), isNullJSON(obj["salt"])
	if erased != eventNull || erased != saltNull {
		return nil, malformedRow(seq, "erased is %t but event or salt say otherwise", erased), nil
	}
	if !erased {
		if _, err := jsonObject(obj["event"]); err != nil {
			return nil, malformedRow(seq, "event is not a JSON object"), nil
		}
		content, err := Canonicalize(obj["event"])
		if err != nil {
			return nil, malformedRow(seq, "event: %v", err), nil
		}
		r.content = content
		if r.salt, fault = saltMember(obj["salt"], seq); fault != nil {
			return nil, fault, nil
		}
	}
	if fault = hashMembers(r, obj["content_digest"], obj["leaf_hash"], obj["chain_hash"], seq, jsonString); fault != nil {
		return nil, fault, nil
	}
	return r, nil, nil
}

func jsonString(raw json.RawMessage) (string, bool) { return rawString(raw) }

// readableSeq is the seq of a row that is JSON but not strict JSON, read the lenient way (the
// last of duplicate members), so that the fault names the entry; nil when even that fails.
func readableSeq(line []byte) *uint64 {
	if !readsLeniently(line) {
		return nil
	}
	obj, err := jsonObject(line)
	if err != nil {
		return nil
	}
	seq, ok := rawUint(obj["seq"])
	if !ok {
		return nil
	}
	return &seq
}

// id and received_at are only type-checked here: a value in another spelling than the
// canonical one is a leaf_hash fault, found later in the verification order.
func isCanonicalID(s string) bool {
	c, err := canonicalUUID(s)
	return err == nil && c == s
}

func isCanonicalTime(s string) bool {
	c, err := NormalizeTime(s)
	return err == nil && c == s
}

func saltMember(raw json.RawMessage, seq *uint64) ([]byte, *ExportFault) {
	s, ok := rawString(raw)
	if !ok {
		return nil, malformedRow(seq, "salt is not a string")
	}
	salt, err := decodeSalt(s)
	if err != nil {
		return nil, malformedRow(seq, "%v", err)
	}
	return salt, nil
}

func hashMembers[T any](r *exportRow, digest, leaf, chain T, seq *uint64, text func(T) (string, bool)) *ExportFault {
	targets := []struct {
		name string
		raw  T
		dst  *Hash
	}{{"content_digest", digest, &r.contentDigest}, {"leaf_hash", leaf, &r.leafHash}, {"chain_hash", chain, &r.chainHash}}
	for _, t := range targets {
		s, ok := text(t.raw)
		h, err := ParseHash(s)
		if !ok || err != nil {
			return malformedRow(seq, "%s is not 64 hex digits", t.name)
		}
		*t.dst = h
	}
	return nil
}

// CSVColumns are the columns of a CSV export, in order.
var CSVColumns = []string{"seq", "id", "received_at", "erased", "occurred_at", "action", "actor_id", "actor_type",
	"actor_name", "resource_type", "resource_id", "resource_name", "outcome", "severity", "source", "request_id",
	"session_id", "metadata", "event", "salt", "content_digest", "leaf_hash", "chain_hash"}

const (
	csvSeq = iota
	csvID
	csvReceivedAt
	csvErased
	csvFirstCopy // occurred_at .. metadata are copies of event members
	csvEvent     = 18
	csvSalt      = 19
	csvDigest    = 20
	csvLeaf      = 21
	csvChain     = 22
)

// csvCopyPaths names, for each copy column, the event member it copies.
var csvCopyPaths = [][]string{
	{"occurred_at"}, {"action"}, {"actor", "id"}, {"actor", "type"}, {"actor", "name"}, {"resource", "type"},
	{"resource", "id"}, {"resource", "name"}, {"outcome"}, {"severity"}, {"source"}, {"request_id"},
	{"session_id"}, {"metadata"},
}

// csvRows reads data rows from RFC 4180 CSV with a header line.
type csvRows struct {
	r      *bufio.Reader
	header bool
}

func (c *csvRows) next() (*exportRow, *ExportFault, error) {
	if !c.header {
		fields, err := readCSVRecord(c.r)
		if err == io.EOF {
			return nil, malformedRow(nil, "the CSV has no header line"), nil
		}
		if err != nil {
			r, fault, err := csvError(err, nil)
			if fault != nil {
				fault.notRow = true
			}
			return r, fault, err
		}
		if strings.Join(fields, ",") != strings.Join(CSVColumns, ",") {
			fault := malformedRow(nil, "the CSV header is not %s", strings.Join(CSVColumns, ","))
			fault.notRow = true
			return nil, fault, nil
		}
		c.header = true
	}
	fields, err := readCSVRecord(c.r)
	if err == io.EOF {
		return nil, nil, nil
	}
	if err != nil {
		return csvError(err, nil)
	}
	if len(fields) != len(CSVColumns) {
		return nil, malformedRow(nil, "the line has %d fields, not %d", len(fields), len(CSVColumns)), nil
	}
	for i, f := range fields {
		if !utf8.ValidString(f) {
			return nil, malformedRow(nil, "column %s is not UTF-8", CSVColumns[i]), nil
		}
	}
	n, ok := parseDecimal(fields[csvSeq])
	if !ok {
		return nil, malformedRow(nil, "seq %q is not a non-negative integer", truncate(fields[csvSeq])), nil
	}
	seq := &n
	r := &exportRow{seq: n, id: fields[csvID], receivedAt: fields[csvReceivedAt]}
	var fault *ExportFault
	if r.id == "" || r.receivedAt == "" {
		return nil, malformedRow(seq, "id or received_at is empty"), nil
	}
	switch fields[csvErased] {
	case "true":
		r.erased = true
	case "false":
	default:
		return nil, malformedRow(seq, "erased %q is neither true nor false", truncate(fields[csvErased])), nil
	}
	eventEmpty, saltEmpty := fields[csvEvent] == "", fields[csvSalt] == ""
	if r.erased != eventEmpty || r.erased != saltEmpty {
		return nil, malformedRow(seq, "erased is %t but event or salt say otherwise", r.erased), nil
	}
	var event map[string]json.RawMessage
	if !r.erased {
		if err := CheckStrictJSON([]byte(fields[csvEvent])); err != nil {
			return nil, malformedRow(seq, "event does not parse: %v", err), nil
		}
		event, err = jsonObject(json.RawMessage(fields[csvEvent]))
		if err != nil {
			return nil, malformedRow(seq, "event is not a JSON object"), nil
		}
		// The event column is the content exactly as digested.
		r.content = []byte(fields[csvEvent])
		if r.salt, fault = saltMember(mustJSON(fields[csvSalt]), seq); fault != nil {
			return nil, fault, nil
		}
	}
	for i, path := range csvCopyPaths {
		column := csvFirstCopy + i
		want, err := copiedValue(event, path)
		if err != nil {
			return nil, malformedRow(seq, "column %s: %v", CSVColumns[column], err), nil
		}
		if fields[column] != want {
			return nil, malformedRow(seq, "column %s differs from the event's %s", CSVColumns[column], strings.Join(path, ".")), nil
		}
	}
	plain := func(s string) (string, bool) { return s, true }
	if fault = hashMembers(r, fields[csvDigest], fields[csvLeaf], fields[csvChain], seq, plain); fault != nil {
		return nil, fault, nil
	}
	return r, nil, nil
}

func csvError(err error, seq *uint64) (*exportRow, *ExportFault, error) {
	var syntax csvSyntaxError
	if errors.As(err, &syntax) {
		return nil, malformedRow(seq, "%v", syntax), nil
	}
	return nil, nil, err
}

// mustJSON quotes a CSV field as a JSON string, to share the JSONL member checks.
func mustJSON(s string) json.RawMessage {
	out, _ := json.Marshal(s)
	return out
}

// copiedValue is what a copy column must hold: the event member's string, the JCS of the
// metadata object, or empty when the member is absent (or the row erased).
func copiedValue(event map[string]json.RawMessage, path []string) (string, error) {
	if event == nil {
		return "", nil
	}
	raw, ok := event[path[0]]
	if len(path) == 2 && ok && !isNullJSON(raw) {
		inner, err := jsonObject(raw)
		if err != nil {
			return "", nil // no such member
		}
		raw, ok = inner[path[1]]
	}
	if !ok || isNullJSON(raw) {
		return "", nil
	}
	if path[0] == "metadata" {
		out, err := Canonicalize(raw)
		if err != nil {
			return "", err
		}
		return string(out), nil
	}
	if s, isString := rawString(raw); isString {
		return s, nil
	}
	out, err := Canonicalize(raw) // a copy of a non-string value is its JCS text
	if err != nil {
		return "", err
	}
	return string(out), nil
}

type csvSyntaxError struct{ msg string }

func (e csvSyntaxError) Error() string { return e.msg }

// readCSVRecord reads one RFC 4180 record terminated by \n (or the end of input). Quoted fields
// may hold commas, quotes (doubled) and line breaks, kept byte for byte. io.EOF means no record.
func readCSVRecord(r *bufio.Reader) ([]string, error) {
	var fields []string
	var field bytes.Buffer
	started := false
	for size := 0; ; size++ {
		if size > MaxLineBytes {
			return nil, csvSyntaxError{errLineTooLong.Error()}
		}
		b, err := r.ReadByte()
		if err == io.EOF {
			if !started {
				return nil, io.EOF
			}
			return nil, csvSyntaxError{errNoNewline.Error()}
		}
		if err != nil {
			return nil, err
		}
		started = true
		switch b {
		case ',':
			fields = append(fields, field.String())
			field.Reset()
			continue
		case '\n':
			return append(fields, field.String()), nil
		case '"':
			if field.Len() > 0 {
				return nil, csvSyntaxError{"a quote inside an unquoted field"}
			}
			if err := readQuoted(r, &field); err != nil {
				return nil, err
			}
			// After the closing quote: a separator, the line end or the input end.
			next, err := r.ReadByte()
			if err == io.EOF {
				return nil, csvSyntaxError{errNoNewline.Error()}
			}
			if err != nil {
				return nil, err
			}
			switch next {
			case ',':
				fields = append(fields, field.String())
				field.Reset()
			case '\n':
				return append(fields, field.String()), nil
			default:
				return nil, csvSyntaxError{"text after a closing quote"}
			}
			continue
		}
		field.WriteByte(b)
	}
}

func readQuoted(r *bufio.Reader, field *bytes.Buffer) error {
	for {
		if field.Len() > MaxLineBytes {
			return csvSyntaxError{errLineTooLong.Error()}
		}
		b, err := r.ReadByte()
		if err == io.EOF {
			return csvSyntaxError{"an unterminated quoted field"}
		}
		if err != nil {
			return err
		}
		if b != '"' {
			field.WriteByte(b)
			continue
		}
		peek, err := r.Peek(1)
		if err == nil && peek[0] == '"' {
			_, _ = r.ReadByte()
			field.WriteByte('"')
			continue
		}
		return nil
	}
}
