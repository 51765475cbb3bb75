//! The service-wide log of tenant heads. Every tenant checkpoint the checkpointer signs is also
//! appended as an event to the chain of a reserved tenant, [`GLOBAL_LOG`] (the nil id), whose
//! own signed checkpoint is written to S3 under Object Lock. So:
//! - one anchor per checkpointer run covers every tenant, 10 of them or 100,000;
//! - the service cannot show a tenant a history that differs from the one it recorded for
//!   everyone: a tenant checks that its checkpoint is a leaf of the global log, and anyone can
//!   check the global log against its anchors;
//! - a database administrator who truncates a tenant's tail and deletes its later checkpoints
//!   still leaves the larger head in the global log, where the verifier finds it.
//!
//! A head is an ordinary event (action [`HEAD_ACTION`], resource `tenant_log`/<tenant id>,
//! metadata `tree_size`, `root` and `note_sha256` of the signed note), so the global log is
//! stored, proved and verified with the same code as every tenant's chain.

use crate::chain::hash::{sha256, Hash};
use crate::chain::verify::{Fault, FaultKind};
use crate::service::ingest::{ingest_service_record, IngestError};
use crate::service::query::{ActionMatch, EventFilter, EventQuery, Order};
use crate::store::checkpoints::StoredCheckpoint;
use crate::store::read::StoredEntry;
use crate::store::{Store, StoreError};
use serde_json::{json, Value};
use uuid::Uuid;

/// The reserved tenant whose chain is the service-wide log of tenant heads. No API key can act
/// for it; the checkpointer writes it and the verifier reads it.
pub const GLOBAL_LOG: Uuid = Uuid::nil();

/// The action of a head event.
pub const HEAD_ACTION: &str = "audit_log.tenant_head.signed";
const RESOURCE_TYPE: &str = "tenant_log";

/// The idempotency key of a tenant's head (the V6 migration's catch-up query builds the same).
fn head_key(tenant: Uuid, tree_size: u64) -> String {
    format!("head:{tenant}:{tree_size}")
}

/// A tenant's signed tree head as the global log records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantHead {
    pub tenant: Uuid,
    pub tree_size: u64,
    pub root: Hash,
    /// SHA-256 of the signed note, binding the head to that exact signed checkpoint.
    pub note_sha256: Hash,
}

impl TenantHead {
    pub fn of(tenant: Uuid, checkpoint: &StoredCheckpoint) -> Self {
        TenantHead {
            tenant,
            tree_size: checkpoint.tree_size,
            root: checkpoint.root,
            note_sha256: sha256(&[checkpoint.note.as_bytes()]),
        }
    }

    /// The event recorded in the global log.
    pub fn event(&self) -> Value {
        json!({
            "action": HEAD_ACTION,
            "actor": { "id": "checkpointer", "type": "service" },
            "resource": { "type": RESOURCE_TYPE, "id": self.tenant.to_string() },
            "source": "audit-log",
            "metadata": {
                "tree_size": self.tree_size,
                "root": self.root.to_hex(),
                "note_sha256": self.note_sha256.to_hex(),
            },
        })
    }

    /// The idempotency key the head is recorded under: one entry per tenant and size.
    pub fn idempotency_key(&self) -> String {
        head_key(self.tenant, self.tree_size)
    }

    /// Reads a head back from the canonical content of its entry; `None` if the content is not
    /// a head event.
    pub fn from_content(content: &str) -> Option<TenantHead> {
        let value: Value = serde_json::from_str(content).ok()?;
        if value["action"] != HEAD_ACTION || value["resource"]["type"] != RESOURCE_TYPE {
            return None;
        }
        let metadata = &value["metadata"];
        Some(TenantHead {
            tenant: value["resource"]["id"].as_str()?.parse().ok()?,
            tree_size: metadata["tree_size"].as_u64()?,
            root: Hash::from_hex(metadata["root"].as_str()?).ok()?,
            note_sha256: Hash::from_hex(metadata["note_sha256"].as_str()?).ok()?,
        })
    }
}

/// Records a tenant's signed checkpoint in the global log. Recording the same checkpoint again
/// appends nothing. Returns the head's seq in the global log.
pub async fn record_head(store: &mut Store, tenant: Uuid, checkpoint: &StoredCheckpoint) -> Result<u64, IngestError> {
    let head = TenantHead::of(tenant, checkpoint);
    let appended = ingest_service_record(store, GLOBAL_LOG, &head.event(), &head.idempotency_key()).await?;
    appended
        .entries
        .first()
        .map(|e| e.seq)
        .ok_or_else(|| StoreError::Corrupt("an append returned no entry".into()).into())
}

/// The largest head the global log records for `tenant`, with its entry there.
pub async fn latest_head(store: &mut Store, tenant: Uuid) -> Result<Option<(StoredEntry, TenantHead)>, StoreError> {
    let query = EventQuery {
        filter: EventFilter {
            action: Some(ActionMatch::Exact(HEAD_ACTION.into())),
            resource_type: Some(RESOURCE_TYPE.into()),
            resource_id: Some(tenant.to_string()),
            ..EventFilter::default()
        },
        limit: 1,
        cursor: None,
        order: Order::Desc,
    };
    let Some(entry) = store.list_events(GLOBAL_LOG, &query).await?.into_iter().next() else { return Ok(None) };
    let head = entry.content.as_deref().and_then(TenantHead::from_content).filter(|h| h.tenant == tenant).ok_or_else(
        || StoreError::Corrupt(format!("global log entry {} is not a head of this tenant", entry.entry.seq)),
    )?;
    Ok(Some((entry, head)))
}

/// The head the global log records for the tenant's checkpoint at `tree_size`, with its entry.
pub async fn logged_head(
    store: &mut Store,
    tenant: Uuid,
    tree_size: u64,
) -> Result<Option<(StoredEntry, TenantHead)>, StoreError> {
    let key = head_key(tenant, tree_size);
    let Some(seq) = store.idempotent_seq(GLOBAL_LOG, &key).await? else { return Ok(None) };
    let entry = store.entry_at(GLOBAL_LOG, seq).await?;
    let head = entry
        .content
        .as_deref()
        .and_then(TenantHead::from_content)
        .filter(|h| h.tenant == tenant && h.tree_size == tree_size)
        .ok_or_else(|| StoreError::Corrupt(format!("global log entry {seq} is not the head {key}")))?;
    Ok(Some((entry, head)))
}

/// Checks a tenant's tree against the largest head the global log records for it: the tree must
/// still be at least that large and give that root at that size. Deleting a tenant's tail
/// together with its later checkpoints is caught here, since the global log keeps the head.
pub async fn check_tenant_against_global_log(store: &mut Store, tenant: Uuid) -> Result<Option<Fault>, StoreError> {
    if tenant == GLOBAL_LOG {
        return Ok(None);
    }
    let Some((_, head)) = latest_head(store, tenant).await? else { return Ok(None) };
    let current = store.tree_head(tenant).await?;
    if current.size < head.tree_size {
        return Ok(Some(Fault { seq: current.size, kind: FaultKind::Truncated { expected_size: head.tree_size } }));
    }
    if store.root_at(tenant, head.tree_size).await? != head.root {
        return Ok(Some(Fault {
            seq: head.tree_size,
            kind: FaultKind::GlobalLogMismatch { tree_size: head.tree_size },
        }));
    }
    Ok(None)
}
