//! The console's credential routes: issuing and revoking viewer tokens (`POST /v1/viewer-tokens`,
//! `DELETE /v1/viewer-tokens/{id}`, admin),
//! `GET /v1/whoami` (any credential), which tells the console who is signed in, with which
//! scopes and pin, so it offers only the controls that will work, the tenant's console settings
//! (`GET`/`PUT /v1/console/settings`, admin) and the public `GET /v1/console/sign-in`, which
//! tells a browser where the tenant's people sign in.

use super::error::ApiError;
use super::extract::{Authenticated, JsonBody, QueryPairs};
use super::state::ApiState;
use crate::auth::{CredentialKind, Scope};
use crate::aws::console_settings::ConsoleSettingsError;
use crate::aws::viewer_tokens::ViewerTokenError;
use crate::chain::event::ValidationError;
use crate::service::admin::{self, Actor};
use crate::service::console_settings::{self, ConsoleError, ConsoleSettings};
use crate::service::viewer_tokens::{self, IssueError, ViewerTokenRequest};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::SecondsFormat;
use serde_json::{json, Value};

impl From<IssueError> for ApiError {
    fn from(err: IssueError) -> Self {
        match err {
            IssueError::Invalid(e) => e.into(),
            IssueError::Mac(e @ ViewerTokenError::Aws { .. }) => {
                ApiError::unavailable("issuing a viewer token failed", &e)
            }
            IssueError::Mac(e) => ApiError::internal("issuing a viewer token failed", &e),
        }
    }
}

/// `POST /v1/viewer-tokens` (admin): a viewer token for the caller's tenant; the token is in
/// this response and nowhere else (it is not stored, and not logged).
pub async fn create_viewer_token(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<ViewerTokenRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let issued = viewer_tokens::issue(state.viewer_tokens()?, tenant, &caller.0.key_id, body).await?;
    let expires_at = issued.expires_at().map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": issued.token,
            "token_id": issued.payload.token_id,
            "subject": issued.payload.subject,
            "filter": issued.payload.filter,
            "scopes": issued.payload.scopes,
            "expires_at": expires_at,
        })),
    ))
}

/// `DELETE /v1/viewer-tokens/{id}` (admin): revokes a viewer token by its id, recorded in the
/// tenant's chain. The authorizer may accept the token for up to its cache TTL afterwards.
pub async fn revoke_viewer_token(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(token_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let keys = state.api_keys()?;
    let mut store = state.store.get().await?;
    let actor = Actor { key_id: &caller.0.key_id };
    let (revoked_at, recorded) = admin::revoke_viewer_token(&mut store, keys, actor, tenant, &token_id).await?;
    state.notify_appended(store, tenant, &recorded).await;
    Ok(Json(json!({
        "token_id": token_id,
        "revoked_at": revoked_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    })))
}

/// `GET /v1/whoami`: the caller as the authorizer saw it.
pub async fn whoami(caller: Authenticated) -> Json<Value> {
    let c = &caller.0;
    let mut body = json!({
        "tenant_id": c.tenant_id,
        "key_id": c.key_id,
        "scopes": c.scopes,
        "kind": c.kind.as_str(),
    });
    if let Some(subject) = &c.subject {
        body["subject"] = json!(subject);
    }
    if let Some(role) = &c.role {
        body["role"] = json!(role);
    }
    if c.kind == CredentialKind::ViewerToken {
        body["filter"] = json!(c.pin);
    }
    if let Some(t) = c.expires_at {
        body["expires_at"] = json!(t.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    Json(body)
}

impl From<ConsoleError> for ApiError {
    fn from(err: ConsoleError) -> Self {
        match err {
            ConsoleError::Invalid(e) => e.into(),
            ConsoleError::Store(e) => e.into(),
            ConsoleError::Settings(e @ ConsoleSettingsError::Changed) => {
                ApiError::conflict("conflict", format!("{e}; read them again and retry"))
            }
            ConsoleError::Settings(e @ ConsoleSettingsError::RegisteredElsewhere) => {
                ApiError::conflict("conflict", e.to_string())
            }
            ConsoleError::Settings(e @ ConsoleSettingsError::Aws { .. }) => {
                ApiError::unavailable("the console settings table failed", &e)
            }
            ConsoleError::Settings(e) => ApiError::internal("reading console settings failed", &e),
        }
    }
}

/// `GET /v1/console/settings` (admin).
pub async fn get_settings(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<ConsoleSettings>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    Ok(Json(console_settings::get_settings(state.console_settings()?, tenant).await?))
}

/// `PUT /v1/console/settings` (admin): replaces the settings; the change is recorded in the
/// tenant's chain once, however often it is retried (see `service::console_settings`).
pub async fn put_settings(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<ConsoleSettings>,
) -> Result<Json<ConsoleSettings>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let settings = state.console_settings()?;
    let mut store = state.store.get().await?;
    let actor = Actor { key_id: &caller.0.key_id };
    let (now, recorded) = console_settings::put_settings(&mut store, settings, actor, tenant, body).await?;
    drop(store);
    for appended in &recorded {
        state.send_outbox(tenant, appended).await;
    }
    Ok(Json(now))
}

/// `GET /v1/console/sign-in?tenant=<id>` (public, no credential): the tenant's issuer and
/// client id, or `"oidc": null`; an unknown tenant reads the same as one without OIDC.
pub async fn sign_in(State(state): State<ApiState>, query: QueryPairs) -> Result<Json<Value>, ApiError> {
    let mut tenant = None;
    for (name, value) in query.iter() {
        if name != "tenant" || tenant.is_some() {
            return Err(ValidationError::new(name, "the only parameter is tenant, once").into());
        }
        tenant = Some(value);
    }
    let tenant = tenant.ok_or_else(|| ValidationError::new("tenant", "is required"))?;
    let tenant = uuid::Uuid::parse_str(tenant).map_err(|_| ValidationError::new("tenant", "must be a tenant id"))?;
    Ok(Json(console_settings::sign_in(state.console_settings()?, tenant).await?))
}
