//! Verifying a tenant's chain from the stored entries: every content digest, leaf hash and chain
//! link, and, for a range that starts at seq 0, the Merkle root rebuilt from the leaves against
//! the root the stored nodes give and against the latest signed checkpoint. Stored hashes can be
//! recomputed by whoever rewrites the database; the checkpoint's signature cannot, so with the
//! checkpoint key a rewrite or a truncated tail is found even when every stored hash agrees.

use crate::aws::anchors::{AnchorError, AnchorStore};
use crate::chain::checkpoint;
use crate::chain::hash::{Hash, GENESIS};
use crate::chain::verify::{ChainVerifier, EntryRecord, Fault, FaultKind};
use crate::metrics::{self, Unit};
use crate::service::global_log::{check_tenant_against_global_log, GLOBAL_LOG};
use crate::store::pool::StorePool;
use crate::store::tree::TreeHead;
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
    /// The size of the signed checkpoint the entries were also checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
}

/// The public keys checkpoints are signed with, to check the stored notes' signatures: the
/// current key and the retired ones, all trusted through configuration. A note is checked with
/// the key its key id names.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointKey<'a> {
    pub name: &'a str,
    /// DER SubjectPublicKeyInfo (what KMS GetPublicKey returns).
    pub spki_der: &'a [u8],
    /// Earlier keys of the same log, DER.
    pub retired: &'a [Vec<u8>],
}

impl<'a> CheckpointKey<'a> {
    /// The current key alone.
    pub fn new(name: &'a str, spki_der: &'a [u8]) -> Self {
        CheckpointKey { name, spki_der, retired: &[] }
    }

    /// The key, current or retired, whose key id is `key_id`.
    pub fn named(&self, key_id: [u8; 4]) -> Option<&'a [u8]> {
        std::iter::once(self.spki_der)
            .chain(self.retired.iter().map(Vec::as_slice))
            .find(|der| checkpoint::key_id_ecdsa(der) == key_id)
    }
}

/// The tenant's size and stored root; the root is all zeros when the stored tree cannot give it
/// (a hash deleted from under it), which verification then reports as a fault.
async fn current_head(store: &mut Store, tenant: Uuid) -> Result<TreeHead, StoreError> {
    let size = store.tree_size(tenant).await?;
    let root = store.root_if_complete(tenant, size).await?.unwrap_or_default();
    Ok(TreeHead { size, root })
}

/// Verifies entries `from <= seq < to` (`to` defaults to the current tree size). From seq 0, the
/// latest checkpoint is checked too: its note against `key` when given (else its stored root is
/// taken as is), and its root against the one rebuilt from the entries.
pub async fn verify_range(
    store: &mut Store,
    tenant: Uuid,
    from: u64,
    to: Option<u64>,
    key: Option<CheckpointKey<'_>>,
) -> Result<VerifyReport, StoreError> {
    // A stored tree with a hash deleted from under it has no root; the scan below says where.
    let head = current_head(store, tenant).await?;
    let to = to.unwrap_or(head.size);
    if from > to || to > head.size {
        return Err(StoreError::InvalidRange(format!(
            "the range [{from}, {to}) is not within the tree of size {}",
            head.size
        )));
    }
    let report = |fault: Option<Fault>, verified: u64, erased: u64, checkpoint_size: Option<u64>| VerifyReport {
        ok: fault.is_none(),
        verified,
        erased,
        first_bad_seq: fault.as_ref().map(|f| f.seq),
        reason: fault.as_ref().map(|f| f.kind.describe()),
        fault: fault.map(|f| f.kind),
        tree_size: head.size,
        root: head.root,
        checkpoint_size,
    };
    let prev = store.chain_hash_before(tenant, from).await?;
    let mut verifier = ChainVerifier::new(tenant, from, prev);
    let mut checkpoint_size = None;
    if from == 0 {
        match latest_signed(store, tenant, key).await? {
            Err(fault) => {
                let size = fault.seq;
                return Ok(report(Some(fault), 0, 0, Some(size)));
            }
            // A checkpoint beyond the requested range says nothing about it.
            Ok(Some((size, root))) if size <= to || to == head.size => {
                verifier = verifier.with_checkpoint(size, root);
                checkpoint_size = Some(size);
            }
            Ok(_) => {}
        }
    }
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
    // A range from seq 0 rebuilds the Merkle root, which must match the stored nodes' root (a
    // stored tree that cannot give one does not match).
    let expected_root = if from == 0 { Some(store.root_if_complete(tenant, to).await?) } else { None };
    let result = scanned.and_then(|()| match expected_root {
        Some(None) => Err(Fault { seq: to, kind: FaultKind::RootMismatch }),
        Some(Some(root)) => verifier.finish(Some(to), Some(&root)),
        None => verifier.finish(Some(to), None),
    });
    Ok(match result {
        // Up to the current head, the tree must also give every head the service-wide log
        // recorded for the tenant: a tail deleted with its checkpoints is still found there.
        Ok(v) if to == head.size => match check_tenant_against_global_log(store, tenant).await? {
            None => report(None, v.count, v.erased, checkpoint_size),
            Some(fault) => report(Some(fault), v.count, v.erased, checkpoint_size),
        },
        Ok(v) => report(None, v.count, v.erased, checkpoint_size),
        Err(fault) => report(Some(fault), verified_before_fault, 0, checkpoint_size),
    })
}

