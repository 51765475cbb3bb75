//! Signing checkpoints: for each tenant whose tree grew, sign "origin, size, root" with the
//! checkpoint key and store the note. The signer never signs a tree that is not an extension of
//! the last signed one: before signing it re-derives the root at the last signed size from the
//! stored nodes, which must equal the signed root, and checks an RFC 9162 consistency proof from
//! the last signed root to the new one. A failure is an alert, not a retry: someone changed
//! history, or the store is corrupt.

use crate::aws::anchors::AnchorStore;
use crate::chain::checkpoint::{self, Checkpoint, CheckpointError};
use crate::chain::hash::Hash;
use crate::chain::merkle;
use crate::metrics::{self, Unit};
use crate::service::global_log::{record_head, GLOBAL_LOG};
use crate::service::verify::AnchorCheckError;
use crate::signer::{sign_checkpoint, CheckpointSigner, SignerError};
use crate::store::checkpoints::StoredCheckpoint;
use crate::store::pool::StorePool;
use crate::store::{Store, StoreError};
use uuid::Uuid;

/// Why a tenant's checkpoint was not signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointingError {
    /// The current tree does not extend the last signed one. Never signed over.
    #[error("tree of size {size} is not an extension of the checkpoint at size {signed_size}: {reason}")]
    NotAnExtension { signed_size: u64, size: u64, reason: String },
    /// The stored last checkpoint does not verify with the signing key that made it, or its
    /// stored size and root differ from its signed note.
    #[error("the stored checkpoint at size {size} is not valid: {reason}")]
    StoredCheckpointInvalid { size: u64, reason: String },
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// A new checkpoint was signed and stored (or another run stored the same size first).
    Signed { tree_size: u64, root: Hash },
    /// The tree has not grown since the latest checkpoint.
    Unchanged { tree_size: u64 },
}

/// The checkpoint origin of a tenant's log: `<origin prefix>/<tenant id>`.
pub fn tenant_origin(origin_prefix: &str, tenant: Uuid) -> String {
    format!("{}/{tenant}", origin_prefix.trim_end_matches('/'))
}

/// The signed size and root of the last stored checkpoint, from its note verified with the key it
/// names: the signer's own key or one of its retired keys (trusted through configuration, never
/// through the database). A note by any other key is refused: after a rotation the old key must
/// be configured as retired before the signer builds on its notes.
fn signed_head(last: &StoredCheckpoint, signer: &impl CheckpointSigner) -> Result<(u64, Hash), CheckpointingError> {
    let invalid = |reason: String| CheckpointingError::StoredCheckpointInvalid { size: last.tree_size, reason };
    if last.key_name != signer.key_name() {
        return Err(invalid(format!("it names key {:?}, not this log's key name", last.key_name)));
    }
    let current = signer.public_key_der();
    let der = std::iter::once(current)
        .chain(signer.retired_public_keys().iter().map(Vec::as_slice))
        .find(|der| checkpoint::key_id_ecdsa(der) == last.key_id)
        .ok_or_else(|| {
            invalid(format!(
                "it was signed by key id {}, which is neither the current checkpoint key nor a configured retired one",
                hex::encode(last.key_id)
            ))
        })?;
    let verified =
        checkpoint::verify(&last.note, &last.key_name, der).map_err(|e: CheckpointError| invalid(e.to_string()))?;
    if verified.size != last.tree_size || verified.root != last.root {
        return Err(invalid("its stored size or root differs from its signed note".into()));
    }
    Ok((verified.size, verified.root))
}

/// Signs a checkpoint of `tenant`'s current tree if it grew since the latest one.
pub async fn checkpoint_tenant<S: CheckpointSigner>(
    store: &mut Store,
    signer: &S,
    origin_prefix: &str,
    tenant: Uuid,
) -> Result<CheckpointOutcome, CheckpointingError> {
    let head = store.tree_head(tenant).await?;
    // An empty tree has nothing to commit to.
    if head.size == 0 {
        return Ok(CheckpointOutcome::Unchanged { tree_size: 0 });
    }
    if let Some(last) = store.latest_checkpoint(tenant).await? {
        let (signed_size, signed_root) = signed_head(&last, signer)?;
        let not_extension =
            |reason: String| CheckpointingError::NotAnExtension { signed_size, size: head.size, reason };
        if head.size < signed_size {
            return Err(not_extension("the tree is smaller than the signed one".into()));
        }
        let root_then = store.root_at(tenant, signed_size).await?;
        if root_then != signed_root {
            return Err(not_extension("the stored tree no longer has the signed root at that size".into()));
        }
        if head.size == signed_size {
            return Ok(CheckpointOutcome::Unchanged { tree_size: head.size });
        }
        let proof = store.consistency_proof(tenant, signed_size, head.size).await?;
        merkle::verify_consistency(signed_size, head.size, &signed_root, &head.root, &proof)
            .map_err(|e| not_extension(e.to_string()))?;
    }
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let checkpoint = Checkpoint::new(tenant_origin(origin_prefix, tenant), head.size, head.root).with_timestamp(now);
    let signed = sign_checkpoint(signer, checkpoint).await?;
    store.insert_checkpoint(tenant, &signed).await?;
    Ok(CheckpointOutcome::Signed { tree_size: head.size, root: head.root })
}

