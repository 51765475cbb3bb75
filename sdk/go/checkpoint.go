package auditlog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// SignatureTypeECDSA is the signed-note signature type of ECDSA keys, the first byte of the key
// material in a verifier key string.
const SignatureTypeECDSA = 0x02

// MaxNoteSignatures is the most signature lines a note may carry.
const MaxNoteSignatures = 100

const timestampPrefix = "timestamp "

// Checkpoint is the body of a signed checkpoint (C2SP tlog-checkpoint): the log named Origin
// had Size leaves with this Merkle Root.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
	// Extensions are the optional lines after the root, without their newline.
	Extensions []string
}

// Timestamp returns the signer's claim of when it signed, from the `timestamp <unix seconds>`
// extension line, if there is one.
func (c Checkpoint) Timestamp() (uint64, bool) {
	for _, line := range c.Extensions {
		if v, ok := strings.CutPrefix(line, timestampPrefix); ok {
			n, valid := parseDecimal(v)
			return n, valid
		}
	}
	return 0, false
}

// CheckpointErrorKind classifies why a note was refused. The kinds are the `error` words of the
// shared test vectors.
type CheckpointErrorKind string

const (
	// CheckpointMalformed: the note or its checkpoint body does not follow the formats.
	CheckpointMalformed CheckpointErrorKind = "malformed"
	// CheckpointBadSignature: a signature by a trusted key does not verify.
	CheckpointBadSignature CheckpointErrorKind = "signature"
	// CheckpointNoSignature: no signature by any trusted key.
	CheckpointNoSignature CheckpointErrorKind = "no_signature"
)

// CheckpointError is the error of [VerifyCheckpoint] and [ParseCheckpointBody].
type CheckpointError struct {
	Kind   CheckpointErrorKind
	Detail string
}

func (e *CheckpointError) Error() string { return "checkpoint " + string(e.Kind) + ": " + e.Detail }

func malformed(format string, args ...any) error {
	return &CheckpointError{Kind: CheckpointMalformed, Detail: fmt.Sprintf(format, args...)}
}

// ParseCheckpointBody parses checkpoint note text strictly: origin line, tree size in decimal
// without leading zeros, padded standard base64 of the 32-byte root, optional extension lines,
// each line ending in a newline.
func ParseCheckpointBody(text string) (Checkpoint, error) {
	body, ok := strings.CutSuffix(text, "\n")
	if !ok {
		return Checkpoint{}, malformed("the note text does not end with a newline")
	}
	if strings.ContainsFunc(body, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
		return Checkpoint{}, malformed("the text contains a control character")
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return Checkpoint{}, malformed("a checkpoint needs an origin, a tree size and a root hash line")
	}
	if lines[0] == "" {
		return Checkpoint{}, malformed("the origin line is empty")
	}
	size, ok := parseDecimal(lines[1])
	if !ok {
		return Checkpoint{}, malformed("tree size %q is not a decimal number without leading zeros", truncate(lines[1]))
	}
	rootBytes, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(rootBytes) != 32 || strings.ContainsAny(lines[2], "\r\n") {
		return Checkpoint{}, malformed("the root hash line is not the padded base64 of 32 bytes")
	}
	c := Checkpoint{Origin: lines[0], Size: size, Extensions: lines[3:]}
	copy(c.Root[:], rootBytes)
	timestamps := 0
	for i, line := range c.Extensions {
		if line == "" {
			return Checkpoint{}, malformed("extension line %d is empty", i)
		}
		if v, ok := strings.CutPrefix(line, timestampPrefix); ok {
			if _, valid := parseDecimal(v); !valid {
				return Checkpoint{}, malformed("extension line %q is not `timestamp <unix seconds>`", truncate(line))
			}
			timestamps++
			if timestamps > 1 {
				return Checkpoint{}, malformed("more than one timestamp extension line")
			}
		}
	}
	return c, nil
}