/// Why the anchor check could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnchorCheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Anchor(#[from] AnchorError),
}

/// How long a signed global checkpoint may go without its anchor before that is a fault (the
/// checkpointer writes the anchor right after signing; a run cut short writes it on the next).
pub const ANCHOR_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Checks the global log's checkpoints against their S3 anchors: the latest stored checkpoint
/// must have an anchor with the same note byte for byte, and no anchor may exist for a larger
/// tree than the database has signed (that would mean signed history was removed from the
/// database). The notes' signatures are checked when the global log's chain is verified.
pub async fn verify_anchor(store: &mut Store, anchors: &AnchorStore) -> Result<Option<Fault>, AnchorCheckError> {
    let latest = store.latest_checkpoint(GLOBAL_LOG).await?;
    let stored_size = latest.as_ref().map(|c| c.tree_size);
    if let Some(anchored) = anchors.latest_after(stored_size).await? {
        return Ok(Some(Fault {
            seq: stored_size.unwrap_or(0),
            kind: FaultKind::AnchorMismatch {
                checkpoint_size: anchored,
                reason: "it is anchored in S3 but the database has no such checkpoint".into(),
            },
        }));
    }
    let Some(checkpoint) = latest else { return Ok(None) };
    let mismatch = |reason: &str| {
        Some(Fault {
            seq: checkpoint.tree_size,
            kind: FaultKind::AnchorMismatch { checkpoint_size: checkpoint.tree_size, reason: reason.into() },
        })
    };
    Ok(match anchors.get(checkpoint.tree_size).await? {
        Some(note) if note == checkpoint.note => None,
        Some(_) => mismatch("the anchored note differs from the stored one"),
        None if chrono::Utc::now() - checkpoint.signed_at > ANCHOR_GRACE => mismatch("no anchor was written"),
        None => None,
    })
}

/// The size and root of the tenant's latest checkpoint, taken from its note verified with `key`
/// (as stored when no key is given); a fault if the note does not verify or disagrees with the
/// stored size.
async fn latest_signed(
    store: &mut Store,
    tenant: Uuid,
    key: Option<CheckpointKey<'_>>,
) -> Result<Result<Option<(u64, Hash)>, Fault>, StoreError> {
    let Some(cp) = store.latest_checkpoint(tenant).await? else { return Ok(Ok(None)) };
    let Some(k) = key else { return Ok(Ok(Some((cp.tree_size, cp.root)))) };
    let Some(der) = k.named(cp.key_id) else {
        return Ok(Err(Fault {
            seq: cp.tree_size,
            kind: FaultKind::CheckpointInvalid {
                checkpoint_size: cp.tree_size,
                reason: format!("it names key id {}, which is not a trusted checkpoint key", hex::encode(cp.key_id)),
            },
        }));
    };
    Ok(match checkpoint::verify(&cp.note, k.name, der) {
        Ok(c) if c.size == cp.tree_size => Ok(Some((c.size, c.root))),
        outcome => {
            let reason = outcome.map_or_else(|e| e.to_string(), |_| "its size differs from the stored size".into());
            Err(Fault {
                seq: cp.tree_size,
                kind: FaultKind::CheckpointInvalid { checkpoint_size: cp.tree_size, reason },
            })
        }
    })
}

