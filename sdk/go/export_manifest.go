package auditlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// ExportFormat is the manifest `format` of export bundles.
const ExportFormat = "audit-log-export/v1"

// ExportManifest is the manifest.json of an export bundle (docs/FORMATS.md "Manifest").
type ExportManifest struct {
	Format      string
	ExportID    string
	TenantID    string
	CreatedAt   string
	CompletedAt string
	// Filter holds the query parameters the export was asked for, as given.
	Filter     json.RawMessage
	DataFormat string // "jsonl" or "csv"
	Gzip       bool
	Rows       uint64
	// FirstSeq and LastSeq are nil for an export of no rows.
	FirstSeq   *uint64
	LastSeq    *uint64
	Data       ExportObject
	Proof      ExportObject
	Checkpoint ExportCheckpoint
}

// ExportObject describes one stored file of the bundle. Nodes is set for the proof only.
type ExportObject struct {
	Key    string
	SHA256 Hash
	Bytes  uint64
	Nodes  uint64
}

// ExportCheckpoint is the signed checkpoint every row of the export is covered by.
type ExportCheckpoint struct {
	TreeSize uint64
	Root     Hash
	Note     string
}

// ParseExportManifest parses and type-checks a manifest. Its error is an *[ExportFault] with
// code manifest_invalid.
func ParseExportManifest(manifest []byte) (*ExportManifest, error) {
	bad := func(format string, args ...any) error {
		return &ExportFault{Code: FaultManifestInvalid, Detail: fmt.Sprintf(format, args...)}
	}
	if err := CheckStrictJSON(manifest); err != nil {
		return nil, bad("the manifest does not parse: %v", err)
	}
	top, err := jsonObject(manifest)
	if err != nil {
		return nil, bad("the manifest is not a JSON object: %v", err)
	}
	m := &ExportManifest{}
	var errs []error
	str := func(obj map[string]json.RawMessage, path, name string) string {
		s, ok := rawString(obj[name])
		if !ok {
			errs = append(errs, fmt.Errorf("%s%s is missing or not a string", path, name))
		}
		return s
	}
	uint := func(obj map[string]json.RawMessage, path, name string) uint64 {
		n, ok := rawUint(obj[name])
		if !ok {
			errs = append(errs, fmt.Errorf("%s%s is missing or not a non-negative integer", path, name))
		}
		return n
	}
	optUint := func(name string) *uint64 {
		raw, present := top[name]
		if present && string(bytes.TrimSpace(raw)) == "null" {
			return nil
		}
		n, ok := rawUint(raw)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is missing or not a non-negative integer or null", name))
			return nil
		}
		return &n
	}
	hash := func(obj map[string]json.RawMessage, path, name string) Hash {
		s, ok := rawString(obj[name])
		h, err := ParseHash(s)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("%s%s is missing or not 64 hex digits", path, name))
		}
		return h
	}
	object := func(name string) map[string]json.RawMessage {
		obj, err := jsonObject(top[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is missing or not an object", name))
			return map[string]json.RawMessage{}
		}
		return obj
	}

	m.Format = str(top, "", "format")
	m.ExportID = str(top, "", "export_id")
	m.TenantID = str(top, "", "tenant_id")
	m.CreatedAt = str(top, "", "created_at")
	m.CompletedAt = str(top, "", "completed_at")
	if _, err := jsonObject(top["filter"]); err != nil {
		errs = append(errs, fmt.Errorf("filter is missing or not an object"))
	}
	m.Filter = top["filter"]
	m.DataFormat = str(top, "", "data_format")
	if g, ok := rawBool(top["gzip"]); ok {
		m.Gzip = g
	} else {
		errs = append(errs, fmt.Errorf("gzip is missing or not a boolean"))
	}
	m.Rows = uint(top, "", "rows")
	m.FirstSeq = optUint("first_seq")
	m.LastSeq = optUint("last_seq")
	data := object("data")
	m.Data = ExportObject{Key: str(data, "data.", "key"), SHA256: hash(data, "data.", "sha256"), Bytes: uint(data, "data.", "bytes")}
	proof := object("proof")
	m.Proof = ExportObject{Key: str(proof, "proof.", "key"), SHA256: hash(proof, "proof.", "sha256"),
		Bytes: uint(proof, "proof.", "bytes"), Nodes: uint(proof, "proof.", "nodes")}
	cp := object("checkpoint")
	m.Checkpoint = ExportCheckpoint{TreeSize: uint(cp, "checkpoint.", "tree_size"), Root: hash(cp, "checkpoint.", "root"),
		Note: str(cp, "checkpoint.", "note")}

	if len(errs) > 0 {
		return nil, bad("%v", errs[0])
	}
	if m.Format != ExportFormat {
		return nil, bad("format %q is not %q", truncate(m.Format), ExportFormat)
	}
	if m.DataFormat != "jsonl" && m.DataFormat != "csv" {
		return nil, bad("data_format %q is neither jsonl nor csv", truncate(m.DataFormat))
	}
	if _, err := canonicalUUID(m.TenantID); err != nil {
		return nil, bad("tenant_id: %v", err)
	}
	return m, nil
}

// jsonObject decodes a JSON object into its members (null members kept).
func jsonObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// rawUint decodes a JSON integer >= 0 written without fraction or exponent.
func rawUint(raw json.RawMessage) (uint64, bool) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func rawBool(raw json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
