//! The audit event as a client sends it, and its validated, normalised form.
//!
//! Parsing is two steps. `serde` turns JSON into [`EventInput`], rejecting unknown fields (a
//! `tenant_id` in the body is an error, never a way to write elsewhere) and wrong types, with the
//! JSON path of the offending field. [`EventInput::validate`] then applies the limits below and
//! normalises: `outcome` defaults to `success`, `occurred_at` defaults to the receive time and is
//! rewritten as UTC with exactly microsecond precision, the precision PostgreSQL stores. The
//! normalised [`Event`] is what gets canonicalised, hashed and stored, so the hash covers exactly
//! what a later reader gets back.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Limits, all checked before anything is written.
pub mod limits {
    /// Canonical (RFC 8785) bytes of one event, signature included.
    pub const MAX_EVENT_BYTES: usize = 64 * 1024;
    /// Nesting of `metadata`: the metadata object itself is depth 1.
    pub const MAX_METADATA_DEPTH: usize = 8;
    pub const MAX_METADATA_KEY_CHARS: usize = 256;
    pub const MAX_ACTION_CHARS: usize = 128;
    pub const MAX_ID_CHARS: usize = 256;
    pub const MAX_TYPE_CHARS: usize = 128;
    pub const MAX_NAME_CHARS: usize = 512;
    pub const MAX_USER_AGENT_CHARS: usize = 1024;
    pub const MAX_KEY_ID_CHARS: usize = 128;
    /// How far in the future `occurred_at` may lie (client clock skew).
    pub const MAX_FUTURE_SKEW_SECONDS: i64 = 15 * 60;
    /// Integers beyond +-2^53 are not exactly representable as IEEE doubles, so RFC 8785
    /// canonicalisation would differ between languages; such values must be sent as strings.
    pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
}

/// What happened to the attempted action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Success,
    Failure,
    Denied,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Self::Success, Self::Failure, Self::Denied, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// How much the event matters to a reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// What it was done to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A publisher's Ed25519 signature over the canonical form of the normalised event without its
/// `signature` member (see `canonical::signing_bytes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherSignature {
    pub key_id: String,
    pub alg: String,
    /// Standard base64 of the 64-byte signature.
    pub sig: String,
}

/// An event exactly as the client sent it (after JSON parsing, before validation).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub action: String,
    pub actor: Actor,
    #[serde(default)]
    pub resource: Option<Resource>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub signature: Option<PublisherSignature>,
}

/// A validated, normalised event: the content that is canonicalised and committed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: String,
    pub actor: Actor,
    pub resource: Option<Resource>,
    pub outcome: Outcome,
    /// UTC, truncated to whole microseconds.
    pub occurred_at: DateTime<Utc>,
    pub severity: Option<Severity>,
    pub source: Option<String>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub signature: Option<PublisherSignature>,
}

/// Why an event was rejected: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted JSON path, e.g. `actor.id` or `metadata.a.b`; `$` for the whole event.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self { field: field.into(), message: message.to_string() }
    }

    /// The same error for an event at position `index` of a batch.
    pub fn in_batch(self, index: usize) -> Self {
        let field =
            if self.field == "$" { format!("events[{index}]") } else { format!("events[{index}].{}", self.field) };
        Self { field, message: self.message }
    }
}

/// Parses one event from JSON bytes, naming the offending field on a type error.
pub fn parse_event(json: &[u8]) -> Result<EventInput, ValidationError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(field_error)
}

/// Parses one event from an already parsed JSON value (an element of a batch).
pub fn parse_event_value(json: &Value) -> Result<EventInput, ValidationError> {
    serde_path_to_error::deserialize(json).map_err(field_error)
}

fn field_error<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> ValidationError {
    let path = e.path().to_string();
    let field = if path == "." || path.is_empty() { "$".to_owned() } else { path };
    ValidationError::new(field, e.into_inner())
}

