//! Administration: tenants (platform keys only), API keys, publisher signing keys and tenant
//! settings. Every change is also appended to the tenant's own chain as an audit event
//! (`audit_log.api_key.created`, ...), so the log records who changed who may write to it.

use super::error::ApiError;
use super::extract::{Authenticated, JsonBody};
use super::state::ApiState;
use crate::auth::Scope;
use crate::chain::event::ValidationError;
use crate::service::global_log::GLOBAL_LOG;
use crate::service::ingest::{ingest_system, SystemEvent};
use crate::store::publishers::{PublisherKey, TenantSettings};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Scopes a tenant's first key gets.
const FIRST_KEY_SCOPES: [Scope; 4] = [Scope::Admin, Scope::EventsWrite, Scope::EventsRead, Scope::Exports];
const MAX_NAME_CHARS: usize = 200;

fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, no control characters"),
        )
        .into());
    }
    Ok(())
}

/// Appends the audit event of an administrative change to the tenant's chain.
async fn record(
    state: &ApiState,
    tenant: Uuid,
    caller: &Authenticated,
    action: &str,
    resource_type: &str,
    resource_id: &str,
) -> Result<(), ApiError> {
    let event = SystemEvent {
        action: action.to_owned(),
        actor_id: caller.0.key_id.clone(),
        resource_type: resource_type.to_owned(),
        resource_id: resource_id.to_owned(),
    };
    let mut store = state.store.get().await?;
    let result = ingest_system(&mut store, tenant, &event).await?;
    state.notify_appended(&mut store, tenant, &result).await;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    pub name: String,
}

/// `POST /v1/tenants` (platform keys): creates a tenant and its first admin key, whose secret is
/// in this response and nowhere else.
pub async fn create_tenant(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateTenantBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Platform)?;
    check_name("name", &body.name)?;
    let keys = state.api_keys()?;
    // The key is created first, naming the tenant id chosen here: if the tenant insert then
    // fails, the key is revoked and names a tenant that never existed, so nothing is usable.
    let tenant = Uuid::now_v7();
    let key = keys.create(Some(tenant), "admin", &FIRST_KEY_SCOPES, None).await?;
    let created = async {
        let mut store = state.store.get().await?;
        store.create_tenant_with_id(tenant, &body.name).await?;
        drop(store);
        record(&state, tenant, &caller, "audit_log.tenant.created", "tenant", &tenant.to_string()).await
    }
    .await;
    if let Err(e) = created {
        if let Err(revoke) = keys.revoke(tenant, &key.record.key_id).await {
            tracing::error!(%tenant, key_id = %key.record.key_id, error = %revoke, "revoking the key of a tenant that was not created failed");
        }
        return Err(e);
    }
    tracing::info!(%tenant, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tenant_id": tenant, "name": body.name, "api_key": { "secret": key.secret, "key": key.record } })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/keys` (admin): a new API key of the caller's tenant; the secret is shown once.
pub async fn create_key(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    issue_key(&state, &caller, tenant, body).await
}

/// `POST /v1/tenants/{id}/keys` (platform keys): a key for an existing tenant, for when a tenant
/// has lost every admin key. Recorded in the tenant's chain like any key creation.
pub async fn create_tenant_key(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Platform)?;
    let tenant = super::extract::path_uuid(&tenant, "tenant")?;
    // The service-wide log is written by the checkpointer alone; no key may act for it.
    if tenant == GLOBAL_LOG {
        return Err(ApiError::not_found("tenant"));
    }
    // The tenant must exist: its settings row is read acting for it.
    state.store.get().await?.tenant_settings(tenant).await.map_err(|e| super::events::not_found_as(e, "tenant"))?;
    issue_key(&state, &caller, tenant, body).await
}

