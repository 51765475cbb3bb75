//! `verify_page`: a page of entries (as `GET /v1/events` returns its items) and the batch proof
//! for it (as `POST /v1/proofs/inclusion` answers), checked against the pinned keys.
//!
//! Per entry, four steps, each with the chain core:
//! 1. `leaf`: the content digest recomputed from `event` and `salt` (unless erased), the leaf hash
//!    recomputed from the canonical entry, and the chain link from the previous entry where the
//!    page holds it (or from the genesis hash at seq 0).
//! 2. `checkpoint`: the batch's checkpoint note verifies with a pinned checkpoint key and names
//!    this tenant's log. Its size and root are taken from the verified note only.
//! 3. `inclusion`: the entry's audit path leads from the recomputed leaf to that signed root.
//! 4. `global`: where the batch carries the global-log proof, the global log's entry records
//!    exactly this checkpoint (tenant, size, root, note hash), its audit path leads to the global
//!    log's root, and that note verifies with a pinned global-log key.
//!
//! Nothing in the input can add a trusted key; the keys come from `trusted` alone, which the
//! console fills from its deployment configuration.

use crate::chain::canonical::jcs;
use crate::chain::entry::{content_digest, Entry, SALT_LEN};
use crate::chain::event::parse_timestamp;
use crate::chain::export::TrustedKey;
use crate::chain::hash::{chain_link, sha256, Hash, GENESIS};
use crate::chain::merkle::verify_inclusion;
use crate::chain::strict_json;
use crate::keys::{names_tenant, parse_verifier_keys, verify_note, NoteFailure, VerifiedNote};
use crate::ApiError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// The tenant of the service-wide log of tenant heads (`service::global_log::GLOBAL_LOG`).
pub const GLOBAL_LOG: Uuid = Uuid::nil();
/// The action of a head event in the global log (`service::global_log::HEAD_ACTION`).
pub const HEAD_ACTION: &str = "audit_log.tenant_head.signed";
/// The resource type of a head event (the tenant's log).
pub const HEAD_RESOURCE_TYPE: &str = "tenant_log";

/// What `verify_page` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageInput {
    /// Entries exactly as `GET /v1/events` returns its items; each is read on its own, so a
    /// malformed one fails alone.
    pub entries: Vec<Value>,
    /// The answer of `POST /v1/proofs/inclusion` for these entries' ids.
    pub batch: BatchProof,
    pub trusted: Trusted,
}

/// The pinned keys, as verifier key strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trusted {
    pub checkpoint_keys: Vec<String>,
    #[serde(default)]
    pub global_log_keys: Vec<String>,
}

/// The answer of `POST /v1/proofs/inclusion`, as far as verification reads it.
#[derive(Debug, Deserialize)]
pub struct BatchProof {
    pub tree_size: u64,
    pub checkpoint: CheckpointInput,
    pub proofs: Vec<ProofInput>,
    #[serde(default)]
    pub global_proof: Option<GlobalProofInput>,
}

/// A checkpoint as the API shows it; only the note is trusted, once verified.
#[derive(Debug, Deserialize)]
pub struct CheckpointInput {
    pub tree_size: u64,
    pub root: String,
    pub note: String,
}

/// One entry's inclusion proof.
#[derive(Debug, Deserialize)]
pub struct ProofInput {
    pub id: String,
    pub seq: u64,
    pub leaf_index: u64,
    pub audit_path: Vec<String>,
}

/// `GET /v1/checkpoints/{n}/global-proof`'s answer.
#[derive(Debug, Deserialize)]
pub struct GlobalProofInput {
    pub checkpoint: CheckpointInput,
    pub entry: Value,
    pub leaf_index: u64,
    pub audit_path: Vec<String>,
    pub global_checkpoint: CheckpointInput,
}

