package auditlog

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// EntryVersion is the version of the canonical entry layout; it is part of the hashed bytes.
const EntryVersion = 1

// SaltSize is the length of an entry's content salt.
const SaltSize = 32

// EntryFields is what a leaf hash covers: the server-assigned fields and the content digest.
type EntryFields struct {
	TenantID      string
	Seq           uint64
	ID            string
	ReceivedAt    string
	ContentDigest Hash
}

// CanonicalBytes returns the canonical entry, the JCS of
// {"content_digest","id","received_at","seq","tenant_id","v"}. The ids are written as lowercase
// UUIDs and received_at in the form of [FormatTime].
func (f EntryFields) CanonicalBytes() ([]byte, error) {
	tenant, err := canonicalUUID(f.TenantID)
	if err != nil {
		return nil, fmt.Errorf("entry tenant_id: %w", err)
	}
	id, err := canonicalUUID(f.ID)
	if err != nil {
		return nil, fmt.Errorf("entry id: %w", err)
	}
	receivedAt, err := NormalizeTime(f.ReceivedAt)
	if err != nil {
		return nil, fmt.Errorf("entry received_at: %w", err)
	}
	return CanonicalizeValue(map[string]any{
		"content_digest": f.ContentDigest.String(),
		"id":             id,
		"received_at":    receivedAt,
		"seq":            f.Seq,
		"tenant_id":      tenant,
		"v":              EntryVersion,
	})
}

// LeafHash returns SHA-256(0x00 || canonical entry).
func (f EntryFields) LeafHash() (Hash, error) {
	b, err := f.CanonicalBytes()
	if err != nil {
		return Hash{}, err
	}
	return LeafHash(b), nil
}

// StoredEntry is an entry as GET /v1/events and GET /v1/events/{id} return it.
type StoredEntry struct {
	ID            string          `json:"id"`
	TenantID      string          `json:"tenant_id"`
	Seq           uint64          `json:"seq"`
	ReceivedAt    string          `json:"received_at"`
	Event         json.RawMessage `json:"event"`
	Erased        bool            `json:"erased"`
	Salt          *string         `json:"salt"`
	ContentDigest Hash            `json:"content_digest"`
	LeafHash      Hash            `json:"leaf_hash"`
	ChainHash     Hash            `json:"chain_hash"`
}

// DecodeEvent decodes the stored event content into an [Event]; it fails for an erased entry.
func (e StoredEntry) DecodeEvent() (Event, error) {
	var ev Event
	if e.Erased || isNullJSON(e.Event) {
		return ev, errors.New("the entry is erased: it has no event content")
	}
	err := json.Unmarshal(e.Event, &ev)
	return ev, err
}

// VerifyEntry recomputes an entry's content digest from its event and salt (unless erased, when
// the digest is taken as given) and its leaf hash from the canonical entry, and compares both
// with the entry's. A nil error means the entry's hashes are its own; [VerifyEntryInclusion]
// then ties the leaf to a signed checkpoint.
func VerifyEntry(e StoredEntry) error {
	if e.Erased {
		if !isNullJSON(e.Event) || e.Salt != nil {
			return fmt.Errorf("entry %d: marked erased but carries event content or a salt", e.Seq)
		}
	} else {
		if isNullJSON(e.Event) || e.Salt == nil {
			return fmt.Errorf("entry %d: not erased but the event or salt is missing", e.Seq)
		}
		salt, err := decodeSalt(*e.Salt)
		if err != nil {
			return fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		if err := CheckStrictJSON(e.Event); err != nil {
			return fmt.Errorf("entry %d: event: %w", e.Seq, err)
		}
		content, err := Canonicalize(e.Event)
		if err != nil {
			return fmt.Errorf("entry %d: event: %w", e.Seq, err)
		}
		if got := ContentDigest(salt, content); got != e.ContentDigest {
			return fmt.Errorf("entry %d: content digest %s recomputed from event and salt differs from the entry's %s", e.Seq, got, e.ContentDigest)
		}
	}
	leaf, err := EntryFields{TenantID: e.TenantID, Seq: e.Seq, ID: e.ID, ReceivedAt: e.ReceivedAt, ContentDigest: e.ContentDigest}.LeafHash()
	if err != nil {
		return fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	if leaf != e.LeafHash {
		return fmt.Errorf("entry %d: leaf hash %s recomputed from the canonical entry differs from the entry's %s", e.Seq, leaf, e.LeafHash)
	}
	return nil
}

func decodeSalt(s string) ([]byte, error) {
	salt, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(salt) != SaltSize {
		return nil, fmt.Errorf("salt is not the base64 of %d bytes", SaltSize)
	}
	return salt, nil
}

func isNullJSON(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// canonicalUUID checks the hyphenated 8-4-4-4-12 hex form and returns it in lowercase.
func canonicalUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%q is not a UUID", truncate(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", fmt.Errorf("%q is not a UUID", truncate(s))
			}
		case (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'):
		default:
			return "", fmt.Errorf("%q is not a UUID", truncate(s))
		}
	}
	return strings.ToLower(s), nil
}