/// Truncates a timestamp to whole microseconds, the precision of PostgreSQL's `timestamptz`.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The one textual form of a timestamp inside hashed bytes: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 timestamp with an explicit offset and normalises it to UTC microseconds.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| truncate_to_micros(t.with_timezone(&Utc)))
        .map_err(|e| format!("not an RFC 3339 timestamp with offset ({e}), e.g. 2026-01-31T12:00:00Z"))
}

impl EventInput {
    /// Applies every limit and normalises the event; `received_at` supplies the default
    /// `occurred_at` and the reference for the future-skew check.
    pub fn validate(self, received_at: DateTime<Utc>) -> Result<Event, ValidationError> {
        check_action(&self.action)?;
        check_text("actor.id", &self.actor.id, limits::MAX_ID_CHARS, true)?;
        check_opt("actor.type", &self.actor.kind, limits::MAX_TYPE_CHARS)?;
        check_opt("actor.name", &self.actor.name, limits::MAX_NAME_CHARS)?;
        check_opt("actor.user_agent", &self.actor.user_agent, limits::MAX_USER_AGENT_CHARS)?;
        if let Some(ip) = &self.actor.ip {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| ValidationError::new("actor.ip", "not an IPv4 or IPv6 address"))?;
        }
        if let Some(r) = &self.resource {
            check_text("resource.type", &r.kind, limits::MAX_TYPE_CHARS, true)?;
            check_opt("resource.id", &r.id, limits::MAX_ID_CHARS)?;
            check_opt("resource.name", &r.name, limits::MAX_NAME_CHARS)?;
        }
        check_opt("source", &self.source, limits::MAX_NAME_CHARS)?;
        check_opt("request_id", &self.request_id, limits::MAX_ID_CHARS)?;
        check_opt("session_id", &self.session_id, limits::MAX_ID_CHARS)?;
        let metadata = self.metadata.unwrap_or_default();
        check_metadata_object("metadata", &metadata, 1)?;

        let received_at = truncate_to_micros(received_at);
        let occurred_at = match &self.occurred_at {
            Some(s) => parse_timestamp(s).map_err(|m| ValidationError::new("occurred_at", m))?,
            None => received_at,
        };
        if occurred_at > received_at + Duration::seconds(limits::MAX_FUTURE_SKEW_SECONDS) {
            return Err(ValidationError::new(
                "occurred_at",
                format!(
                    "lies more than {} minutes after the time the service received the event",
                    limits::MAX_FUTURE_SKEW_SECONDS / 60
                ),
            ));
        }

        if let Some(sig) = &self.signature {
            check_text("signature.key_id", &sig.key_id, limits::MAX_KEY_ID_CHARS, true)?;
            if sig.alg != "ed25519" {
                return Err(ValidationError::new("signature.alg", "the only supported algorithm is \"ed25519\""));
            }
            // A signature covers the stored form, so the parts the service would otherwise fill
            // in must be chosen by the publisher.
            if self.occurred_at.is_none() {
                return Err(ValidationError::new("occurred_at", "required when the event is signed"));
            }
            if self.outcome.is_none() {
                return Err(ValidationError::new("outcome", "required when the event is signed"));
            }
        }

        Ok(Event {
            action: self.action,
            actor: self.actor,
            resource: self.resource,
            outcome: self.outcome.unwrap_or_default(),
            occurred_at,
            severity: self.severity,
            source: self.source,
            request_id: self.request_id,
            session_id: self.session_id,
            metadata,
            signature: self.signature,
        })
    }
}

fn check_action(action: &str) -> Result<(), ValidationError> {
    check_text("action", action, limits::MAX_ACTION_CHARS, true)?;
    let ok_first = action.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = action.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
    if !ok_first || !ok_rest {
        return Err(ValidationError::new(
            "action",
            "must start with a letter or digit and use only letters, digits and . _ - : / (e.g. \"user.login\")",
        ));
    }
    Ok(())
}

fn check_opt(field: &str, value: &Option<String>, max_chars: usize) -> Result<(), ValidationError> {
    match value {
        Some(v) => check_text(field, v, max_chars, false),
        None => Ok(()),
    }
}