/// Totals of one checkpointer run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointRun {
    pub signed: u32,
    pub unchanged: u32,
    /// Tenants that could not be checkpointed, with the reason.
    pub failed: Vec<(Uuid, String)>,
    /// Tenant heads recorded in the service-wide log (new ones and ones a cut-short run missed).
    pub heads_logged: u32,
    /// The size of the global log's latest checkpoint after the run.
    pub global_size: Option<u64>,
}

/// How far back a run looks for signed heads a cut-short run did not record in the global log.
const HEAD_CATCH_UP: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Signs checkpoints for up to `max_tenants` tenants whose trees grew, records each signed head
/// in the service-wide log, then signs the global log's own checkpoint over them. One tenant's
/// failure does not stop the others; refusals to sign are logged at error level with
/// `alert = true`.
pub async fn run_checkpointer<S: CheckpointSigner>(
    store: &mut Store,
    signer: &S,
    origin_prefix: &str,
    max_tenants: u32,
) -> Result<CheckpointRun, StoreError> {
    let mut run = CheckpointRun::default();
    for tenant in store.tenants_to_checkpoint(max_tenants).await? {
        if tenant == GLOBAL_LOG {
            continue;
        }
        match checkpoint_tenant(store, signer, origin_prefix, tenant).await {
            Ok(CheckpointOutcome::Signed { tree_size, .. }) => {
                tracing::info!(%tenant, tree_size, "checkpoint signed");
                run.signed += 1;
                log_head(store, &mut run, tenant, tree_size).await;
            }
            Ok(CheckpointOutcome::Unchanged { .. }) => run.unchanged += 1,
            Err(e) => {
                let alert = matches!(
                    e,
                    CheckpointingError::NotAnExtension { .. } | CheckpointingError::StoredCheckpointInvalid { .. }
                );
                tracing::error!(%tenant, alert, error = %e, "checkpoint not signed");
                run.failed.push((tenant, e.to_string()));
            }
        }
    }
    let since = chrono::Utc::now() - HEAD_CATCH_UP;
    for (tenant, tree_size) in store.heads_not_logged(since, max_tenants).await? {
        log_head(store, &mut run, tenant, tree_size).await;
    }
    match checkpoint_tenant(store, signer, origin_prefix, GLOBAL_LOG).await {
        Ok(CheckpointOutcome::Signed { tree_size, .. } | CheckpointOutcome::Unchanged { tree_size }) => {
            run.global_size = (tree_size > 0).then_some(tree_size);
        }
        Err(e) => {
            tracing::error!(alert = true, error = %e, "global log checkpoint not signed");
            run.failed.push((GLOBAL_LOG, e.to_string()));
        }
    }
    Ok(run)
}

/// Records the tenant's checkpoint at `tree_size` in the service-wide log; a failure is counted
/// and left to the next run's catch-up.
async fn log_head(store: &mut Store, run: &mut CheckpointRun, tenant: Uuid, tree_size: u64) {
    let recorded = match store.checkpoint_at(tenant, tree_size).await {
        Ok(checkpoint) => record_head(store, tenant, &checkpoint).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match recorded {
        Ok(_) => run.heads_logged += 1,
        Err(e) => {
            tracing::error!(%tenant, tree_size, error = %e, "head not recorded in the global log");
            run.failed.push((tenant, e));
        }
    }
}

/// Writes the global log's latest checkpoint to the anchor bucket unless it is there already.
/// Returns the anchored size.
pub async fn anchor_latest(store: &mut Store, anchors: &AnchorStore) -> Result<Option<u64>, AnchorCheckError> {
    let Some(latest) = store.latest_checkpoint(GLOBAL_LOG).await? else { return Ok(None) };
    if anchors.get(latest.tree_size).await?.is_none() {
        anchors.put(latest.tree_size, &latest.note).await?;
        tracing::info!(tree_size = latest.tree_size, bucket = anchors.bucket(), "global checkpoint anchored");
    }
    Ok(Some(latest.tree_size))
}

/// What one scheduled run did, as the checkpointer function returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScheduledRun {
    pub signed: u32,
    pub unchanged: u32,
    pub failed: u32,
    pub heads_logged: u32,
    /// The global log checkpoint whose anchor is in S3 after the run.
    pub anchored_size: Option<u64>,
}

/// One scheduled run: checkpoints up to `max_tenants` grown trees, records their heads in the
/// global log, signs and anchors the global log's checkpoint, and emits the counts as metrics
/// (`CheckpointsSigned`, `CheckpointFailures`; the template alarms on the latter).
pub async fn run_scheduled<S: CheckpointSigner>(
    pool: &StorePool,
    signer: &S,
    origin_prefix: &str,
    anchors: &AnchorStore,
    max_tenants: u32,
) -> Result<ScheduledRun, StoreError> {
    let mut store = pool.get().await?;
    let run = run_checkpointer(&mut store, signer, origin_prefix, max_tenants).await?;
    let mut failed = run.failed.len() as u32;
    let anchored_size = match anchor_latest(&mut store, anchors).await {
        Ok(size) => size,
        Err(e) => {
            tracing::error!(error = %e, "global checkpoint not anchored");
            failed += 1;
            None
        }
    };
    let summary = ScheduledRun {
        signed: run.signed,
        unchanged: run.unchanged,
        failed,
        heads_logged: run.heads_logged,
        anchored_size,
    };
    metrics::emit(
        &[
            ("CheckpointsSigned", f64::from(summary.signed), Unit::Count),
            ("CheckpointFailures", f64::from(summary.failed), Unit::Count),
        ],
        &[("Function", "checkpointer")],
    );
    Ok(summary)
}
