//! Pinned keys and the signed-note check against them.
//!
//! The console gets its trusted keys from its deployment configuration (`config.json`:
//! `checkpoint_keys`, `global_log_keys`), as verifier key strings
//! (`<key name>+<key ID, 8 hex>+base64(0x02 || DER SPKI)`, what `GET /v1/checkpoints/public-key`
//! shows as `verifier_key`). Only those keys are trusted: nothing in a response the page verifies
//! can add one.

use crate::chain::checkpoint::{self, key_id_ecdsa, verifier_key, Checkpoint, CheckpointError, SIGNATURE_TYPE_ECDSA};
use crate::chain::export::TrustedKey;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// Parses a verifier key string. It is accepted only in the one spelling the chain core writes
/// for its key (so the key ID is checked against the key, and the key is P-256).
pub fn parse_verifier_key(text: &str) -> Result<TrustedKey, String> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(_id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not a verifier key (<name>+<key id>+<base64 key>)"));
    };
    let bytes = BASE64.decode(material).map_err(|_| format!("the key material of {name:?} is not standard base64"))?;
    let Some((&SIGNATURE_TYPE_ECDSA, spki_der)) = bytes.split_first() else {
        return Err(format!("the key {name:?} is not an ECDSA (0x02) verifier key"));
    };
    let canonical = verifier_key(name, spki_der).map_err(|e| format!("the key {name:?}: {e}"))?;
    if canonical != text {
        return Err(format!("the key ID of {name:?} is not its key's ({})", hex::encode(key_id_ecdsa(spki_der))));
    }
    Ok(TrustedKey { key_name: name.to_owned(), spki_der: spki_der.to_vec() })
}

/// Parses every key of a list, naming the first bad one by its place.
pub fn parse_verifier_keys(texts: &[String], list: &str) -> Result<Vec<TrustedKey>, String> {
    texts.iter().enumerate().map(|(i, t)| parse_verifier_key(t).map_err(|e| format!("{list}[{i}]: {e}"))).collect()
}

/// Why a note did not verify against the pinned keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteFailure {
    /// No pinned key signed it (it may carry signatures of other keys).
    Untrusted,
    /// A pinned key's signature on it does not verify.
    BadSignature(String),
    /// The note does not parse.
    Malformed(String),
}

impl NoteFailure {
    /// The error word of `test-vectors/v1/checkpoints.json`.
    pub fn word(&self) -> &'static str {
        match self {
            NoteFailure::Untrusted => "no_signature",
            NoteFailure::BadSignature(_) => "signature",
            NoteFailure::Malformed(_) => "malformed",
        }
    }
}

/// A note that verified, and the names of the pinned keys whose signatures are on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    pub checkpoint: Checkpoint,
    pub key_names: Vec<String>,
}

/// Verifies a signed note against the pinned keys, as the export verifier does: each key judges
/// only its own signatures (signed-note rules), so trying every key checks the note with the key
/// its key ID names, every signature by a pinned key must verify, and one must be present.
pub fn verify_note(note: &str, keys: &[TrustedKey]) -> Result<VerifiedNote, NoteFailure> {
    let mut verified: Option<VerifiedNote> = None;
    for key in keys {
        match checkpoint::verify(note, &key.key_name, &key.spki_der) {
            Ok(checkpoint) => match &mut verified {
                Some(v) => v.key_names.push(key.key_name.clone()),
                None => verified = Some(VerifiedNote { checkpoint, key_names: vec![key.key_name.clone()] }),
            },
            Err(CheckpointError::NoSignatureByKey { .. }) => {}
            Err(e @ CheckpointError::InvalidSignature { .. }) => return Err(NoteFailure::BadSignature(e.to_string())),
            Err(e) => return Err(NoteFailure::Malformed(e.to_string())),
        }
    }
    verified.ok_or(NoteFailure::Untrusted)
}

/// Whether a verified note is the checkpoint of `tenant`'s log: its origin is
/// `<signing key name>/<tenant>`, as the service writes it.
pub fn names_tenant(note: &VerifiedNote, tenant: &str) -> bool {
    note.key_names.iter().any(|name| note.checkpoint.origin == format!("{name}/{tenant}"))
}