/// One tenant's incremental verification: checks that the chain still ends, at the last verified
/// size, in the chain hash recorded then; verifies every entry appended since (digests, leaves,
/// links); and records the new position, or the fault. From size 0 it is a full verification,
/// checkpoint included.
pub async fn verify_incrementally(
    store: &mut Store,
    tenant: Uuid,
    key: Option<CheckpointKey<'_>>,
) -> Result<VerifyReport, StoreError> {
    let position = store.verified_position(tenant).await?;
    let (from, recorded) = position.map_or((0, GENESIS), |p| (p.verified_size, p.chain_hash));
    let head = current_head(store, tenant).await?;
    let mut prefix_fault = if head.size < from {
        Some(Fault { seq: head.size, kind: FaultKind::Truncated { expected_size: from } })
    } else if store.chain_hash_before(tenant, from).await? != recorded {
        Some(Fault { seq: from, kind: FaultKind::VerifiedPrefixChanged { verified_size: from } })
    } else {
        None
    };
    // From size 0, verify_range checks the checkpoint against the leaves it re-reads. Past that,
    // the latest checkpoint is checked against the stored Merkle nodes: a signed root the nodes
    // no longer give means the signed part was rewritten (even with every hash recomputed).
    let mut checkpoint_size = None;
    if prefix_fault.is_none() && from > 0 {
        match latest_signed(store, tenant, key).await? {
            Err(fault) => prefix_fault = Some(fault),
            Ok(Some((size, root))) if size <= head.size => {
                checkpoint_size = Some(size);
                if store.root_if_complete(tenant, size).await? != Some(root) {
                    prefix_fault =
                        Some(Fault { seq: size, kind: FaultKind::CheckpointMismatch { checkpoint_size: size } });
                }
            }
            Ok(Some((size, _))) => {
                prefix_fault = Some(Fault { seq: head.size, kind: FaultKind::Truncated { expected_size: size } })
            }
            Ok(None) => {}
        }
    }
    let report = match prefix_fault {
        Some(fault) => VerifyReport {
            ok: false,
            verified: 0,
            erased: 0,
            first_bad_seq: Some(fault.seq),
            reason: Some(fault.kind.describe()),
            fault: Some(fault.kind),
            tree_size: head.size,
            root: head.root,
            checkpoint_size,
        },
        None => {
            let mut report = verify_range(store, tenant, from, Some(head.size), key).await?;
            report.checkpoint_size = report.checkpoint_size.or(checkpoint_size);
            report
        }
    };
    if report.ok {
        let end = store.chain_hash_before(tenant, report.tree_size).await?;
        store.record_verification(tenant, report.tree_size, &end, None).await?;
    } else {
        let fault = format!("seq {}: {}", report.first_bad_seq.unwrap_or(from), report.reason.as_deref().unwrap_or(""));
        store.record_verification(tenant, from, &recorded, Some(&fault)).await?;
    }
    Ok(report)
}

/// Totals of one scheduled verifier run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifierRun {
    pub tenants: u32,
    pub entries: u64,
    pub failed: u32,
}

/// One scheduled run over up to `max_tenants` tenants with unverified entries. A fault is logged
/// at error level with `alert = true` and counted in the `VerificationFailures` metric, which the
/// template alarms on; one tenant's fault or error does not stop the others.
pub async fn run_scheduled_verifier(
    pool: &StorePool,
    key: Option<CheckpointKey<'_>>,
    anchors: Option<&AnchorStore>,
    max_tenants: u32,
) -> Result<VerifierRun, StoreError> {
    let mut store = pool.get().await?;
    let mut run = VerifierRun::default();
    for tenant in store.tenants_to_verify(max_tenants).await? {
        run.tenants += 1;
        match verify_incrementally(&mut store, tenant, key).await {
            Ok(report) if report.ok => run.entries += report.verified,
            Ok(report) => {
                run.failed += 1;
                tracing::error!(
                    alert = true,
                    %tenant,
                    first_bad_seq = report.first_bad_seq,
                    reason = report.reason.as_deref().unwrap_or(""),
                    "chain verification failed"
                );
            }
            Err(e) => {
                run.failed += 1;
                tracing::error!(%tenant, error = %e, "chain verification could not run");
            }
        }
    }
    if let Some(anchors) = anchors {
        match verify_anchor(&mut store, anchors).await {
            Ok(None) => {}
            Ok(Some(fault)) => {
                run.failed += 1;
                tracing::error!(alert = true, first_bad_seq = fault.seq, reason = %fault.kind.describe(), "global log anchor check failed");
            }
            Err(e) => {
                run.failed += 1;
                tracing::error!(error = %e, "global log anchor check could not run");
            }
        }
    }
    metrics::emit(
        &[
            ("EntriesVerified", run.entries as f64, Unit::Count),
            ("VerificationFailures", f64::from(run.failed), Unit::Count),
        ],
        &[("Function", "verifier")],
    );
    Ok(run)
}
