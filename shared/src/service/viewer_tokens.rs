//! Issuing viewer tokens (`POST /v1/viewer-tokens`): checks the request (subject, scopes, pinned
//! filter, lifetime) and has the token MAC'd by KMS (`aws::viewer_tokens`).
//!
//! Issuing a token is not recorded in the tenant's chain. A token is a session, not a change of
//! the tenant's configuration: it grants nothing an admin key could not already read, expires
//! within a day, and issuing thousands a day (one per customer page view) would bury the
//! administrative records the chain exists to keep. It is logged (tenant, issuing key, subject,
//! token id, pin, expiry; never the token) and counted as the `ViewerTokensIssued` metric.
//! See docs/ARCHITECTURE.md, "Console credentials".

use crate::auth::Pin;
use crate::aws::viewer_tokens::{
    ViewerScope, ViewerTokenError, ViewerTokenMac, ViewerTokenPayload, MAX_LIFETIME_SECONDS,
};
use crate::chain::event::ValidationError;
use crate::metrics::{self, Unit};
use crate::service::query::EventFilter;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// The shortest lifetime a token may be issued with, and the default.
pub const MIN_LIFETIME_SECONDS: i64 = 60;
pub const DEFAULT_LIFETIME_SECONDS: i64 = 3600;
const MAX_SUBJECT_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Mac(#[from] ViewerTokenError),
}

/// The body of `POST /v1/viewer-tokens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewerTokenRequest {
    pub subject: String,
    #[serde(default)]
    pub filter: Pin,
    #[serde(default)]
    pub scopes: Option<Vec<ViewerScope>>,
    #[serde(default)]
    pub expires_in: Option<i64>,
}

/// A token just issued: the only time it exists outside the client.
#[derive(Clone)]
pub struct IssuedToken {
    pub token: String,
    pub payload: ViewerTokenPayload,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("token", &"<redacted>").field("payload", &self.payload).finish()
    }
}

impl IssuedToken {
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.payload.expires_at, 0)
    }
}

/// Checks `request` and issues its token for `tenant`; `issuer_key_id` is the admin key that
/// asked (logged).
pub async fn issue(
    mac: &ViewerTokenMac,
    tenant: Uuid,
    issuer_key_id: &str,
    request: ViewerTokenRequest,
) -> Result<IssuedToken, IssueError> {
    let subject_chars = request.subject.chars().count();
    if subject_chars == 0 || subject_chars > MAX_SUBJECT_CHARS || request.subject.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "subject",
            format!("must be 1 to {MAX_SUBJECT_CHARS} characters, no control characters"),
        )
        .into());
    }
    EventFilter::from_pin(&request.filter)?;
    let mut scopes = request.scopes.unwrap_or_else(|| vec![ViewerScope::Read]);
    scopes.sort();
    scopes.dedup();
    if !scopes.contains(&ViewerScope::Read) {
        return Err(ValidationError::new("scopes", "must contain \"read\" (\"export\" is in addition to it)").into());
    }
    let lifetime = request.expires_in.unwrap_or(DEFAULT_LIFETIME_SECONDS);
    if !(MIN_LIFETIME_SECONDS..=MAX_LIFETIME_SECONDS).contains(&lifetime) {
        return Err(ValidationError::new(
            "expires_in",
            format!("must be {MIN_LIFETIME_SECONDS} to {MAX_LIFETIME_SECONDS} seconds"),
        )
        .into());
    }
    let now = Utc::now().timestamp();
    let payload = ViewerTokenPayload {
        v: 1,
        tenant_id: tenant,
        subject: request.subject,
        scopes,
        filter: request.filter,
        issued_at: now,
        expires_at: now + lifetime,
        token_id: ViewerTokenPayload::new_token_id(),
    };
    let token = mac.sign(&payload).await?;
    metrics::emit(&[("ViewerTokensIssued", 1.0, Unit::Count)], &[("Function", "admin")]);
    tracing::info!(
        %tenant,
        issued_by = issuer_key_id,
        subject = %payload.subject,
        token_id = %payload.token_id,
        filter = ?payload.filter,
        expires_at = payload.expires_at,
        "viewer token issued"
    );
    Ok(IssuedToken { token, payload })
}
