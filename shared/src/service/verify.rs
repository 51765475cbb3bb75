//! Verifying a tenant's chain from the stored entries: every content digest, leaf hash and chain
//! link, and, for a range that starts at seq 0, the Merkle root rebuilt from the leaves against
//! the root the stored nodes give.

use crate::chain::hash::Hash;
use crate::chain::verify::{ChainVerifier, EntryRecord, Fault, FaultKind};
use crate::store::{Store, StoreError};
use uuid::Uuid;

/// The outcome of a verification run, as `POST /v1/verify` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries checked before the first fault (or in all).
    pub verified: u64,
    /// Entries whose content was erased; their skeleton was still checked.
    pub erased: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The tree size and root the run checked against.
    pub tree_size: u64,
    pub root: Hash,
}

/// Verifies entries `from <= seq < to` (`to` defaults to the current tree size).
pub async fn verify_range(
    store: &mut Store,
    tenant: Uuid,
    from: u64,
    to: Option<u64>,
) -> Result<VerifyReport, StoreError> {
    let head = store.tree_head(tenant).await?;
    let to = to.unwrap_or(head.size);
    if from > to || to > head.size {
        return Err(StoreError::InvalidRange(format!(
            "the range [{from}, {to}) is not within the tree of size {}",
            head.size
        )));
    }
    let prev = store.chain_hash_before(tenant, from).await?;
    let mut verifier = ChainVerifier::new(tenant, from, prev);
    let scanned = store
        .scan_entries(tenant, from, to, |e| {
            verifier.check(EntryRecord {
                entry: &e.entry,
                leaf_hash: &e.leaf_hash,
                chain_hash: &e.chain_hash,
                content: e.content.as_deref().map(str::as_bytes),
                salt: e.salt.as_deref(),
            })
        })
        .await?;
    let verified_before_fault = verifier.count();
    // A range from seq 0 rebuilds the Merkle root, which must match the stored nodes' root.
    let expected_root = if from == 0 { Some(store.root_at(tenant, to).await?) } else { None };
    let result = scanned.and_then(|()| verifier.finish(Some(to), expected_root.as_ref()));
    Ok(match result {
        Ok(v) => VerifyReport {
            ok: true,
            verified: v.count,
            erased: v.erased,
            first_bad_seq: None,
            fault: None,
            reason: None,
            tree_size: head.size,
            root: head.root,
        },
        Err(Fault { seq, kind }) => VerifyReport {
            ok: false,
            verified: verified_before_fault,
            erased: 0,
            first_bad_seq: Some(seq),
            reason: Some(kind.describe()),
            fault: Some(kind),
            tree_size: head.size,
            root: head.root,
        },
    })
}
