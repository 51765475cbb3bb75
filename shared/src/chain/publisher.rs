//! Publisher signatures: a tenant's application may sign each event with a registered Ed25519
//! key, so the log can show not only that the service accepted an event but that the publisher
//! produced it. The signature covers `canonical::signing_bytes`: the RFC 8785 form of the
//! normalised event without its `signature` member.

use super::canonical::signing_bytes;
use super::event::Event;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};

/// Why a publisher signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublisherSignatureError {
    #[error("the event carries no signature")]
    Missing,
    #[error("the signature is not base64 of 64 bytes")]
    Malformed,
    #[error("the public key is not 32 bytes of an Ed25519 point")]
    BadKey,
    #[error("the signature does not match the event's canonical form")]
    Invalid,
}

/// Parses a raw 32-byte Ed25519 public key.
pub fn parse_public_key(raw: &[u8]) -> Result<VerifyingKey, PublisherSignatureError> {
    let bytes: [u8; 32] = raw.try_into().map_err(|_| PublisherSignatureError::BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| PublisherSignatureError::BadKey)
}

/// Verifies the event's signature with `key` (strict verification: no malleable signatures).
pub fn verify_publisher_signature(event: &Event, key: &VerifyingKey) -> Result<(), PublisherSignatureError> {
    let sig = event.signature.as_ref().ok_or(PublisherSignatureError::Missing)?;
    let raw = STANDARD.decode(&sig.sig).map_err(|_| PublisherSignatureError::Malformed)?;
    let sig = Signature::from_slice(&raw).map_err(|_| PublisherSignatureError::Malformed)?;
    key.verify_strict(&signing_bytes(event), &sig).map_err(|_| PublisherSignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::event::{parse_event, parse_timestamp, PublisherSignature};
    use ed25519_dalek::{Signer, SigningKey};

    fn signed_event(key: &SigningKey) -> Event {
        let json = br#"{"action":"invoice.pay","actor":{"id":"svc-billing"},"outcome":"success","occurred_at":"2026-11-24T09:59:00Z","metadata":{"amount":12.5}}"#;
        let mut e = parse_event(json)
            .expect("parse")
            .validate(parse_timestamp("2026-11-24T10:00:00Z").expect("ts"))
            .expect("valid");
        let sig = key.sign(&signing_bytes(&e));
        e.signature = Some(PublisherSignature {
            key_id: "k1".into(),
            alg: "ed25519".into(),
            sig: STANDARD.encode(sig.to_bytes()),
        });
        e
    }

    #[test]
    fn accepts_a_signature_over_the_canonical_form() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let e = signed_event(&key);
        verify_publisher_signature(&e, &key.verifying_key()).expect("valid");
        let raw = key.verifying_key().to_bytes();
        verify_publisher_signature(&e, &parse_public_key(&raw).expect("key")).expect("valid from raw key");
    }

    #[test]
    fn rejects_a_changed_event_or_another_key() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let mut e = signed_event(&key);
        e.actor.id = "mallory".into();
        assert_eq!(verify_publisher_signature(&e, &key.verifying_key()), Err(PublisherSignatureError::Invalid));
        let e = signed_event(&key);
        let other = SigningKey::from_bytes(&[10u8; 32]);
        assert_eq!(verify_publisher_signature(&e, &other.verifying_key()), Err(PublisherSignatureError::Invalid));
    }

    #[test]
    fn rejects_malformed_signatures_and_keys() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let mut e = signed_event(&key);
        if let Some(s) = e.signature.as_mut() {
            s.sig = "not base64!".into();
        }
        assert_eq!(verify_publisher_signature(&e, &key.verifying_key()), Err(PublisherSignatureError::Malformed));
        e.signature = None;
        assert_eq!(verify_publisher_signature(&e, &key.verifying_key()), Err(PublisherSignatureError::Missing));
        assert_eq!(parse_public_key(&[1u8; 31]).err(), Some(PublisherSignatureError::BadKey));
    }
}
