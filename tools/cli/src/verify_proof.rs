//! `auditlog verify-proof`: checks an RFC 9162 inclusion proof (`GET /v1/events/{id}/proof`) or
//! consistency proof (`GET /v1/proofs/consistency`) offline against signed checkpoints.
//!
//! A root does not commit to its tree size, so sizes and roots are taken from a checkpoint note
//! verified with a trusted key, never from the proof response alone: the response's own size and
//! root must agree with the note. With `--entry`, the leaf is recomputed from the stored event
//! and its salt (content digest, canonical entry, leaf hash) instead of being taken as given.

use crate::keys::{self, KeySpec};
use crate::{Outcome, UsageError};
use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use shared::chain::canonical::jcs;
use shared::chain::checkpoint::{self, Checkpoint, CheckpointError};
use shared::chain::entry::{content_digest, Entry};
use shared::chain::event::parse_timestamp;
use shared::chain::export::TrustedKey;
use shared::chain::hash::Hash;
use shared::chain::merkle::{verify_consistency, verify_inclusion};
use uuid::Uuid;

/// Why a proof is not accepted: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFault {
    pub code: &'static str,
    pub message: String,
}

fn fault(code: &'static str, message: impl Into<String>) -> ProofFault {
    ProofFault { code, message: message.into() }
}

/// What a verified proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Inclusion { leaf_index: u64, tree_size: u64, root: Hash, leaf_hash: Hash, recomputed: bool },
    Consistency { from: u64, to: u64, from_root: Hash, to_root: Hash, attested: Vec<u64> },
}

/// The inputs: the proof response, the optional entry, and checkpoint notes (text).
#[derive(Debug)]
pub struct ProofInput<'a> {
    pub proof: &'a Value,
    pub entry: Option<&'a Value>,
    pub checkpoints: &'a [String],
    pub keys: &'a [KeySpec],
    pub key_name: Option<&'a str>,
}

/// Reads a checkpoint file: the note text itself, or the JSON of `GET /v1/checkpoints/latest`
/// or `/v1/checkpoints/{size}` (its `note` member).
pub fn checkpoint_note(text: &str) -> Result<String> {
    if text.trim_start().starts_with('{') {
        let json = crate::parse_strict_json(text)
            .map_err(|e| anyhow::anyhow!("the checkpoint file looks like JSON but is {e}"))?;
        let note = json.get("note").and_then(Value::as_str).context("the checkpoint JSON has no `note` string")?;
        return Ok(note.to_owned());
    }
    Ok(text.to_owned())
}

