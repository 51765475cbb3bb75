package auditlog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Hash is a SHA-256 value: a leaf hash, a chain hash, a Merkle node or root, a digest.
type Hash [32]byte

// ZeroHash is the chain hash before seq 0 (32 zero bytes).
var ZeroHash Hash

// EmptyRoot is the Merkle root of the empty tree, SHA-256 of nothing.
var EmptyRoot = Hash(sha256.Sum256(nil))

// String returns the lowercase hex form used everywhere on the wire.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as lowercase hex, so a Hash is a JSON string.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (h *Hash) UnmarshalText(text []byte) error {
	parsed, err := ParseHash(string(text))
	if err != nil {
		return err
	}
	*h = parsed
	return nil
}

// ParseHash decodes 64 lowercase hex digits (the one spelling the log writes) into a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 || strings.ContainsFunc(s, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') }) {
		return h, fmt.Errorf("hash %q is not 64 lowercase hex digits", truncate(s))
	}
	_, _ = hex.Decode(h[:], []byte(s))
	return h, nil
}

// LeafHash is the RFC 9162 leaf hash SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	d := sha256.New()
	d.Write([]byte{0x00})
	d.Write(data)
	return sumOf(d)
}

// NodeHash is the RFC 9162 interior node hash SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	d := sha256.New()
	d.Write([]byte{0x01})
	d.Write(left[:])
	d.Write(right[:])
	return sumOf(d)
}

// ChainLink is one link of the hash chain: SHA-256(previous || leaf). The link before seq 0
// is [ZeroHash].
func ChainLink(previous, leaf Hash) Hash {
	d := sha256.New()
	d.Write(previous[:])
	d.Write(leaf[:])
	return sumOf(d)
}

// ContentDigest is SHA-256(salt || content), the digest a leaf commits to instead of the content.
func ContentDigest(salt, content []byte) Hash {
	d := sha256.New()
	d.Write(salt)
	d.Write(content)
	return sumOf(d)
}

func sumOf(d interface{ Sum([]byte) []byte }) Hash {
	var h Hash
	copy(h[:], d.Sum(nil))
	return h
}

// parseHashList decodes a list of hex hashes, naming the position of a bad one.
func parseHashList(hexes []string) ([]Hash, error) {
	out := make([]Hash, len(hexes))
	for i, s := range hexes {
		h, err := ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = h
	}
	return out, nil
}

// truncate shortens untrusted text before it goes into an error message.
func truncate(s string) string {
	const limit = 80
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// rawString decodes a JSON string member, reporting a wrong type.
func rawString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
