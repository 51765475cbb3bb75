//! The API's one error type and its one mapping to HTTP. Every failure a handler can meet becomes
//! an [`ApiError`] here, and every `ApiError` becomes `{"error":{"code":..,"message":..}}` with the
//! right status. Internal details (database messages, AWS error text) are logged, never sent.

use crate::aws::api_keys::ApiKeyError;
use crate::chain::event::ValidationError;
use crate::service::admin::AdminError;
use crate::service::ingest::IngestError;
use crate::service::query::QueryError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// How many seconds a client should wait before retrying a request that met a transient failure.
const RETRY_AFTER_SECONDS: u32 = 1;

/// An error as the client sees it: a status, a stable machine-readable code and a message that
/// says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    /// A request that is well-formed HTTP but says something invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required")
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A failure the client cannot fix; the cause is logged here with `context` and not sent.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the request was not completed")
    }

    /// A failure that a retry may fix (lost connection, throttling): 503 with Retry-After.
    pub fn unavailable(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "{context}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily unavailable; retry the same request")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::UnknownTenant => ApiError::not_found("tenant"),
            StoreError::IdempotencyConflict => ApiError::conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used with a different request body",
            ),
            StoreError::InvalidRange(message) => ApiError::invalid(message),
            StoreError::Invalid { field, message } => ApiError::invalid(format!("{field}: {message}")),
            StoreError::Conflict(message) => ApiError::conflict("conflict", message),
            err if err.is_transient() => ApiError::unavailable("database unavailable", &err),
            err => ApiError::internal("database operation failed", &err),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Invalid(e) => e.into(),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::Invalid(e) => e.into(),
            QueryError::Store(e) => e.into(),
            QueryError::Search(e @ crate::search::SearchError::Unavailable(_)) => {
                ApiError::unavailable("search unavailable", &e)
            }
            QueryError::Search(e) => ApiError::internal("search failed", &e),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(e) => e.into(),
            AdminError::Store(e) => e.into(),
            AdminError::Keys(e) => e.into(),
            e @ AdminError::SecretNotReissued(_) => ApiError::conflict("secret_not_reissued", e.to_string()),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(err: ApiKeyError) -> Self {
        match err {
            ApiKeyError::NotFound | ApiKeyError::Unknown => ApiError::not_found("API key"),
            ApiKeyError::InvalidInput(message) => ApiError::invalid(message),
            err => ApiError::unavailable("API key store failed", &err),
        }
    }
}
