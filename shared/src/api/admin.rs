//! Administration: tenants (platform keys only), API keys, publisher signing keys and tenant
//! settings. Every change is accounted for by an audit event in the tenant's own chain; how a
//! change and its record stay together across failures and retries is `service::admin`'s.
//! Creating routes take an `Idempotency-Key`: a retry under the same key completes the change
//! and records it once. Revocations are idempotent without one.

use super::error::ApiError;
use super::extract::{Authenticated, IdempotencyKey, JsonBody};
use super::state::ApiState;
use crate::auth::Scope;
use crate::chain::event::ValidationError;
use crate::service::admin::{self, Actor, AdminError};
use crate::service::global_log::GLOBAL_LOG;
use crate::store::publishers::{NewPublisherKey, PublisherKey, TenantSettings};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

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

fn actor(caller: &Authenticated) -> Actor<'_> {
    Actor { key_id: &caller.0.key_id }
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
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(body): JsonBody<CreateTenantBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Platform)?;
    check_name("name", &body.name)?;
    let keys = state.api_keys()?;
    let mut store = state.store.get().await?;
    let created =
        admin::create_tenant(&mut store, keys, actor(&caller), &body.name, idempotency_key.as_deref()).await?;
    state.notify_appended(store, created.tenant, &created.recorded).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "tenant_id": created.tenant,
            "name": body.name,
            "api_key": { "secret": created.key.secret, "key": created.key.record },
        })),
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
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    issue_key(&state, &caller, tenant, body, "POST /v1/keys", idempotency_key.as_deref()).await
}

/// `POST /v1/tenants/{id}/keys` (platform keys): a key for an existing tenant, for when a tenant
/// has lost every admin key. Recorded in the tenant's chain like any key creation.
pub async fn create_tenant_key(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(tenant): Path<String>,
    IdempotencyKey(idempotency_key): IdempotencyKey,
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
    issue_key(&state, &caller, tenant, body, "POST /v1/tenants/{id}/keys", idempotency_key.as_deref()).await
}

async fn issue_key(
    state: &ApiState,
    caller: &Authenticated,
    tenant: Uuid,
    body: CreateKeyBody,
    route: &str,
    idempotency_key: Option<&str>,
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
    let request = admin::KeyRequest { name: &body.name, scopes: &body.scopes, expires_at: body.expires_at };
    let mut store = state.store.get().await?;
    let (key, recorded) =
        admin::issue_key(&mut store, keys, actor(caller), tenant, &request, route, idempotency_key).await?;
    state.notify_appended(store, tenant, &recorded).await;
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
    let keys = state.api_keys()?;
    let mut store = state.store.get().await?;
    let (revoked, recorded) = admin::revoke_key(&mut store, keys, actor(&caller), tenant, &key_id).await?;
    state.notify_appended(store, tenant, &recorded).await;
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
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(body): JsonBody<RegisterSigningKeyBody>,
) -> Result<(StatusCode, Json<PublisherKey>), ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    check_name("name", &body.name)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body.public_key.trim())
        .map_err(|_| ValidationError::new("public_key", "must be standard base64 of a 32-byte Ed25519 public key"))?;
    let key = NewPublisherKey::parse(body.key_id.as_deref(), &body.name, &raw)?;
    let mut store = state.store.get().await?;
    let (registered, recorded) =
        admin::register_signing_key(&mut store, actor(&caller), tenant, &key, idempotency_key.as_deref()).await?;
    state.notify_appended(store, tenant, &recorded).await;
    Ok((StatusCode::CREATED, Json(registered)))
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
    let mut store = state.store.get().await?;
    let (key, recorded) =
        admin::revoke_signing_key(&mut store, actor(&caller), tenant, &key_id).await.map_err(|e| match e {
            AdminError::Store(e) => super::events::not_found_as(e, "signing key"),
            e => e.into(),
        })?;
    state.notify_appended(store, tenant, &recorded).await;
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
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(settings): JsonBody<TenantSettings>,
) -> Result<Json<TenantSettings>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let mut store = state.store.get().await?;
    let (updated, recorded) =
        admin::update_settings(&mut store, actor(&caller), tenant, settings, idempotency_key.as_deref()).await?;
    state.notify_appended(store, tenant, &recorded).await;
    Ok(Json(updated))
}