/// An entry as `GET /v1/events` returns it.
#[derive(Debug, Deserialize)]
struct EntryInput {
    id: String,
    tenant_id: String,
    seq: u64,
    received_at: String,
    event: Option<Value>,
    erased: bool,
    salt: Option<String>,
    content_digest: String,
    leaf_hash: String,
    chain_hash: String,
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Ok,
    Failed,
    /// Not checked, because a step it depends on failed.
    NotChecked,
    /// The entry is newer than the signed checkpoint: nothing signed covers it yet.
    Pending,
    /// The checkpoint is not anchored in the global log yet (global step only).
    Absent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Steps {
    pub leaf: Step,
    pub inclusion: Step,
    pub checkpoint: Step,
    pub global: Step,
}

/// One entry's verdict. `ok` means every step passed (`global` may be `absent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryResult {
    pub id: String,
    pub seq: Option<u64>,
    pub ok: bool,
    pub steps: Steps,
    /// In plain words, what failed first (leaf, checkpoint, inclusion, global), or why it is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The batch's checkpoint, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    pub ok: bool,
    /// From the verified note (absent when it did not verify).
    pub tree_size: Option<u64>,
    pub root: Option<String>,
    pub origin: Option<String>,
    pub key_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The global-log proof of the batch's checkpoint, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalReport {
    pub status: Step,
    /// The global log's signed size (when its note verified).
    pub tree_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `verify_page` answers: one result per input entry, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageReport {
    pub results: Vec<EntryResult>,
    pub checkpoint: CheckpointReport,
    pub global: GlobalReport,
}

/// Parses and verifies. The input must be strict JSON: the event bytes hashed here are those
/// the caller holds, with no duplicate member resolved one way or another.
pub fn verify_page_bytes(input: &[u8]) -> Result<PageReport, ApiError> {
    strict_json::check(input)?;
    let input: PageInput = serde_json::from_slice(input)?;
    verify_page(&input)
}

/// Verifies a page (see the module's description).
pub fn verify_page(input: &PageInput) -> Result<PageReport, ApiError> {
    let checkpoint_keys =
        parse_verifier_keys(&input.trusted.checkpoint_keys, "trusted.checkpoint_keys").map_err(ApiError::Invalid)?;
    let global_keys =
        parse_verifier_keys(&input.trusted.global_log_keys, "trusted.global_log_keys").map_err(ApiError::Invalid)?;
    if checkpoint_keys.is_empty() {
        return Err(ApiError::Invalid("trusted.checkpoint_keys: no checkpoint key is pinned".into()));
    }

    let leaves: Vec<LeafCheck> = input.entries.iter().map(check_leaf).collect();
    let tenant = page_tenant(&leaves);
    let checkpoint = check_checkpoint(&input.batch, &checkpoint_keys, tenant.as_deref());
    let global = match (&checkpoint, &input.batch.global_proof) {
        (_, None) => GlobalReport { status: Step::Absent, tree_size: None, reason: None },
        (Err(_), Some(_)) => GlobalReport {
            status: Step::NotChecked,
            tree_size: None,
            reason: Some("the checkpoint did not verify, so its place in the global log was not checked".into()),
        },
        (Ok(verified), Some(proof)) => check_global(verified, &input.batch.checkpoint.note, proof, &global_keys),
    };

    // Chain links are checked between consecutive seqs the page holds, in either page order.
    let by_seq: HashMap<u64, &LeafCheck> =
        leaves.iter().filter_map(|l| l.parsed.as_ref().map(|p| (p.entry.seq, l))).collect();
    let proofs: HashMap<&str, &ProofInput> = input.batch.proofs.iter().map(|p| (p.id.as_str(), p)).collect();

    let results = leaves
        .iter()
        .map(|leaf| {
            let mut leaf_step = leaf.failure.clone();
            if let (None, Some(parsed)) = (&leaf_step, &leaf.parsed) {
                leaf_step = check_link(parsed, &by_seq, tenant.as_deref());
            }
            let leaf_ok = leaf_step.is_none();
            let (checkpoint_step, checkpoint_reason) = match &checkpoint {
                Ok(_) => (Step::Ok, None),
                Err(reason) => (Step::Failed, Some(reason.clone())),
            };
            let (inclusion_step, inclusion_reason) = match (&checkpoint, &leaf.parsed) {
                (Ok(verified), Some(parsed)) if leaf_ok => {
                    check_inclusion(parsed, proofs.get(leaf.id.as_str()).copied(), &verified.checkpoint)
                }
                _ => (Step::NotChecked, None),
            };
            let global_step = if checkpoint.is_ok() && leaf_ok { global.status } else { Step::NotChecked };
            let steps = Steps {
                leaf: if leaf_ok { Step::Ok } else { Step::Failed },
                inclusion: inclusion_step,
                checkpoint: checkpoint_step,
                global: global_step,
            };
            let ok = leaf_ok
                && checkpoint_step == Step::Ok
                && inclusion_step == Step::Ok
                && matches!(global_step, Step::Ok | Step::Absent);
            let reason = leaf_step
                .or(checkpoint_reason)
                .or(inclusion_reason)
                .or_else(|| (global_step == Step::Failed).then(|| global.reason.clone()).flatten());
            EntryResult { id: leaf.id.clone(), seq: leaf.seq, ok, steps, reason }
        })
        .collect();

    let checkpoint_report = match &checkpoint {
        Ok(v) => CheckpointReport {
            ok: true,
            tree_size: Some(v.checkpoint.size),
            root: Some(v.checkpoint.root.to_hex()),
            origin: Some(v.checkpoint.origin.clone()),
            key_name: v.key_names.first().cloned(),
            reason: None,
        },
        Err(reason) => CheckpointReport {
            ok: false,
            tree_size: None,
            root: None,
            origin: None,
            key_name: None,
            reason: Some(reason.clone()),
        },
    };
    Ok(PageReport { results, checkpoint: checkpoint_report, global })
}

/// An entry read and recomputed: its canonical entry (with the recomputed digest) and leaf.
#[derive(Debug)]
struct ParsedEntry {
    entry: Entry,
    leaf: Hash,
    chain_hash: Hash,
}

#[derive(Debug)]
struct LeafCheck {
    id: String,
    seq: Option<u64>,
    parsed: Option<ParsedEntry>,
    /// The leaf step's failure, in plain words.
    failure: Option<String>,
}

fn malformed(message: impl std::fmt::Display) -> String {
    format!("the entry is malformed: {message}")
}

/// Step 1 without the chain link: digest and leaf recomputed from the entry's fields.
fn check_leaf(value: &Value) -> LeafCheck {
    let id = value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let seq = value.get("seq").and_then(Value::as_u64);
    let fail = |failure: String| LeafCheck { id: id.clone(), seq, parsed: None, failure: Some(failure) };
    let input: EntryInput = match serde_json::from_value(value.clone()) {
        Ok(input) => input,
        Err(e) => return fail(malformed(e)),
    };
    let parsed = (|| -> Result<(Entry, Hash, Hash, Hash), String> {
        let hash = |name: &str, text: &str| {
            // Hashes are lowercase hex; another spelling is not what the service writes.
            Hash::from_hex(text)
                .ok()
                .filter(|h| h.to_hex() == text)
                .ok_or_else(|| malformed(format!("{name} is not lowercase hex of 32 bytes")))
        };
        let stored_digest = hash("content_digest", &input.content_digest)?;
        let stored_leaf = hash("leaf_hash", &input.leaf_hash)?;
        let chain_hash = hash("chain_hash", &input.chain_hash)?;
        let entry = Entry {
            tenant_id: Uuid::parse_str(&input.tenant_id).map_err(|_| malformed("tenant_id is not a UUID"))?,
            seq: input.seq,
            id: Uuid::parse_str(&input.id).map_err(|_| malformed("id is not a UUID"))?,
            received_at: parse_timestamp(&input.received_at).map_err(|e| malformed(format!("received_at: {e}")))?,
            content_digest: stored_digest,
        };
        Ok((entry, stored_digest, stored_leaf, chain_hash))
    })();
    let (mut entry, stored_digest, stored_leaf, chain_hash) = match parsed {
        Ok(p) => p,
        Err(failure) => return fail(failure),
    };
    match (input.erased, &input.event, &input.salt) {
        // An erased entry's digest is taken as given: without content and salt nothing recomputes it.
        (true, None, None) => {}
        (false, Some(event), Some(salt)) => {
            let salt = match BASE64.decode(salt) {
                Ok(salt) if salt.len() == SALT_LEN => salt,
                _ => return fail(malformed("salt is not base64 of 32 bytes")),
            };
            if !event.is_object() {
                return fail(malformed("event is not an object"));
            }
            let digest = content_digest(&salt, &jcs(event));
            if digest != stored_digest {
                return fail("the leaf hash does not match the entry's content: the stored event was changed".into());
            }
            entry.content_digest = digest;
        }
        (true, _, _) => return fail(malformed("it is marked erased but carries content")),
        (false, _, _) => return fail(malformed("it is not erased but lacks its event or salt")),
    }
    let leaf = entry.leaf_hash();
    let failure = (leaf != stored_leaf).then(|| {
        "the leaf hash does not match the entry's fields (tenant, seq, id, time or digest): the stored entry was changed"
            .to_owned()
    });
    LeafCheck { id, seq, parsed: Some(ParsedEntry { entry, leaf, chain_hash }), failure }
}

/// The tenant of the page: that of its first readable entry.
fn page_tenant(leaves: &[LeafCheck]) -> Option<String> {
    leaves.iter().find_map(|l| l.parsed.as_ref()).map(|p| p.entry.tenant_id.to_string())
}

/// The rest of step 1: the entry is the page's tenant's, and its chain hash follows from the
/// previous entry's (when the page holds it) or from the genesis hash at seq 0.
fn check_link(parsed: &ParsedEntry, by_seq: &HashMap<u64, &LeafCheck>, tenant: Option<&str>) -> Option<String> {
    if tenant.is_some_and(|t| parsed.entry.tenant_id.to_string() != t) {
        return Some("the entry belongs to another tenant than the rest of the page".into());
    }
    let previous = match parsed.entry.seq.checked_sub(1) {
        None => Some(GENESIS),
        Some(prev) => by_seq.get(&prev).and_then(|l| l.parsed.as_ref()).map(|p| p.chain_hash),
    };
    match previous {
        Some(previous) if chain_link(&previous, &parsed.leaf) != parsed.chain_hash => Some(
            "the chain hash does not follow from the previous entry's: an entry was changed, removed or inserted"
                .into(),
        ),
        _ => None,
    }
}

/// Step 2: the batch's checkpoint note verifies with a pinned key and is this tenant's; the
/// stated size and root agree with the note.
fn check_checkpoint(batch: &BatchProof, keys: &[TrustedKey], tenant: Option<&str>) -> Result<VerifiedNote, String> {
    let verified = verify_note(&batch.checkpoint.note, keys).map_err(|f| note_reason("checkpoint", &f))?;
    if let Some(tenant) = tenant {
        if !names_tenant(&verified, tenant) {
            return Err(format!(
                "the checkpoint is for another log ({:?}), not this tenant's",
                verified.checkpoint.origin
            ));
        }
    }
    let stated_root = Hash::from_hex(&batch.checkpoint.root).ok();
    if batch.checkpoint.tree_size != verified.checkpoint.size
        || stated_root != Some(verified.checkpoint.root)
        || batch.tree_size != verified.checkpoint.size
    {
        return Err("the checkpoint's stated size or root differ from its signed note".into());
    }
    Ok(verified)
}

fn note_reason(what: &str, failure: &NoteFailure) -> String {
    match failure {
        NoteFailure::Untrusted => format!("the {what} is not signed by a trusted key"),
        NoteFailure::BadSignature(e) => format!("the {what}'s signature does not verify ({e}): the {what} was changed"),
        NoteFailure::Malformed(e) => format!("the {what} is malformed: {e}"),
    }
}

/// Step 3: the audit path leads from the recomputed leaf to the signed root.
fn check_inclusion(
    parsed: &ParsedEntry,
    proof: Option<&ProofInput>,
    signed: &crate::chain::checkpoint::Checkpoint,
) -> (Step, Option<String>) {
    let seq = parsed.entry.seq;
    if seq >= signed.size {
        return (
            Step::Pending,
            Some(format!(
                "the entry (seq {seq}) is newer than the signed checkpoint (tree size {}); it can be verified after the next checkpoint",
                signed.size
            )),
        );
    }
    let Some(proof) = proof else {
        return (Step::Failed, Some("the service returned no inclusion proof for this entry".into()));
    };
    if proof.seq != seq || proof.leaf_index != seq {
        return (Step::Failed, Some(format!("the inclusion proof is for another position than seq {seq}")));
    }
    let path: Option<Vec<Hash>> = proof.audit_path.iter().map(|h| Hash::from_hex(h).ok()).collect();
    let Some(path) = path else {
        return (Step::Failed, Some("the inclusion proof holds a hash that is not 32 bytes of hex".into()));
    };
    match verify_inclusion(&parsed.leaf, seq, signed.size, &path, &signed.root) {
        Ok(()) => (Step::Ok, None),
        Err(e) => (
            Step::Failed,
            Some(format!(
                "the audit path does not lead from this entry to the checkpoint's signed root ({e}): the entry is not in the signed tree"
            )),
        ),
    }
}

/// Step 4, once for the page: the global log records exactly this checkpoint, under a root that
/// a pinned global-log key signed.
fn check_global(
    tenant_checkpoint: &VerifiedNote,
    tenant_note: &str,
    proof: &GlobalProofInput,
    keys: &[TrustedKey],
) -> GlobalReport {
    let failed =
        |reason: String, tree_size: Option<u64>| GlobalReport { status: Step::Failed, tree_size, reason: Some(reason) };
    if proof.checkpoint.note != tenant_note {
        return failed("the proof in the global log is for another checkpoint than the batch's".into(), None);
    }
    let global = match verify_note(&proof.global_checkpoint.note, keys) {
        Ok(global) => global,
        Err(f) => return failed(note_reason("global log's checkpoint", &f), None),
    };
    let size = Some(global.checkpoint.size);
    if !names_tenant(&global, &GLOBAL_LOG.to_string()) {
        return failed(format!("the global log's checkpoint names another log ({:?})", global.checkpoint.origin), size);
    }
    let leaf = check_leaf(&proof.entry);
    let parsed = match (leaf.failure, leaf.parsed) {
        (None, Some(parsed)) => parsed,
        (failure, _) => {
            let why = failure.unwrap_or_default();
            return failed(format!("the global log's entry for this checkpoint does not verify: {why}"), size);
        }
    };
    if parsed.entry.tenant_id != GLOBAL_LOG {
        return failed("the proof's entry is not an entry of the global log".into(), size);
    }
    let recorded = proof.entry.get("event").is_some_and(|event| {
        let tenant = tenant_checkpoint.checkpoint.origin.rsplit('/').next().unwrap_or_default();
        let metadata = &event["metadata"];
        event["action"] == HEAD_ACTION
            && event["resource"]["type"] == HEAD_RESOURCE_TYPE
            && event["resource"]["id"] == tenant
            && metadata["tree_size"].as_u64() == Some(tenant_checkpoint.checkpoint.size)
            && metadata["root"] == tenant_checkpoint.checkpoint.root.to_hex()
            && metadata["note_sha256"] == sha256(&[tenant_note.as_bytes()]).to_hex()
    });
    if !recorded {
        return failed(
            "the global log's entry does not record this checkpoint (tenant, size, root and note)".into(),
            size,
        );
    }
    if proof.leaf_index != parsed.entry.seq {
        return failed("the proof in the global log is for another position than its entry's".into(), size);
    }
    let path: Option<Vec<Hash>> = proof.audit_path.iter().map(|h| Hash::from_hex(h).ok()).collect();
    let Some(path) = path else {
        return failed("the proof in the global log holds a hash that is not 32 bytes of hex".into(), size);
    };
    match verify_inclusion(&parsed.leaf, parsed.entry.seq, global.checkpoint.size, &path, &global.checkpoint.root) {
        Ok(()) => GlobalReport { status: Step::Ok, tree_size: size, reason: None },
        Err(e) => failed(
            format!(
                "the checkpoint's audit path in the global log does not lead to the global log's signed root ({e})"
            ),
            size,
        ),
    }
}