async fn issue_key(
    state: &ApiState,
    caller: &Authenticated,
    tenant: Uuid,
    body: CreateKeyBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_name("name", &body.name)?;
    if body.scopes.is_empty() {
        return Err(ValidationError::new("scopes", "must name at least one scope").into());
    }
    if body.scopes.contains(&Scope::Platform) {
        return Err(ValidationError::new("scopes", "a tenant key cannot have the platform scope").into());
    }
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ValidationError::new("expires_at", "must be in the future").into());
    }
    let keys = state.api_keys()?;
    let key = keys.create(Some(tenant), &body.name, &body.scopes, body.expires_at).await?;
    if let Err(e) = record(state, tenant, caller, "audit_log.api_key.created", "api_key", &key.record.key_id).await {
        // An unrecorded key must not stay usable.
        if let Err(revoke) = keys.revoke(tenant, &key.record.key_id).await {
            tracing::error!(%tenant, key_id = %key.record.key_id, error = %revoke, "revoking an unrecorded key failed");
        }
        return Err(e);
    }
    Ok((StatusCode::CREATED, Json(json!({ "secret": key.secret, "key": key.record }))))
}

/// `GET /v1/keys` (admin): the tenant's keys, without secrets.
pub async fn list_keys(State(state): State<ApiState>, caller: Authenticated) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let keys = state.api_keys()?.list(tenant).await?;
    Ok(Json(json!({ "keys": keys })))
}

/// `DELETE /v1/keys/{id}` (admin): revokes a key. The authorizer may accept it for up to its cache
/// TTL afterwards (see docs).
pub async fn revoke_key(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let revoked = state.api_keys()?.revoke(tenant, &key_id).await?;
    record(&state, tenant, &caller, "audit_log.api_key.revoked", "api_key", &key_id).await?;
    Ok(Json(json!({ "key": revoked })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSigningKeyBody {
    #[serde(default)]
    pub key_id: Option<String>,
    pub name: String,
    /// Standard base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
}

/// `POST /v1/signing-keys` (admin): registers a publisher's Ed25519 public key.
pub async fn register_signing_key(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<RegisterSigningKeyBody>,
) -> Result<(StatusCode, Json<PublisherKey>), ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    check_name("name", &body.name)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body.public_key.trim())
        .map_err(|_| ValidationError::new("public_key", "must be standard base64 of a 32-byte Ed25519 public key"))?;
    let key = {
        let mut store = state.store.get().await?;
        store.register_publisher_key(tenant, body.key_id.as_deref(), &body.name, &raw).await?
    };
    record(&state, tenant, &caller, "audit_log.signing_key.registered", "signing_key", &key.key_id).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `GET /v1/signing-keys` (admin).
pub async fn list_signing_keys(State(state): State<ApiState>, caller: Authenticated) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let mut store = state.store.get().await?;
    let keys = store.list_publisher_keys(tenant).await?;
    Ok(Json(json!({ "keys": keys })))
}

/// `DELETE /v1/signing-keys/{id}` (admin): events signed with the key are refused from now on
/// (within the ingest policy cache TTL); events it signed before stay valid.
pub async fn revoke_signing_key(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(key_id): Path<String>,
) -> Result<Json<PublisherKey>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let key = {
        let mut store = state.store.get().await?;
        store.revoke_publisher_key(tenant, &key_id).await.map_err(|e| super::events::not_found_as(e, "signing key"))?
    };
    record(&state, tenant, &caller, "audit_log.signing_key.revoked", "signing_key", &key_id).await?;
    Ok(Json(key))
}

/// `GET /v1/settings` (admin).
pub async fn get_settings(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<TenantSettings>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let mut store = state.store.get().await?;
    Ok(Json(store.tenant_settings(tenant).await?))
}

/// `PATCH /v1/settings` (admin): e.g. `{"require_signatures": true}`.
pub async fn update_settings(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(settings): JsonBody<TenantSettings>,
) -> Result<Json<TenantSettings>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let updated = {
        let mut store = state.store.get().await?;
        store.update_tenant_settings(tenant, &settings).await?
    };
    record(&state, tenant, &caller, "audit_log.settings.updated", "tenant", &tenant.to_string()).await?;
    Ok(Json(updated))
}
