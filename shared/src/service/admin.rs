//! Administrative changes, each accounted for by an audit event in the tenant's own chain
//! (`audit_log.api_key.created`, ...), so the log records who changed who may write to it.
//!
//! A change never exists without its record, nor a record without its change, across failures
//! at any point and retries:
//!
//! - Changes in PostgreSQL (a tenant, signing keys, settings; erasures in `service::erasure`)
//!   commit in the same transaction as their record (`Store::commit_change`).
//! - API keys live in DynamoDB, which cannot share that transaction. A key is recorded first
//!   and stored second: until it is stored it cannot authenticate, so a failure in between
//!   leaves a record of a key that was never usable, and the retry under the same
//!   `Idempotency-Key` completes it: the record is replayed (recorded once) and the key is
//!   stored under the recorded key id. A retry of a creation that had completed but whose
//!   answer was lost gets the same key with a fresh secret, which replaces the one the client
//!   never received (within [`SECRET_REISSUE_WINDOW`]). A revocation takes effect first and is
//!   recorded second, under an idempotency key derived from the key id, so any retry of it
//!   records it exactly once.
//! - Revocations of signing keys are recorded under such a derived key too: revoking twice
//!   records once.
//!
//! Every function here returns the committed records, which the caller hands to the index
//! queue (`ApiState::notify_appended`).

use crate::auth::Scope;
use crate::aws::api_keys::{ApiKeyError, ApiKeyRecord, ApiKeyStore, NewApiKey};
use crate::chain::canonical::jcs;
use crate::chain::entry::SealedEvent;
use crate::chain::event::ValidationError;
use crate::chain::hash::{sha256, Hash};
use crate::service::ingest::{seal_record, SystemEvent};
use crate::store::admin::{AdminChange, ChangeOutcome, CommittedChange};
use crate::store::append::{AppendResult, Idempotency};
use crate::store::publishers::{NewPublisherKey, PublisherKey, TenantSettings};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// How long a retried key creation may still issue the key's secret again.
pub const SECRET_REISSUE_WINDOW: Duration = Duration::hours(24);

/// Why an administrative change failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] ApiKeyError),
    /// The retry of a key creation that completed longer ago than [`SECRET_REISSUE_WINDOW`], or
    /// whose key was revoked since: its secret is not issued again.
    #[error("this Idempotency-Key created key {0}, whose secret cannot be issued again; revoke it and create another")]
    SecretNotReissued(String),
}

/// Who acts: the API key the authorizer vouched for.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub key_id: &'a str,
}

/// The hash an idempotency key is bound to: the route and the body as sent, canonicalised.
pub fn request_hash(route: &str, body: &Value) -> Hash {
    sha256(&[&jcs(&json!({ "route": route, "body": body }))])
}

fn idempotency<'a>(key: Option<&'a str>, hash: Hash) -> Option<Idempotency<'a>> {
    key.map(|key| Idempotency { key, request_hash: hash })
}

/// The idempotency key under which a revocation is recorded: derived from what is revoked, so
/// revoking twice (a retry, or a second request) records it once. It contains a space, which a
/// client's `Idempotency-Key` cannot, so the two never meet.
fn revocation_key(kind: &str, id: &str) -> String {
    format!("revoked {kind} {id}")
}

fn record(actor: Actor<'_>, action: &str, resource: (&str, &str), metadata: Option<Value>) -> SystemEvent {
    SystemEvent {
        action: action.to_owned(),
        actor_id: actor.key_id.to_owned(),
        resource_type: resource.0.to_owned(),
        resource_id: resource.1.to_owned(),
        metadata,
    }
}

/// Seals the records of a change for `Store::commit_change`.
pub(crate) fn seal(records: &[SystemEvent]) -> Result<Vec<SealedEvent>, StoreError> {
    records
        .iter()
        .map(|r| seal_record(r).map_err(|e| StoreError::Invalid { field: e.field.clone(), message: e.message.clone() }))
        .collect()
}

