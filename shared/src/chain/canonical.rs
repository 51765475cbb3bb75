//! The one canonical encoder: RFC 8785 (JSON Canonicalization Scheme) bytes of explicitly built
//! JSON values. Everything that is hashed or signed goes through [`jcs`], and the JSON shapes are
//! written out here member by member rather than derived from a Rust type's `Serialize`, so a
//! renamed struct field can never silently change a hash. Golden vectors pin the output.

use super::event::{format_timestamp, limits, Event, ValidationError};
use super::hash::Hash;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// RFC 8785 bytes of a JSON value.
pub fn jcs(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, canon_json::CanonicalFormatter::new());
    // Serialising a `serde_json::Value` into memory cannot fail: its keys are strings and its
    // numbers finite.
    let _ = value.serialize(&mut ser);
    out
}

/// SHA-256 of the RFC 8785 form of the array `items`, computed element by element: the canonical
/// form of an array is `[`, its elements' canonical forms joined by `,`, and `]`, so the array
/// never has to be built (or cloned) as one value.
pub fn jcs_array_digest(items: &[Value]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        h.update(jcs(item));
    }
    h.update(b"]");
    Hash(h.finalize().into())
}

fn put(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), Value::String(v.clone()));
    }
}

/// The event's content as a JSON object, without its publisher signature.
fn content_without_signature(e: &Event) -> Map<String, Value> {
    let mut actor = Map::new();
    actor.insert("id".into(), Value::String(e.actor.id.clone()));
    put(&mut actor, "type", &e.actor.kind);
    put(&mut actor, "name", &e.actor.name);
    put(&mut actor, "ip", &e.actor.ip);
    put(&mut actor, "user_agent", &e.actor.user_agent);

    let mut m = Map::new();
    m.insert("action".into(), Value::String(e.action.clone()));
    m.insert("actor".into(), Value::Object(actor));
    if let Some(r) = &e.resource {
        let mut res = Map::new();
        res.insert("type".into(), Value::String(r.kind.clone()));
        put(&mut res, "id", &r.id);
        put(&mut res, "name", &r.name);
        m.insert("resource".into(), Value::Object(res));
    }
    m.insert("outcome".into(), Value::String(e.outcome.as_str().to_owned()));
    m.insert("occurred_at".into(), Value::String(format_timestamp(&e.occurred_at)));
    if let Some(s) = e.severity {
        m.insert("severity".into(), Value::String(s.as_str().to_owned()));
    }
    put(&mut m, "source", &e.source);
    put(&mut m, "request_id", &e.request_id);
    put(&mut m, "session_id", &e.session_id);
    if !e.metadata.is_empty() {
        m.insert("metadata".into(), Value::Object(e.metadata.clone()));
    }
    m
}

/// The bytes a publisher signs: the canonical content without the `signature` member.
pub fn signing_bytes(e: &Event) -> Vec<u8> {
    jcs(&Value::Object(content_without_signature(e)))
}

/// The canonical content of an event, signature included: what is stored and digested.
pub fn content_bytes(e: &Event) -> Result<Vec<u8>, ValidationError> {
    let mut m = content_without_signature(e);
    if let Some(sig) = &e.signature {
        m.insert("signature".into(), json!({"key_id": sig.key_id, "alg": sig.alg, "sig": sig.sig}));
    }
    let bytes = jcs(&Value::Object(m));
    if bytes.len() > limits::MAX_EVENT_BYTES {
        return Err(ValidationError::new(
            "$",
            format!("the canonical event is {} bytes; the limit is {} bytes", bytes.len(), limits::MAX_EVENT_BYTES),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::event::{parse_event, parse_timestamp};

    #[test]
    fn jcs_sorts_keys_by_utf16_and_formats_numbers_per_rfc8785() {
        // Examples from RFC 8785 section 3.2.3 (sorting) and appendix B (numbers).
        let v: Value =
            serde_json::from_str(r#"{"\u20ac":1,"\r":2,"1":3,"\u0080":4,"\ud83d\ude00":5,"\ufb33":6}"#).expect("json");
        assert_eq!(
            String::from_utf8(jcs(&v)).expect("utf8"),
            "{\"\\r\":2,\"1\":3,\"\u{80}\":4,\"\u{20ac}\":1,\"\u{1f600}\":5,\"\u{fb33}\":6}"
        );
        let n: Value =
            serde_json::from_str("[1E30, 4.50, 2e-3, 0.000001, 1e-7, -0, 333333333.33333329]").expect("json");
        assert_eq!(String::from_utf8(jcs(&n)).expect("utf8"), "[1e+30,4.5,0.002,0.000001,1e-7,0,333333333.3333333]");
    }

    #[test]
    fn jcs_escapes_strings_minimally_and_formats_number_boundaries() {
        let v: Value = serde_json::from_str(
            r#"{"s":"\u001f\"\\\/\b\f\n\r\t\u20ac\u00e9","n":[1e21,1e-6,1e-7,5e-324,-0.0,9007199254740991,0.1,1.0]}"#,
        )
        .expect("json");
        assert_eq!(
            String::from_utf8(jcs(&v)).expect("utf8"),
            "{\"n\":[1e+21,0.000001,1e-7,5e-324,0,9007199254740991,0.1,1],\"s\":\"\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\u{20ac}\u{e9}\"}"
        );
    }

    #[test]
    fn array_digest_equals_digest_of_the_canonical_array() {
        let items: Vec<Value> = serde_json::from_str(r#"[{"b":1,"a":2}, [3, 4.0], "x", null]"#).expect("json");
        let whole = crate::chain::hash::sha256(&[&jcs(&Value::Array(items.clone()))]);
        assert_eq!(jcs_array_digest(&items), whole);
        assert_eq!(jcs_array_digest(&[]), crate::chain::hash::sha256(&[b"[]"]));
    }

    #[test]
    fn content_is_canonical_and_order_independent() {
        let received = parse_timestamp("2026-11-24T10:00:00Z").expect("ts");
        let a = parse_event(
            br#"{"actor":{"id":"u1","type":"user"},"action":"user.login","metadata":{"b":1,"a":[true,null]}}"#,
        )
        .expect("parse")
        .validate(received)
        .expect("valid");
        let b = parse_event(
            br#"{"metadata":{"a":[true,null],"b":1.0},"action":"user.login","actor":{"type":"user","id":"u1"}}"#,
        )
        .expect("parse")
        .validate(received)
        .expect("valid");
        let bytes = content_bytes(&a).expect("fits");
        assert_eq!(bytes, content_bytes(&b).expect("fits"));
        assert_eq!(
            String::from_utf8(bytes).expect("utf8"),
            r#"{"action":"user.login","actor":{"id":"u1","type":"user"},"metadata":{"a":[true,null],"b":1},"occurred_at":"2026-11-24T10:00:00.000000Z","outcome":"success"}"#
        );
    }

    #[test]
    fn rejects_event_over_64_kib() {
        let received = parse_timestamp("2026-11-24T10:00:00Z").expect("ts");
        let big = "x".repeat(limits::MAX_EVENT_BYTES);
        let e = parse_event(
            serde_json::json!({"action": "a", "actor": {"id": "u"}, "metadata": {"blob": big}}).to_string().as_bytes(),
        )
        .expect("parse")
        .validate(received)
        .expect("valid fields");
        let err = content_bytes(&e).expect_err("too big");
        assert_eq!(err.field, "$");
        assert!(err.message.contains("65536"), "{err}");
    }
}