// CheckpointKey is a trusted checkpoint signing key: an ECDSA P-256 key and its signed-note
// name. Build one with [NewCheckpointKey], [ParseVerifierKey] or [ParseCheckpointKeyPEM].
type CheckpointKey struct {
	Name string
	// ID is the signed-note key ID: the first 4 bytes of SHA-256 of the DER SPKI.
	ID [4]byte
	// SPKI is the DER SubjectPublicKeyInfo, as given.
	SPKI []byte
	key  *ecdsa.PublicKey
}

// KeyIDHex is the key ID as 8 hex digits.
func (k CheckpointKey) KeyIDHex() string { return hex.EncodeToString(k.ID[:]) }

// VerifierKey returns the verifier key string of Go's sumdb/note tooling:
// `<name>+<key ID hex>+base64(0x02 || DER SPKI)`.
func (k CheckpointKey) VerifierKey() string {
	material := append([]byte{SignatureTypeECDSA}, k.SPKI...)
	return k.Name + "+" + k.KeyIDHex() + "+" + base64.StdEncoding.EncodeToString(material)
}

// NewCheckpointKey builds a trusted key from its name and the DER SubjectPublicKeyInfo of a
// P-256 public key.
func NewCheckpointKey(name string, spkiDER []byte) (CheckpointKey, error) {
	if err := validateKeyName(name); err != nil {
		return CheckpointKey{}, err
	}
	parsed, err := x509.ParsePKIXPublicKey(spkiDER)
	if err != nil {
		return CheckpointKey{}, fmt.Errorf("checkpoint key %q: not a DER SubjectPublicKeyInfo: %w", name, err)
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return CheckpointKey{}, fmt.Errorf("checkpoint key %q: not an ECDSA P-256 public key", name)
	}
	digest := sha256.Sum256(spkiDER)
	k := CheckpointKey{Name: name, SPKI: append([]byte(nil), spkiDER...), key: pub}
	copy(k.ID[:], digest[:4])
	return k, nil
}

// NewCheckpointKeyBase64 is [NewCheckpointKey] for the base64 DER SPKI the API and the vectors
// publish (`public_key`).
func NewCheckpointKeyBase64(name, spkiBase64 string) (CheckpointKey, error) {
	der, err := base64.StdEncoding.DecodeString(spkiBase64)
	if err != nil {
		return CheckpointKey{}, fmt.Errorf("checkpoint key %q: public key is not base64: %w", name, err)
	}
	return NewCheckpointKey(name, der)
}

// ParseCheckpointKeyPEM builds a trusted key from a `-----BEGIN PUBLIC KEY-----` PEM block.
func ParseCheckpointKeyPEM(name, pemText string) (CheckpointKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil || block.Type != "PUBLIC KEY" {
		return CheckpointKey{}, fmt.Errorf("checkpoint key %q: not a PUBLIC KEY PEM block", name)
	}
	return NewCheckpointKey(name, block.Bytes)
}

// ParseVerifierKey parses a verifier key string `<name>+<key ID hex>+base64(0x02 || DER SPKI)`
// and checks that the key ID is the one the key material gives.
func ParseVerifierKey(vkey string) (CheckpointKey, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	idHex, material64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return CheckpointKey{}, errors.New("verifier key: want <name>+<key id hex>+<base64 key>")
	}
	id, err := hex.DecodeString(idHex)
	if err != nil || len(id) != 4 {
		return CheckpointKey{}, fmt.Errorf("verifier key: key id %q is not 8 hex digits", truncate(idHex))
	}
	material, err := base64.StdEncoding.DecodeString(material64)
	if err != nil || len(material) < 2 {
		return CheckpointKey{}, errors.New("verifier key: the key material is not base64")
	}
	if material[0] != SignatureTypeECDSA {
		return CheckpointKey{}, fmt.Errorf("verifier key: signature type 0x%02x is not ECDSA (0x02)", material[0])
	}
	k, err := NewCheckpointKey(name, material[1:])
	if err != nil {
		return CheckpointKey{}, fmt.Errorf("verifier key: %w", err)
	}
	if !strings.EqualFold(k.KeyIDHex(), idHex) {
		return CheckpointKey{}, fmt.Errorf("verifier key: key id %s does not match the key (%s)", idHex, k.KeyIDHex())
	}
	return k, nil
}