fn key_metadata(name: &str, scopes: &[Scope], expires_at: Option<DateTime<Utc>>) -> Value {
    let mut scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let mut metadata = json!({ "name": name, "scopes": scopes });
    if let Some(t) = expires_at {
        metadata["expires_at"] = json!(crate::chain::event::format_timestamp(&t));
    }
    metadata
}

/// A recorded entry's event content, read back (a replay answers from what was recorded).
pub(crate) async fn recorded_event(store: &mut Store, tenant: Uuid, seq: u64) -> Result<Value, StoreError> {
    let entry = store.entry_at(tenant, seq).await?;
    let content =
        entry.content.ok_or_else(|| StoreError::Corrupt(format!("the record at seq {seq} has no content")))?;
    serde_json::from_str(&content).map_err(|e| StoreError::Corrupt(format!("the record at seq {seq}: {e}")))
}

/// The first key of a new tenant gets these scopes.
pub const FIRST_KEY_SCOPES: [Scope; 4] = [Scope::Admin, Scope::EventsWrite, Scope::EventsRead, Scope::Exports];

/// A tenant just created, with its first admin key.
#[derive(Debug)]
pub struct CreatedTenant {
    pub tenant: Uuid,
    pub key: NewApiKey,
    pub recorded: AppendResult,
}

