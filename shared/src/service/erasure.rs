//! Erasure that stays verifiable: the content (event body and salt) of one event, of every event
//! of a data subject (actor id), or of every event received before a retention cut-off is
//! removed, while the hash skeleton stays, so proofs and verification still pass and the entries
//! show as erased. Each erasure is itself appended to the tenant's chain.
//!
//! The erasure runs on a connection of the maintenance role, the record on the service role's.
//! It erases first and records second: erasing is idempotent, so a request whose record failed
//! is retried safely (it erases nothing more and records the erasure).

use crate::chain::event::format_timestamp;
use crate::chain::hash::sha256;
use crate::service::ingest::{ingest_service_event, IngestError};
use crate::store::append::AppendResult;
use crate::store::erasure::ErasureTarget;
use crate::store::Store;
use serde_json::json;
use uuid::Uuid;

/// The action of the audit event recording an erasure.
pub const ERASED_ACTION: &str = "audit_log.content.erased";

/// What an erasure did.
#[derive(Debug)]
pub struct Erasure {
    /// Events whose content was erased now.
    pub erased: u64,
    /// The audit event recording the erasure.
    pub recorded: AppendResult,
}

/// How the erasure event names its target. A subject is named by the SHA-256 of its actor id,
/// so the record of an erasure does not keep the identifier it erased.
fn target_resource(target: &ErasureTarget) -> (&'static str, String) {
    match target {
        ErasureTarget::Event(id) => ("event", id.to_string()),
        ErasureTarget::Actor(actor) => ("actor", format!("sha256:{}", sha256(&[actor.as_bytes()]).to_hex())),
        ErasureTarget::ReceivedBefore(t) => ("retention", format_timestamp(t)),
    }
}

/// Erases `target`'s content in `tenant`'s log (on `maintenance`, a connection of the
/// maintenance role) and appends the erasure event (on `store`, the service role's), acting as
/// the API key `key_id`.
pub async fn erase(
    maintenance: &mut Store,
    store: &mut Store,
    tenant: Uuid,
    target: &ErasureTarget,
    key_id: &str,
) -> Result<Erasure, IngestError> {
    let erased = maintenance.erase_content(tenant, target).await?;
    let (kind, id) = target_resource(target);
    let event = json!({
        "action": ERASED_ACTION,
        "actor": { "id": key_id, "type": "api_key" },
        "resource": { "type": kind, "id": id },
        "source": "audit-log",
        "metadata": { "erased": erased },
    });
    let recorded = ingest_service_event(store, tenant, &event).await?;
    Ok(Erasure { erased, recorded })
}
