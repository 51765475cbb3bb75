//! Receipts: the service's signed acknowledgement of an accepted event. A receipt names the
//! tenant, the event, its position and hashes and the time of receipt, and is signed with the
//! service's Ed25519 receipt key over the RFC 8785 canonical JSON of the receipt without its
//! `sig` member. A tenant holding receipts can later prove what the service accepted: an entry
//! missing or different from its receipt is the service's fault, signed by its own key.

use super::canonical::jcs;
use super::event::format_timestamp;
use super::hash::{sha256, Hash};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// What a receipt states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPayload {
    pub tenant_id: Uuid,
    pub event_id: Uuid,
    pub seq: u64,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
    pub received_at: DateTime<Utc>,
}

/// A signed receipt as it travels in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub tenant_id: Uuid,
    pub event_id: Uuid,
    pub seq: u64,
    /// Lowercase hex.
    pub leaf_hash: String,
    pub chain_hash: String,
    /// RFC 3339 UTC with microseconds, as everywhere in the API.
    pub received_at: String,
    /// The receipt key's id (see [`receipt_key_id`]).
    pub key_id: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub sig: String,
}

/// Why a receipt does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt names key {found}, not {expected}")]
    WrongKey { expected: String, found: String },
    #[error("the signature is not base64 of 64 bytes")]
    Malformed,
    #[error("the signature does not match the receipt")]
    Invalid,
}

/// A receipt key's id: the first 8 bytes of SHA-256 of the raw public key, in hex.
pub fn receipt_key_id(key: &VerifyingKey) -> String {
    hex::encode(&sha256(&[key.as_bytes()]).0[..8])
}

/// The bytes a receipt's signature covers.
pub fn receipt_signing_bytes(receipt: &Receipt) -> Vec<u8> {
    let unsigned: Value = json!({
        "tenant_id": receipt.tenant_id,
        "event_id": receipt.event_id,
        "seq": receipt.seq,
        "leaf_hash": receipt.leaf_hash,
        "chain_hash": receipt.chain_hash,
        "received_at": receipt.received_at,
        "key_id": receipt.key_id,
    });
    jcs(&unsigned)
}

/// Signs `payload` with `key`.
pub fn sign_receipt(payload: &ReceiptPayload, key: &SigningKey) -> Receipt {
    let mut receipt = Receipt {
        tenant_id: payload.tenant_id,
        event_id: payload.event_id,
        seq: payload.seq,
        leaf_hash: payload.leaf_hash.to_hex(),
        chain_hash: payload.chain_hash.to_hex(),
        received_at: format_timestamp(&payload.received_at),
        key_id: receipt_key_id(&key.verifying_key()),
        sig: String::new(),
    };
    receipt.sig = STANDARD.encode(key.sign(&receipt_signing_bytes(&receipt)).to_bytes());
    receipt
}

/// Checks a receipt against the public key it names.
pub fn verify_receipt(receipt: &Receipt, key: &VerifyingKey) -> Result<(), ReceiptError> {
    let expected = receipt_key_id(key);
    if receipt.key_id != expected {
        return Err(ReceiptError::WrongKey { expected, found: receipt.key_id.clone() });
    }
    let raw = STANDARD.decode(&receipt.sig).map_err(|_| ReceiptError::Malformed)?;
    let sig = Signature::from_slice(&raw).map_err(|_| ReceiptError::Malformed)?;
    key.verify_strict(&receipt_signing_bytes(receipt), &sig).map_err(|_| ReceiptError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::event::parse_timestamp;

    fn payload() -> ReceiptPayload {
        ReceiptPayload {
            tenant_id: Uuid::parse_str("01930000-0000-7000-8000-000000000001").unwrap(),
            event_id: Uuid::parse_str("01930000-0000-7000-8000-0000000000e1").unwrap(),
            seq: 41,
            leaf_hash: Hash([0x11; 32]),
            chain_hash: Hash([0x22; 32]),
            received_at: parse_timestamp("2026-11-24T10:00:00.123456Z").unwrap(),
        }
    }

    #[test]
    fn canonical_bytes_are_pinned() {
        let key = SigningKey::from_bytes(&[1u8; 32]);
        let receipt = sign_receipt(&payload(), &key);
        let expected = format!(
            r#"{{"chain_hash":"{}","event_id":"01930000-0000-7000-8000-0000000000e1","key_id":"{}","leaf_hash":"{}","received_at":"2026-11-24T10:00:00.123456Z","seq":41,"tenant_id":"01930000-0000-7000-8000-000000000001"}}"#,
            "22".repeat(32),
            receipt.key_id,
            "11".repeat(32)
        );
        assert_eq!(String::from_utf8(receipt_signing_bytes(&receipt)).unwrap(), expected);
        // Ed25519 is deterministic: the same key and payload give the same receipt.
        assert_eq!(sign_receipt(&payload(), &key), receipt);
        // Pinned values, checked against an independent Ed25519 implementation (Python's
        // `cryptography`) over the same canonical bytes.
        assert_eq!(receipt.key_id, "34750f98bd59fcfc");
        assert_eq!(
            receipt.sig,
            "lMPq1KY0LEeqh8VzJf8TZzidjY0KVF+Wdzzd3kK/LAGIF7RByMGJySbm3CVQrrQa1YDnSbFZeu6f59dLzg/JDw=="
        );
    }

    #[test]
    fn a_signed_receipt_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[2u8; 32]);
        let receipt = sign_receipt(&payload(), &key);
        verify_receipt(&receipt, &key.verifying_key()).unwrap();
        let changes: [fn(&mut Receipt); 6] = [
            |r| r.seq += 1,
            |r| r.tenant_id = Uuid::nil(),
            |r| r.event_id = Uuid::nil(),
            |r| r.leaf_hash = "33".repeat(32),
            |r| r.chain_hash = "33".repeat(32),
            |r| r.received_at = "2026-11-24T10:00:00.123457Z".into(),
        ];
        // A changed key id is refused before the signature is even checked.
        let mut renamed = receipt.clone();
        renamed.key_id = "0000000000000000".into();
        assert!(matches!(verify_receipt(&renamed, &key.verifying_key()), Err(ReceiptError::WrongKey { .. })));
        for change in changes {
            let mut tampered = receipt.clone();
            change(&mut tampered);
            assert_eq!(verify_receipt(&tampered, &key.verifying_key()), Err(ReceiptError::Invalid));
        }
        let other = SigningKey::from_bytes(&[3u8; 32]);
        assert!(matches!(verify_receipt(&receipt, &other.verifying_key()), Err(ReceiptError::WrongKey { .. })));
        let mut garbled = receipt.clone();
        garbled.sig = "not base64!".into();
        assert_eq!(verify_receipt(&garbled, &key.verifying_key()), Err(ReceiptError::Malformed));
    }

    #[test]
    fn receipts_round_trip_through_json() {
        let receipt = sign_receipt(&payload(), &SigningKey::from_bytes(&[4u8; 32]));
        let json = serde_json::to_string(&receipt).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), receipt);
    }
}
