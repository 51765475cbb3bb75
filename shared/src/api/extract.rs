//! What handlers take from a request: the caller the authorizer vouched for, a JSON body read
//! with the service's limits, the idempotency key and the query string. Each rejection is an
//! [`ApiError`] with a precise message.

use super::error::ApiError;
use crate::auth::{Caller, Scope};
use crate::chain::strict_json::{self, StrictJsonKind};
use crate::service::query::EventFilter;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The largest request body accepted: the Lambda synchronous invocation payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Idempotency keys are 1 to 255 printable ASCII characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// The identity the authorizer attached to the request (API Gateway passes it as
/// `requestContext.authorizer.lambda`). Handlers trust only this: never a tenant named in the
/// body, path or query.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// The caller's tenant, if the key has `scope`. A key without the scope gets 403 naming it; a
    /// platform key (no tenant) cannot act on tenant data.
    pub fn tenant_with(&self, scope: Scope) -> Result<Uuid, ApiError> {
        self.require(scope)?;
        self.0.tenant_id.ok_or_else(|| ApiError::forbidden("a platform key cannot act on a tenant's data"))
    }

    /// The caller's tenant for reading events with `scope`, and the pinned filter a viewer
    /// token's reads are ANDed with (`None` for every other credential).
    pub fn reader_with(&self, scope: Scope) -> Result<(Uuid, Option<EventFilter>), ApiError> {
        let tenant = self.tenant_with(scope)?;
        let pin = match &self.0.pin {
            None => None,
            Some(pin) => Some(EventFilter::from_pin(pin).map_err(|e| {
                tracing::warn!(error = %e, "a viewer token's pin does not parse");
                ApiError::forbidden("this token's filter is not valid")
            })?),
        };
        Ok((tenant, pin))
    }

    /// The caller's tenant for a tenant-wide read (counts over every event, the chain's
    /// verification), which a viewer token, pinned to part of the log, may not make.
    pub fn unpinned_tenant_with(&self, scope: Scope) -> Result<Uuid, ApiError> {
        if self.0.pin.is_some() {
            return Err(ApiError::forbidden(
                "a viewer token reads only the events its filter selects, not tenant-wide figures",
            ));
        }
        self.tenant_with(scope)
    }

    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this credential lacks the scope {}", scope.as_str())))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let fields = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.authorizer.as_ref().map(|a| &a.fields),
            _ => None,
        };
        // Without an authorizer context the request did not come through the gateway's
        // authorizer (a misconfigured route): refuse rather than guess.
        let caller = fields.and_then(Caller::from_context).ok_or_else(ApiError::unauthorized)?;
        Ok(Authenticated(caller))
    }
}

/// The `Idempotency-Key` header, if present and well-formed.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| {
                !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_CHARS && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters without spaces"
                ))
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// The query string as decoded name/value pairs, in order, repeats kept (the services reject
/// repeats and unknown names themselves).
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Invalid percent-encoded UTF-8 decodes to U+FFFD, which no filter value matches.
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

/// A JSON body: `Content-Type: application/json`, at most [`MAX_BODY_BYTES`], valid UTF-8 and
/// strict JSON ([`crate::chain::strict_json`]). `T` is usually [`Value`] for events (validated by the chain module, which reports JSON
/// paths) or a request type with `deny_unknown_fields`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a body, naming the JSON path of a field with the wrong type or an unknown name.
///
/// Every body is checked as strict JSON first, so that what is parsed, and hashed, is exactly
/// what was sent: a duplicate member name, an integer beyond +-(2^53-1), a number no IEEE 754
/// double holds exactly, or a lone surrogate or noncharacter in a string is a 400 naming its
/// path, before any field is looked at.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "the body is not valid UTF-8"));
    }
    strict_json::check(bytes).map_err(|e| {
        let message = match e.kind {
            StrictJsonKind::InvalidJson => format!("the body is {e}"),
            _ => e.message,
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {inner}")
        } else if path == "." {
            format!("invalid body: {inner}")
        } else {
            format!("invalid body at {path}: {inner}")
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// A JSON body that may be absent (an empty body means the defaults).
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = request.headers().get(header::CONTENT_LENGTH).is_some_and(|v| v == "0")
            || (request.headers().get(header::CONTENT_TYPE).is_none()
                && request.headers().get(header::CONTENT_LENGTH).is_none());
        if empty {
            return Ok(OptionalJsonBody(None));
        }
        let JsonBody(value) = JsonBody::<T>::from_request(request, state).await?;
        Ok(OptionalJsonBody(Some(value)))
    }
}

/// Parses a path segment as a UUID; anything else is a 404 (the resource cannot exist).
pub fn path_uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn refusal(body: &str) -> (StatusCode, &'static str, String) {
        let e = parse_json::<Value>(body.as_bytes()).expect_err(body);
        (e.status, e.code, e.message)
    }

    #[test]
    fn refuses_a_duplicate_member_naming_its_path() {
        assert_eq!(
            refusal(r#"{"action":"a","action":"b"}"#),
            (StatusCode::BAD_REQUEST, "invalid_json", r#"duplicate member name "action" at action"#.into())
        );
    }

    #[test]
    fn refuses_unsafe_and_inexact_numbers_naming_their_path() {
        let (status, code, message) = refusal(r#"{"metadata":{"n":18446744073709551616}}"#);
        assert_eq!((status, code), (StatusCode::BAD_REQUEST, "invalid_json"));
        assert_eq!(message, "integer 18446744073709551616 at metadata.n is outside +-(2^53-1); send it as a string");
        assert!(refusal(r#"{"x":0.10000000000000001}"#).2.contains("at x is not exactly an IEEE 754 double"));
    }

    #[test]
    fn refuses_invalid_syntax_as_before() {
        let (status, code, message) = refusal(r#"{"a":1,}"#);
        assert_eq!((status, code), (StatusCode::BAD_REQUEST, "invalid_json"));
        assert_eq!(message, "the body is not valid JSON: trailing comma at line 1 column 8");
    }

    #[test]
    fn strict_json_still_parses_into_the_requested_type() {
        let value: Value = parse_json(br#"{"a":[1,0.5,-0,"\u00e9"]}"#).expect("strict JSON");
        assert_eq!(value["a"][3], "\u{e9}");
    }
}