/// Text must be within its length and free of NUL, which PostgreSQL cannot store in `text`.
fn check_text(field: &str, value: &str, max_chars: usize, required: bool) -> Result<(), ValidationError> {
    if required && value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(field, format!("is {chars} characters long; the limit is {max_chars}")));
    }
    if value.contains('\0') {
        return Err(ValidationError::new(field, "must not contain the NUL character (U+0000)"));
    }
    Ok(())
}

fn check_metadata_object(path: &str, map: &Map<String, Value>, depth: usize) -> Result<(), ValidationError> {
    if depth > limits::MAX_METADATA_DEPTH {
        return Err(ValidationError::new(path, format!("nests deeper than {} levels", limits::MAX_METADATA_DEPTH)));
    }
    for (key, value) in map {
        let child = format!("{path}.{key}");
        if key.is_empty() || key.chars().count() > limits::MAX_METADATA_KEY_CHARS || key.contains('\0') {
            return Err(ValidationError::new(
                child,
                format!("keys must be 1 to {} characters without NUL", limits::MAX_METADATA_KEY_CHARS),
            ));
        }
        check_metadata_value(&child, value, depth)?;
    }
    Ok(())
}

fn check_metadata_value(path: &str, value: &Value, depth: usize) -> Result<(), ValidationError> {
    match value {
        Value::Null | Value::Bool(_) => Ok(()),
        Value::String(s) => {
            if s.contains('\0') {
                Err(ValidationError::new(path, "must not contain the NUL character (U+0000)"))
            } else {
                Ok(())
            }
        }
        Value::Number(n) => {
            let exact_int = n
                .as_u64()
                .map(|u| u <= limits::MAX_SAFE_INTEGER)
                .or_else(|| n.as_i64().map(|i| i.unsigned_abs() <= limits::MAX_SAFE_INTEGER));
            match exact_int {
                Some(true) => Ok(()),
                Some(false) => Err(ValidationError::new(
                    path,
                    "integer outside +-(2^53-1) cannot be canonicalised portably; send it as a string",
                )),
                None if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
                None => Err(ValidationError::new(path, "number is not finite")),
            }
        }
        Value::Array(items) => {
            if depth + 1 > limits::MAX_METADATA_DEPTH {
                return Err(ValidationError::new(
                    path,
                    format!("nests deeper than {} levels", limits::MAX_METADATA_DEPTH),
                ));
            }
            items.iter().enumerate().try_for_each(|(i, v)| check_metadata_value(&format!("{path}[{i}]"), v, depth + 1))
        }
        Value::Object(map) => check_metadata_object(path, map, depth + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-11-24T10:00:00.123456789Z").expect("valid")
    }

    fn validate(v: Value) -> Result<Event, ValidationError> {
        parse_event(v.to_string().as_bytes())?.validate(now())
    }

    fn rejected_field(v: Value) -> String {
        validate(v).expect_err("must be rejected").field
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let e = validate(json!({"action": "user.login", "actor": {"id": "u1"}})).expect("valid");
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(format_timestamp(&e.occurred_at), "2026-11-24T10:00:00.123456Z");
        assert!(e.metadata.is_empty());
    }

    #[test]
    fn occurred_at_is_normalised_to_utc_micros() {
        let e =
            validate(json!({"action": "a", "actor": {"id": "u"}, "occurred_at": "2026-11-24T11:30:00.9999999+02:00"}))
                .expect("valid");
        assert_eq!(format_timestamp(&e.occurred_at), "2026-11-24T09:30:00.999999Z");
    }

    #[test]
    fn rejects_body_tenant_id() {
        let err = validate(json!({"action": "a", "actor": {"id": "u"}, "tenant_id": "x"})).expect_err("unknown");
        assert!(err.message.contains("tenant_id"), "{err}");
    }

    #[test]
    fn rejects_missing_required_fields() {
        assert_eq!(rejected_field(json!({"actor": {"id": "u"}})), "$");
        assert_eq!(rejected_field(json!({"action": "a"})), "$");
        assert_eq!(rejected_field(json!({"action": "a", "actor": {}})), "actor");
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": " "}})), "actor.id");
    }

    #[test]
    fn rejects_wrong_types_naming_the_field() {
        assert_eq!(rejected_field(json!({"action": 5, "actor": {"id": "u"}})), "action");
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": ["u"]}})), "actor.id");
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": "u"}, "metadata": [1]})), "metadata");
    }

    #[test]
    fn rejects_unknown_outcome_and_severity() {
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": "u"}, "outcome": "ok"})), "outcome");
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": "u"}, "severity": "urgent"})), "severity");
    }

    #[test]
    fn rejects_non_rfc3339_and_far_future_times() {
        for bad in ["2026-11-24", "2026-11-24T10:00:00", "yesterday", "2026-13-01T00:00:00Z"] {
            assert_eq!(
                rejected_field(json!({"action": "a", "actor": {"id": "u"}, "occurred_at": bad})),
                "occurred_at",
                "{bad}"
            );
        }
        let future = json!({"action": "a", "actor": {"id": "u"}, "occurred_at": "2026-11-24T11:00:00Z"});
        assert_eq!(rejected_field(future), "occurred_at");
    }

    #[test]
    fn rejects_bad_action_names() {
        for bad in ["", ".login", "user login", "user;drop", "a'b", &"a".repeat(129)] {
            assert_eq!(rejected_field(json!({"action": bad, "actor": {"id": "u"}})), "action", "{bad}");
        }
    }

    #[test]
    fn rejects_nul_anywhere() {
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": "u\u{0}"}})), "actor.id");
        assert_eq!(
            rejected_field(json!({"action": "a", "actor": {"id": "u"}, "metadata": {"k": "v\u{0}"}})),
            "metadata.k"
        );
    }

    #[test]
    fn rejects_metadata_nested_deeper_than_eight() {
        let mut v = json!("leaf");
        for _ in 0..9 {
            v = json!({ "k": v });
        }
        // The metadata object is level 1, so nine nested objects are one level too many.
        let err = rejected_field(json!({"action": "a", "actor": {"id": "u"}, "metadata": v}));
        assert!(err.starts_with("metadata.k"), "{err}");
        let mut ok = json!("leaf");
        for _ in 0..8 {
            ok = json!({ "k": ok });
        }
        validate(json!({"action": "a", "actor": {"id": "u"}, "metadata": ok})).expect("eight levels are fine");
    }

    #[test]
    fn rejects_unsafe_integers_in_metadata() {
        let err = rejected_field(json!({"action": "a", "actor": {"id": "u"}, "metadata": {"n": 9007199254740993u64}}));
        assert_eq!(err, "metadata.n");
        validate(json!({"action": "a", "actor": {"id": "u"}, "metadata": {"n": 9007199254740991u64, "f": 1.5}}))
            .expect("safe");
    }

    #[test]
    fn rejects_bad_ip_and_signature_alg() {
        assert_eq!(rejected_field(json!({"action": "a", "actor": {"id": "u", "ip": "300.1.1.1"}})), "actor.ip");
        let sig = json!({"key_id": "k", "alg": "rsa", "sig": "AA=="});
        assert_eq!(
            rejected_field(
                json!({"action": "a", "actor": {"id": "u"}, "occurred_at": "2026-11-24T10:00:00Z", "outcome": "success", "signature": sig})
            ),
            "signature.alg"
        );
    }

    #[test]
    fn signed_events_must_fix_time_and_outcome() {
        let sig = json!({"key_id": "k", "alg": "ed25519", "sig": "AA=="});
        assert_eq!(
            rejected_field(json!({"action": "a", "actor": {"id": "u"}, "outcome": "success", "signature": sig})),
            "occurred_at"
        );
    }

    #[test]
    fn batch_errors_are_prefixed_with_the_index() {
        let e = ValidationError::new("actor.id", "x").in_batch(3);
        assert_eq!(e.field, "events[3].actor.id");
        assert_eq!(ValidationError::new("$", "x").in_batch(0).field, "events[0]");
    }
}
