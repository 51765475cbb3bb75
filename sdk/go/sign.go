package auditlog

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// SignatureAlgorithm is the one publisher signature algorithm the log accepts.
const SignatureAlgorithm = "ed25519"

// SignEvent returns a copy of e signed with the publisher key registered as keyID. A signed
// event must fix what the service would otherwise fill in, so a missing OccurredAt becomes the
// current time and a missing Outcome "success"; OccurredAt is normalised (UTC, microseconds).
// The signature covers [SigningBytes] of the result. Ed25519 is deterministic, so the same
// event and key always give the same signature.
func SignEvent(e Event, keyID string, key ed25519.PrivateKey) (Event, error) {
	if keyID == "" {
		return Event{}, errors.New("sign event: the key id is empty")
	}
	if len(key) != ed25519.PrivateKeySize {
		return Event{}, fmt.Errorf("sign event: the private key has %d bytes, not %d", len(key), ed25519.PrivateKeySize)
	}
	signed := e
	signed.Signature = nil
	if signed.OccurredAt == "" {
		signed.OccurredAt = FormatTime(time.Now())
	} else {
		normalized, err := NormalizeTime(signed.OccurredAt)
		if err != nil {
			return Event{}, fmt.Errorf("sign event: occurred_at: %w", err)
		}
		signed.OccurredAt = normalized
	}
	if signed.Outcome == "" {
		signed.Outcome = "success"
	}
	message, err := SigningBytes(signed, time.Time{})
	if err != nil {
		return Event{}, fmt.Errorf("sign event: %w", err)
	}
	signed.Signature = &EventSignature{
		KeyID: keyID,
		Alg:   SignatureAlgorithm,
		Sig:   base64.StdEncoding.EncodeToString(ed25519.Sign(key, message)),
	}
	return signed, nil
}

// VerifyEventSignature checks the publisher signature of an event (as sent, or as stored and
// returned by the API) against the publisher's public key.
func VerifyEventSignature(event any, sig EventSignature, publicKey ed25519.PublicKey) error {
	if sig.Alg != SignatureAlgorithm {
		return fmt.Errorf("event signature: algorithm %q is not %q", truncate(sig.Alg), SignatureAlgorithm)
	}
	if len(publicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("event signature: the public key has %d bytes, not %d", len(publicKey), ed25519.PublicKeySize)
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return errors.New("event signature: sig is not the base64 of 64 bytes")
	}
	message, err := SigningBytes(event, time.Time{})
	if err != nil {
		return fmt.Errorf("event signature: %w", err)
	}
	if !ed25519.Verify(publicKey, message, raw) {
		return errors.New("event signature: the signature does not match the event")
	}
	return nil
}