/// Verifies `note` with the trusted keys the signed-note way: every trusted key that signed it
/// (by name and key ID) must verify, and at least one must have signed it.
pub fn verify_note(note: &str, keys: &[TrustedKey]) -> Result<(Checkpoint, String), CheckpointError> {
    let mut verified = None;
    let mut first_error = None;
    for key in keys {
        match checkpoint::verify(note, &key.key_name, &key.spki_der) {
            Ok(c) => verified = verified.or(Some((c, key.key_name.clone()))),
            Err(e @ CheckpointError::NoSignatureByKey { .. }) => {
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match (verified, first_error) {
        (Some(v), _) => Ok(v),
        (None, Some(e)) => Err(e),
        (None, None) => Err(CheckpointError::InvalidPublicKey),
    }
}

fn hash_member(v: &Value, name: &str) -> Result<Hash, ProofFault> {
    let s =
        v.get(name).and_then(Value::as_str).ok_or_else(|| fault("proof_malformed", format!("`{name}` is missing")))?;
    Hash::from_hex(s).map_err(|_| fault("proof_malformed", format!("`{name}` is not a hex hash")))
}

fn u64_member(v: &Value, name: &str, code: &'static str) -> Result<u64, ProofFault> {
    v.get(name).and_then(Value::as_u64).ok_or_else(|| fault(code, format!("`{name}` is missing or not an integer")))
}

fn hashes_member(v: &Value, name: &str) -> Result<Vec<Hash>, ProofFault> {
    let items = v
        .get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| fault("proof_malformed", format!("`{name}` is not an array")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, h)| {
            h.as_str()
                .and_then(|s| Hash::from_hex(s).ok())
                .ok_or_else(|| fault("proof_malformed", format!("`{name}[{i}]` is not a hex hash")))
        })
        .collect()
}

/// Checks the proof; `Err(Usage)` when the input cannot be checked at all (no checkpoint).
pub fn verify(input: &ProofInput<'_>) -> Result<Result<Verified, ProofFault>> {
    let p = input.proof;
    let mut notes: Vec<String> = input.checkpoints.to_vec();
    if let Some(note) = p.pointer("/checkpoint/note").and_then(Value::as_str) {
        notes.push(note.to_owned());
    }
    if notes.is_empty() {
        return Err(UsageError(
            "the proof embeds no checkpoint (no checkpoint was signed at its tree size); pass one with --checkpoint, \
             e.g. the JSON of GET /v1/checkpoints/<size>"
                .into(),
        )
        .into());
    }
    let note_refs: Vec<&str> = notes.iter().map(String::as_str).collect();
    let keys = keys::resolve(input.keys, input.key_name, &note_refs);
    let mut checkpoints = Vec::new();
    for note in &notes {
        match verify_note(note, &keys) {
            Ok(c) => checkpoints.push(c),
            Err(e) => return Ok(Err(fault("checkpoint_invalid", format!("the checkpoint note does not verify: {e}")))),
        }
    }
    if p.get("audit_path").is_some() {
        Ok(verify_inclusion_proof(p, input.entry, &checkpoints))
    } else if p.get("from").is_some() && p.get("to").is_some() {
        Ok(verify_consistency_proof(p, &checkpoints))
    } else {
        Err(UsageError(
            "the file is neither an inclusion proof (audit_path) nor a consistency proof (from, to, proof)".into(),
        )
        .into())
    }
}

fn verify_inclusion_proof(
    p: &Value,
    entry: Option<&Value>,
    checkpoints: &[(Checkpoint, String)],
) -> Result<Verified, ProofFault> {
    let leaf_index = u64_member(p, "leaf_index", "proof_malformed")?;
    let tree_size = u64_member(p, "tree_size", "proof_malformed")?;
    let stated_leaf = hash_member(p, "leaf_hash")?;
    let audit_path = hashes_member(p, "audit_path")?;
    let (checkpoint, key_name) = checkpoints.iter().find(|(c, _)| c.size == tree_size).ok_or_else(|| {
        let sizes: Vec<String> = checkpoints.iter().map(|(c, _)| c.size.to_string()).collect();
        fault(
            "checkpoint_invalid",
            format!(
                "the proof is for tree size {tree_size}, the checkpoint for {}; ask for the proof with ?tree_size= the checkpoint's size",
                sizes.join(", ")
            ),
        )
    })?;
    if let Ok(root) = hash_member(p, "root") {
        if root != checkpoint.root {
            return Err(fault("root_mismatch", "the response's root differs from the signed checkpoint's"));
        }
    }
    let mut recomputed = false;
    if let Some(entry) = entry {
        let leaf = recompute_leaf(entry)?;
        if leaf.1 != stated_leaf {
            return Err(fault(
                "leaf_hash",
                format!("the entry's leaf hash is {}, the proof says {}", leaf.1.to_hex(), stated_leaf.to_hex()),
            ));
        }
        if leaf.0.seq != leaf_index {
            return Err(fault(
                "leaf_hash",
                format!("the entry has seq {}, the proof is for leaf {leaf_index}", leaf.0.seq),
            ));
        }
        if let Some(event_id) = p.get("event_id").and_then(Value::as_str) {
            if event_id != leaf.0.id.to_string() {
                return Err(fault(
                    "leaf_hash",
                    format!("the entry is {}, the proof is for event {event_id}", leaf.0.id),
                ));
            }
        }
        let origin = format!("{key_name}/{}", leaf.0.tenant_id);
        if checkpoint.origin != origin {
            return Err(fault(
                "checkpoint_invalid",
                format!("the checkpoint's origin is {:?}, not {origin:?}", checkpoint.origin),
            ));
        }
        recomputed = true;
    }
    verify_inclusion(&stated_leaf, leaf_index, tree_size, &audit_path, &checkpoint.root)
        .map_err(|e| fault("proof_invalid", e.to_string()))?;
    Ok(Verified::Inclusion { leaf_index, tree_size, root: checkpoint.root, leaf_hash: stated_leaf, recomputed })
}

/// Recomputes the content digest (unless erased) and the leaf hash of a `GET /v1/events/{id}`
/// entry.
fn recompute_leaf(e: &Value) -> Result<(Entry, Hash), ProofFault> {
    let bad = |m: &str| fault("entry_malformed", m.to_owned());
    let text = |name: &str| e.get(name).and_then(Value::as_str).ok_or_else(|| bad(&format!("`{name}` is missing")));
    let tenant_id = Uuid::parse_str(text("tenant_id")?).map_err(|_| bad("`tenant_id` is not a UUID"))?;
    let id = Uuid::parse_str(text("id")?).map_err(|_| bad("`id` is not a UUID"))?;
    let seq = u64_member(e, "seq", "entry_malformed")?;
    let received_at = parse_timestamp(text("received_at")?).map_err(|m| bad(&format!("`received_at`: {m}")))?;
    let stated_digest =
        Hash::from_hex(text("content_digest")?).map_err(|_| bad("`content_digest` is not a hex hash"))?;
    match (e.get("event").filter(|v| !v.is_null()), e.get("salt").and_then(Value::as_str)) {
        (Some(event), Some(salt)) => {
            let salt = BASE64.decode(salt).map_err(|_| bad("`salt` is not base64"))?;
            let digest = content_digest(&salt, &jcs(event));
            if digest != stated_digest {
                return Err(fault(
                    "content_digest",
                    format!(
                        "the event and salt digest to {}, the entry says {}",
                        digest.to_hex(),
                        stated_digest.to_hex()
                    ),
                ));
            }
        }
        (None, None) => {}
        _ => return Err(bad("`event` and `salt` must be present together or erased together")),
    }
    let entry = Entry { tenant_id, seq, id, received_at, content_digest: stated_digest };
    let leaf = entry.leaf_hash();
    Ok((entry, leaf))
}

fn verify_consistency_proof(p: &Value, checkpoints: &[(Checkpoint, String)]) -> Result<Verified, ProofFault> {
    let from = u64_member(p, "from", "proof_malformed")?;
    let to = u64_member(p, "to", "proof_malformed")?;
    let from_root = hash_member(p, "from_root")?;
    let to_root = hash_member(p, "to_root")?;
    let proof = hashes_member(p, "proof")?;
    let mut attested = Vec::new();
    for (c, _) in checkpoints {
        let stated = if c.size == to {
            to_root
        } else if c.size == from {
            from_root
        } else {
            return Err(fault(
                "checkpoint_invalid",
                format!("a checkpoint is for tree size {}, the proof is between {from} and {to}", c.size),
            ));
        };
        if stated != c.root {
            return Err(fault(
                "root_mismatch",
                format!("the response's root at size {} differs from the signed checkpoint's", c.size),
            ));
        }
        attested.push(c.size);
    }
    attested.sort_unstable();
    attested.dedup();
    verify_consistency(from, to, &from_root, &to_root, &proof).map_err(|e| fault("proof_invalid", e.to_string()))?;
    Ok(Verified::Consistency { from, to, from_root, to_root, attested })
}

/// Prints the result (text, or one JSON object with `--json`).
pub fn report(result: &Result<Verified, ProofFault>, json_output: bool) -> Outcome {
    match result {
        Ok(Verified::Inclusion { leaf_index, tree_size, root, leaf_hash, recomputed }) => {
            if json_output {
                println!(
                    "{}",
                    json!({"valid": true, "kind": "inclusion", "leaf_index": leaf_index, "tree_size": tree_size,
                           "root": root.to_hex(), "leaf_hash": leaf_hash.to_hex(), "leaf_recomputed": recomputed})
                );
            } else {
                println!("inclusion proof valid: leaf {leaf_index} is in the signed tree of size {tree_size}");
                println!("  root       {}", root.to_hex());
                let source = if *recomputed { "recomputed from the entry" } else { "as the proof states it" };
                println!("  leaf hash  {} ({source})", leaf_hash.to_hex());
            }
            Outcome::Valid
        }
        Ok(Verified::Consistency { from, to, from_root, to_root, attested }) => {
            if json_output {
                println!(
                    "{}",
                    json!({"valid": true, "kind": "consistency", "from": from, "to": to, "from_root": from_root.to_hex(),
                           "to_root": to_root.to_hex(), "signed_sizes": attested})
                );
            } else {
                println!("consistency proof valid: the tree of size {to} extends the tree of size {from}");
                println!(
                    "  from root  {}{}",
                    from_root.to_hex(),
                    if attested.contains(from) { " (signed)" } else { " (as the response states it)" }
                );
                println!(
                    "  to root    {}{}",
                    to_root.to_hex(),
                    if attested.contains(to) { " (signed)" } else { " (as the response states it)" }
                );
            }
            Outcome::Valid
        }
        Err(f) => {
            if json_output {
                println!("{}", json!({"valid": false, "code": f.code, "message": f.message}));
            } else {
                eprintln!("proof INVALID: {}: {}", f.code, f.message);
            }
            Outcome::Invalid
        }
    }
}
