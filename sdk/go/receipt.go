package auditlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Receipt is the service's signed acknowledgement of an accepted event (docs/FORMATS.md
// "Receipt"). Hashes are kept as the hex text that was signed.
type Receipt struct {
	TenantID   string `json:"tenant_id"`
	EventID    string `json:"event_id"`
	Seq        uint64 `json:"seq"`
	LeafHash   string `json:"leaf_hash"`
	ChainHash  string `json:"chain_hash"`
	ReceivedAt string `json:"received_at"`
	KeyID      string `json:"key_id"`
	Sig        string `json:"sig"`
}

// ReceiptSigningBytes returns the bytes a receipt's signature covers: the RFC 8785 form of the
// receipt without its sig member.
func ReceiptSigningBytes(r Receipt) ([]byte, error) {
	return CanonicalizeValue(map[string]any{
		"tenant_id":   r.TenantID,
		"event_id":    r.EventID,
		"seq":         r.Seq,
		"leaf_hash":   r.LeafHash,
		"chain_hash":  r.ChainHash,
		"received_at": r.ReceivedAt,
		"key_id":      r.KeyID,
	})
}

// ReceiptKeyID is a receipt key's id: the hex of the first 8 bytes of SHA-256 of the raw key.
func ReceiptKeyID(publicKey ed25519.PublicKey) string {
	d := sha256.Sum256(publicKey)
	return hex.EncodeToString(d[:8])
}

// ErrReceiptInvalid is wrapped by every receipt verification failure.
var ErrReceiptInvalid = errors.New("receipt invalid")

// VerifyReceipt checks a receipt's Ed25519 signature with the key its key_id names, among the
// given receipt public keys (raw 32-byte keys, e.g. from GET /v1/receipts/public-key).
func VerifyReceipt(r Receipt, publicKeys ...ed25519.PublicKey) error {
	var key ed25519.PublicKey
	for _, k := range publicKeys {
		if len(k) == ed25519.PublicKeySize && ReceiptKeyID(k) == r.KeyID {
			key = k
			break
		}
	}
	if key == nil {
		return fmt.Errorf("%w: no trusted receipt key has key id %q", ErrReceiptInvalid, truncate(r.KeyID))
	}
	sig, err := base64.StdEncoding.DecodeString(r.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig is not the base64 of 64 bytes", ErrReceiptInvalid)
	}
	message, err := ReceiptSigningBytes(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	if !ed25519.Verify(key, message, sig) {
		return fmt.Errorf("%w: the signature does not match the receipt", ErrReceiptInvalid)
	}
	return nil
}

// ParseReceiptKey decodes the base64 of a raw 32-byte Ed25519 public key.
func ParseReceiptKey(b64 string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("receipt key: not the base64 of a 32-byte Ed25519 public key")
	}
	return ed25519.PublicKey(raw), nil
}
