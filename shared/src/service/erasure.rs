//! Erasure that stays verifiable: the content (event body and salt) of one event, of every event
//! of a data subject (actor id), or of every event received before a retention cut-off is
//! removed, while the hash skeleton stays, so proofs and verification still pass and the entries
//! show as erased. Each erasure is itself appended to the tenant's chain.
//!
//! The erasure and its record commit in one transaction, on a connection of the maintenance role
//! (which may append, as the service role does, and also erase; the service role cannot erase):
//! a failure at any statement leaves neither, and a retry erases and records it then. The record
//! says how many events it erased. With an `Idempotency-Key`, a retry of a request that had
//! completed answers with the original record and erases nothing.

use crate::chain::event::format_timestamp;
use crate::chain::hash::sha256;
use crate::service::admin::{recorded_event, request_hash, seal, Actor, AdminError};
use crate::service::ingest::SystemEvent;
use crate::store::admin::{AdminChange, ChangeOutcome};
use crate::store::append::{AppendResult, Idempotency};
use crate::store::erasure::ErasureTarget;
use crate::store::{Store, StoreError};
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

/// Erases `target`'s content in `tenant`'s log and appends the erasure event, in one
/// transaction on `maintenance` (a connection of the maintenance role), acting as `actor`.
pub async fn erase(
    maintenance: &mut Store,
    tenant: Uuid,
    target: &ErasureTarget,
    actor: Actor<'_>,
    idempotency_key: Option<&str>,
) -> Result<Erasure, AdminError> {
    let (kind, id) = target_resource(target);
    let hash = request_hash("POST /v1/erasures", &json!({ "target": kind, "id": id }));
    let idempotency = idempotency_key.map(|key| Idempotency { key, request_hash: hash });
    let committed = maintenance
        .commit_change(tenant, AdminChange::Erase(target), idempotency.as_ref(), |outcome| {
            let erased = match outcome {
                ChangeOutcome::Erased(n) => *n,
                _ => 0,
            };
            seal(&[SystemEvent {
                action: ERASED_ACTION.to_owned(),
                actor_id: actor.key_id.to_owned(),
                resource_type: kind.to_owned(),
                resource_id: id.clone(),
                metadata: Some(json!({ "erased": erased })),
            }])
        })
        .await?;
    let erased = match committed.outcome {
        Some(ChangeOutcome::Erased(n)) => n,
        // A replay answers with the count its record holds.
        _ => {
            let seq = committed.recorded.entries.first().map(|a| a.seq).ok_or(StoreError::NotFound)?;
            recorded_event(maintenance, tenant, seq).await?["metadata"]["erased"]
                .as_u64()
                .ok_or_else(|| StoreError::Corrupt("the erasure record has no count".into()))?
        }
    };
    Ok(Erasure { erased, recorded: committed.recorded })
}