/// The tenant id a creation under `idempotency_key` by `actor` gets: derived from both, so a
/// retry names the same tenant (and finds its records); a fresh id without a key.
fn tenant_id_for(actor: Actor<'_>, idempotency_key: Option<&str>) -> Uuid {
    match idempotency_key {
        Some(key) => {
            let digest = sha256(&[b"audit-log tenant\0", actor.key_id.as_bytes(), b"\0", key.as_bytes()]);
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest.0[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        }
        None => Uuid::now_v7(),
    }
}

/// Creates a tenant and its first admin key (platform keys). The tenant and both records
/// (`tenant.created`, `api_key.created`) commit together; the key is stored after them.
pub async fn create_tenant(
    store: &mut Store,
    keys: &ApiKeyStore,
    actor: Actor<'_>,
    name: &str,
    idempotency_key: Option<&str>,
) -> Result<CreatedTenant, AdminError> {
    let tenant = tenant_id_for(actor, idempotency_key);
    let hash = request_hash("POST /v1/tenants", &json!({ "name": name }));
    let new = keys.new_key(Some(tenant), None, "admin", &FIRST_KEY_SCOPES, None).await?;
    let tenant_text = tenant.to_string();
    let records = [
        record(actor, "audit_log.tenant.created", ("tenant", &tenant_text), Some(json!({ "name": name }))),
        record(
            actor,
            "audit_log.api_key.created",
            ("api_key", &new.key.record.key_id),
            Some(key_metadata("admin", &FIRST_KEY_SCOPES, None)),
        ),
    ];
    let committed = store
        .commit_change(tenant, AdminChange::CreateTenant { name }, idempotency(idempotency_key, hash).as_ref(), |_| {
            seal(&records)
        })
        .await?;
    let key = store_recorded_key(store, keys, tenant, &committed, 1, new).await?;
    tracing::info!(%tenant, replayed = committed.outcome.is_none(), "tenant created");
    Ok(CreatedTenant { tenant, key, recorded: committed.recorded })
}

/// Stores the key whose creation record is entry `index` of `committed`. On a replay the key id
/// is the recorded one, and an existing key gets the fresh secret instead.
async fn store_recorded_key(
    store: &mut Store,
    keys: &ApiKeyStore,
    tenant: Uuid,
    committed: &CommittedChange,
    index: usize,
    new: crate::aws::api_keys::UnstoredKey,
) -> Result<NewApiKey, AdminError> {
    if committed.outcome.is_some() {
        keys.store(&new).await?;
        return Ok(new.key);
    }
    let appended = committed
        .recorded
        .entries
        .get(index)
        .ok_or_else(|| StoreError::Corrupt("the replayed creation has no key record".into()))?;
    let event = recorded_event(store, tenant, appended.seq).await?;
    let key_id = event["resource"]["id"]
        .as_str()
        .ok_or_else(|| StoreError::Corrupt("the key record names no key".into()))?
        .to_owned();
    let record = &new.key.record;
    let again = keys.new_key(Some(tenant), Some(&key_id), &record.name, &record.scopes, record.expires_at).await?;
    match keys.store(&again).await {
        Ok(()) => Ok(again.key),
        Err(ApiKeyError::Exists) => {
            let created_after = appended.received_at - Duration::minutes(15);
            if Utc::now() - appended.received_at > SECRET_REISSUE_WINDOW {
                return Err(AdminError::SecretNotReissued(key_id));
            }
            match keys.replace_secret(&again, created_after).await {
                Ok(()) => Ok(again.key),
                Err(ApiKeyError::NotFound) => Err(AdminError::SecretNotReissued(key_id)),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// What a key creation asks for.
#[derive(Debug, Clone)]
pub struct KeyRequest<'a> {
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates an API key of `tenant`: recorded, then stored (see the module's notes).
pub async fn issue_key(
    store: &mut Store,
    keys: &ApiKeyStore,
    actor: Actor<'_>,
    tenant: Uuid,
    request: &KeyRequest<'_>,
    route: &str,
    idempotency_key: Option<&str>,
) -> Result<(NewApiKey, AppendResult), AdminError> {
    let mut scopes: Vec<&str> = request.scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    let body = json!({
        "name": request.name,
        "scopes": scopes,
        "expires_at": request.expires_at.map(|t| crate::chain::event::format_timestamp(&t)),
    });
    let hash = request_hash(route, &body);
    let new = keys.new_key(Some(tenant), None, request.name, request.scopes, request.expires_at).await?;
    let records = [record(
        actor,
        "audit_log.api_key.created",
        ("api_key", &new.key.record.key_id),
        Some(key_metadata(request.name, request.scopes, request.expires_at)),
    )];
    let committed = store
        .commit_change(tenant, AdminChange::RecordOnly, idempotency(idempotency_key, hash).as_ref(), |_| seal(&records))
        .await?;
    let key = store_recorded_key(store, keys, tenant, &committed, 0, new).await?;
    Ok((key, committed.recorded))
}

/// Revokes an API key of `tenant`, then records the revocation once, however often it is
/// retried.
pub async fn revoke_key(
    store: &mut Store,
    keys: &ApiKeyStore,
    actor: Actor<'_>,
    tenant: Uuid,
    key_id: &str,
) -> Result<(ApiKeyRecord, AppendResult), AdminError> {
    let revoked = keys.revoke(tenant, key_id).await?;
    let idem_key = revocation_key("api_key", key_id);
    let hash = request_hash("DELETE /v1/keys/{id}", &json!({ "key_id": key_id }));
    let records = [record(actor, "audit_log.api_key.revoked", ("api_key", key_id), None)];
    let committed = store
        .commit_change(tenant, AdminChange::RecordOnly, idempotency(Some(&idem_key), hash).as_ref(), |_| seal(&records))
        .await?;
    Ok((revoked, committed.recorded))
}

/// Revokes viewer token `token_id` of `tenant` (the id `POST /v1/viewer-tokens` answered with):
/// like a key, it takes effect first and is recorded second, once, as
/// `audit_log.viewer_token.revoked`. Nothing lists the tokens issued, so any well-formed id is
/// accepted; the authorizer refuses a revoked token once its cached decision lapses.
pub async fn revoke_viewer_token(
    store: &mut Store,
    keys: &ApiKeyStore,
    actor: Actor<'_>,
    tenant: Uuid,
    token_id: &str,
) -> Result<(DateTime<Utc>, AppendResult), AdminError> {
    if token_id.len() != 32 || !token_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ValidationError::new("token_id", "must be a viewer token id (32 lowercase hex digits)").into());
    }
    let revoked_at = keys.revoke_viewer_token(tenant, token_id).await?;
    let idem_key = revocation_key("viewer_token", token_id);
    let hash = request_hash("DELETE /v1/viewer-tokens/{id}", &json!({ "token_id": token_id }));
    let records = [record(actor, "audit_log.viewer_token.revoked", ("viewer_token", token_id), None)];
    let committed = store
        .commit_change(tenant, AdminChange::RecordOnly, idempotency(Some(&idem_key), hash).as_ref(), |_| seal(&records))
        .await?;
    Ok((revoked_at, committed.recorded))
}

/// Registers a publisher signing key, recorded in the same transaction.
pub async fn register_signing_key(
    store: &mut Store,
    actor: Actor<'_>,
    tenant: Uuid,
    key: &NewPublisherKey,
    idempotency_key: Option<&str>,
) -> Result<(PublisherKey, AppendResult), AdminError> {
    use base64::Engine;
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key);
    let hash =
        request_hash("POST /v1/signing-keys", &json!({ "key_id": key.key_id, "name": key.name, "public_key": public }));
    let records = [record(
        actor,
        "audit_log.signing_key.registered",
        ("signing_key", &key.key_id),
        Some(json!({ "name": key.name, "public_key": public })),
    )];
    let change =
        AdminChange::RegisterPublisherKey { key_id: &key.key_id, name: &key.name, public_key: &key.public_key };
    let committed =
        store.commit_change(tenant, change, idempotency(idempotency_key, hash).as_ref(), |_| seal(&records)).await?;
    let registered = match committed.outcome {
        Some(ChangeOutcome::PublisherKey(k)) => k,
        _ => store.publisher_key(tenant, &key.key_id).await?,
    };
    Ok((registered, committed.recorded))
}

/// Revokes a publisher signing key, recorded in the same transaction, once.
pub async fn revoke_signing_key(
    store: &mut Store,
    actor: Actor<'_>,
    tenant: Uuid,
    key_id: &str,
) -> Result<(PublisherKey, AppendResult), AdminError> {
    let idem_key = revocation_key("signing_key", key_id);
    let hash = request_hash("DELETE /v1/signing-keys/{id}", &json!({ "key_id": key_id }));
    let records = [record(actor, "audit_log.signing_key.revoked", ("signing_key", key_id), None)];
    let committed = store
        .commit_change(
            tenant,
            AdminChange::RevokePublisherKey { key_id },
            idempotency(Some(&idem_key), hash).as_ref(),
            |_| seal(&records),
        )
        .await?;
    let key = match committed.outcome {
        Some(ChangeOutcome::PublisherKey(k)) => k,
        _ => store.publisher_key(tenant, key_id).await?,
    };
    Ok((key, committed.recorded))
}

/// Changes the tenant's settings, recorded (with the new values) in the same transaction.
pub async fn update_settings(
    store: &mut Store,
    actor: Actor<'_>,
    tenant: Uuid,
    settings: TenantSettings,
    idempotency_key: Option<&str>,
) -> Result<(TenantSettings, AppendResult), AdminError> {
    let values = json!({ "require_signatures": settings.require_signatures });
    let hash = request_hash("PATCH /v1/settings", &values);
    let tenant_text = tenant.to_string();
    let records = [record(actor, "audit_log.settings.updated", ("tenant", &tenant_text), Some(values))];
    let committed = store
        .commit_change(
            tenant,
            AdminChange::UpdateSettings(settings),
            idempotency(idempotency_key, hash).as_ref(),
            |_| seal(&records),
        )
        .await?;
    let updated = match committed.outcome {
        Some(ChangeOutcome::Settings(s)) => s,
        // A replay answers with what the request set, as the record says.
        _ => {
            let seq = committed.recorded.entries.first().map(|a| a.seq).ok_or(StoreError::NotFound)?;
            let event = recorded_event(store, tenant, seq).await?;
            TenantSettings {
                require_signatures: event["metadata"]["require_signatures"]
                    .as_bool()
                    .ok_or_else(|| StoreError::Corrupt("the settings record has no values".into()))?,
            }
        }
    };
    Ok((updated, committed.recorded))
}
