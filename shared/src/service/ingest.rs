//! Ingesting events: validate every event of the request, canonicalise and seal each with a fresh
//! random salt, then append them all in one transaction. Validation and hashing of content happen
//! before the transaction, so the tenant's head lock is held only for the append itself.

use crate::chain::canonical::{jcs, jcs_array_digest};
use crate::chain::entry::{SealedEvent, SALT_LEN};
use crate::chain::event::{parse_event_value, ValidationError};
use crate::chain::hash::sha256;
use crate::chain::publisher::verify_publisher_signature;
use crate::store::append::{AppendResult, Idempotency, MAX_BATCH};
use crate::store::{Store, StoreError};
use chrono::Utc;
use rand::RngCore;
use serde_json::Value;
use uuid::Uuid;

/// Why an ingest request failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the client asked to append: one event, or a batch (which reports errors by index).
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    One(&'a Value),
    Batch(&'a [Value]),
}

/// Validates and appends the request's events for `tenant`. A request that fails validation
/// writes nothing; so does a replay of an idempotency key.
pub async fn ingest(
    store: &mut Store,
    tenant: Uuid,
    request: Request<'_>,
    idempotency_key: Option<&str>,
) -> Result<AppendResult, IngestError> {
    append_request(store, tenant, request, idempotency_key, true).await
}

/// An event the service itself records in a tenant's chain (an administrative change), with the
/// acting API key as actor and what the change did as metadata.
#[derive(Debug, Clone)]
pub struct SystemEvent {
    pub action: String,
    pub actor_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub metadata: Option<Value>,
}

/// Appends an event the service itself composes (a head in the service-wide log) under an
/// idempotency key, so recording the same fact twice appends it once.
pub(crate) async fn ingest_service_record(
    store: &mut Store,
    tenant: Uuid,
    event: &Value,
    idempotency_key: &str,
) -> Result<AppendResult, IngestError> {
    append_request(store, tenant, Request::One(event), Some(idempotency_key), false).await
}

/// Checks every signed event against the tenant's active publisher keys, and that each event is
/// signed when the tenant requires it.
async fn check_signatures(
    store: &mut Store,
    tenant: Uuid,
    sealed: &[SealedEvent],
    batch: bool,
) -> Result<(), IngestError> {
    let policy = store.publisher_policy(tenant).await?;
    for (i, s) in sealed.iter().enumerate() {
        let problem = match &s.event.signature {
            None if policy.require_signatures => Some("is required: this tenant accepts only signed events".to_owned()),
            None => None,
            Some(sig) => match policy.active_keys.get(&sig.key_id) {
                None => Some(format!("names key {:?}, which is not an active signing key of this tenant", sig.key_id)),
                Some(key) => verify_publisher_signature(&s.event, key).err().map(|e| e.to_string()),
            },
        };
        if let Some(message) = problem {
            let err = ValidationError::new("signature", message);
            return Err(if batch { err.in_batch(i) } else { err }.into());
        }
    }
    Ok(())
}

/// Parses, validates and seals one event with a fresh random salt.
fn seal_event(value: &Value, received_at: chrono::DateTime<Utc>) -> Result<SealedEvent, ValidationError> {
    let event = parse_event_value(value).and_then(|input| input.validate(received_at))?;
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    SealedEvent::seal(event, salt)
}

/// The record of an administrative change, sealed for `Store::commit_change`: the service's own
/// event (source `audit-log`), with the acting API key as actor. The tenant's publisher policy
/// does not apply to it: it governs the tenant's publishers.
pub fn seal_record(record: &SystemEvent) -> Result<SealedEvent, ValidationError> {
    let mut value = serde_json::json!({
        "action": record.action,
        "actor": { "id": record.actor_id, "type": "api_key" },
        "resource": { "type": record.resource_type, "id": record.resource_id },
        "source": "audit-log",
    });
    if let Some(metadata) = &record.metadata {
        value["metadata"] = metadata.clone();
    }
    seal_event(&value, Utc::now())
}

async fn append_request(
    store: &mut Store,
    tenant: Uuid,
    request: Request<'_>,
    idempotency_key: Option<&str>,
    enforce_policy: bool,
) -> Result<AppendResult, IngestError> {
    let (values, batch) = match request {
        Request::One(v) => (std::slice::from_ref(v), false),
        Request::Batch(vs) => (vs, true),
    };
    if values.is_empty() || values.len() > MAX_BATCH {
        return Err(ValidationError::new(
            "events",
            format!("a batch holds 1 to {MAX_BATCH} events; this one has {}", values.len()),
        )
        .into());
    }
    let received_at = Utc::now();
    let sealed = values
        .iter()
        .enumerate()
        .map(|(i, v)| seal_event(v, received_at).map_err(|e| if batch { e.in_batch(i) } else { e }))
        .collect::<Result<Vec<_>, _>>()?;
    // The request hash covers the request as sent (canonicalised), not the normalised events,
    // whose defaults depend on the time of receipt. It is only needed with a key.
    let idempotency = idempotency_key.map(|key| Idempotency {
        key,
        request_hash: match request {
            Request::One(v) => sha256(&[&jcs(v)]),
            Request::Batch(vs) => jcs_array_digest(vs),
        },
    });
    if enforce_policy {
        check_signatures(store, tenant, &sealed, batch).await?;
    }
    Ok(store.append(tenant, &sealed, idempotency.as_ref()).await?)
}