func validateKeyName(name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '+' }) {
		return fmt.Errorf("key name %q is empty or contains a space or '+'", truncate(name))
	}
	return nil
}

// VerifiedCheckpoint is a checkpoint whose note verified, with the trusted key that signed it.
type VerifiedCheckpoint struct {
	Checkpoint
	Note string
	Key  CheckpointKey
}

// VerifyCheckpoint verifies a signed checkpoint note against one or more trusted keys and
// returns the checkpoint it carries. It follows the signed-note rules: signature lines by other
// keys (another name or key ID, such as witness cosignatures) are ignored; every signature by a
// trusted key must verify; at least one must be present. Each line is checked with the key its
// name and key ID select, so retired keys can be trusted beside the current one. The error is a
// *[CheckpointError].
func VerifyCheckpoint(note string, keys ...CheckpointKey) (*VerifiedCheckpoint, error) {
	if len(keys) == 0 {
		return nil, &CheckpointError{Kind: CheckpointNoSignature, Detail: "no trusted key was given"}
	}
	if strings.ContainsFunc(note, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
		return nil, malformed("the note contains a control character")
	}
	split := strings.LastIndex(note, "\n\n")
	if split < 0 {
		return nil, malformed("no blank line separates the note text from its signatures")
	}
	text, signatures := note[:split+1], note[split+2:]
	signatures, ok := strings.CutSuffix(signatures, "\n")
	if !ok {
		return nil, malformed("the signature lines do not end with a newline")
	}
	digest := sha256.Sum256([]byte(text))
	var signer *CheckpointKey
	for i, line := range strings.Split(signatures, "\n") {
		if i >= MaxNoteSignatures {
			return nil, malformed("the note has more than %d signatures", MaxNoteSignatures)
		}
		name, id, sig, err := parseSignatureLine(line, i)
		if err != nil {
			return nil, err
		}
		key := findKey(keys, name, id)
		if key == nil {
			continue // someone else's signature, such as a witness cosignature
		}
		if !ecdsa.VerifyASN1(key.key, digest[:], sig) {
			return nil, &CheckpointError{Kind: CheckpointBadSignature,
				Detail: fmt.Sprintf("a signature by key %s with key ID %s does not verify", key.Name, key.KeyIDHex())}
		}
		if signer == nil {
			signer = key
		}
	}
	if signer == nil {
		return nil, &CheckpointError{Kind: CheckpointNoSignature, Detail: "the note has no signature by a trusted key"}
	}
	c, err := ParseCheckpointBody(text)
	if err != nil {
		return nil, err
	}
	return &VerifiedCheckpoint{Checkpoint: c, Note: note, Key: *signer}, nil
}

func findKey(keys []CheckpointKey, name string, id [4]byte) *CheckpointKey {
	for i := range keys {
		if keys[i].Name == name && keys[i].ID == id && keys[i].key != nil {
			return &keys[i]
		}
	}
	return nil
}

// parseSignatureLine splits `— <name> <base64(key ID || signature)>`.
func parseSignatureLine(line string, index int) (string, [4]byte, []byte, error) {
	var id [4]byte
	rest, ok := strings.CutPrefix(line, "\u2014 ")
	if !ok {
		return "", id, nil, malformed("signature line %d does not start with an em dash and a space", index)
	}
	name, encoded, ok := strings.Cut(rest, " ")
	if !ok || validateKeyName(name) != nil {
		return "", id, nil, malformed("signature line %d is malformed", index)
	}
	decoded, err := base64.StdEncoding.Strict().DecodeString(encoded)
	if err != nil || len(decoded) < 5 {
		return "", id, nil, malformed("signature line %d is not base64 of a key ID and a signature", index)
	}
	copy(id[:], decoded[:4])
	return name, id, decoded[4:], nil
}

// parseDecimal reads ASCII decimal without sign, spaces or leading zeros ("0" itself is fine).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
