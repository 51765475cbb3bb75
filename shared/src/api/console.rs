//! The console's credential routes: issuing viewer tokens (`POST /v1/viewer-tokens`, admin) and
//! `GET /v1/whoami` (any credential), which tells the console who is signed in, with which
//! scopes and pin, so it offers only the controls that will work.

use super::error::ApiError;
use super::extract::{Authenticated, JsonBody};
use super::state::ApiState;
use crate::auth::{CredentialKind, Scope};
use crate::aws::viewer_tokens::ViewerTokenError;
use crate::service::viewer_tokens::{self, IssueError, ViewerTokenRequest};
use axum::extract::State;
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
            "subject": issued.payload.subject,
            "filter": issued.payload.filter,
            "scopes": issued.payload.scopes,
            "expires_at": expires_at,
        })),
    ))
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
