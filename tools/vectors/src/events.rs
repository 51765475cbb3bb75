//! `events.json`: events as sent, the canonical content the service stores, the bytes a
//! publisher signs and the salted content digest, all through the ingest path of the chain core:
//! `event::parse_event(..)?.validate(received_at)`, `canonical::content_bytes` /
//! `canonical::signing_bytes` and `entry::content_digest`. The `publisher` part pins Ed25519
//! publisher signatures for client SDKs.

use crate::{base64, json_file, sorted, time, VectorFile};
use anyhow::{ensure, Context, Result};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use serde::Serialize;
use serde_json::{json, Value};
use shared::chain::canonical::{content_bytes, signing_bytes};
use shared::chain::entry::{content_digest, SALT_LEN};
use shared::chain::event::{parse_event, Event};
use shared::chain::hash::sha256;

/// The time the service received every event of the file.
pub const RECEIVED_AT: &str = "2026-11-24T10:00:00.123456Z";
/// Seed of the publisher's Ed25519 key.
pub const PUBLISHER_SEED: [u8; 32] = [0x11; 32];
/// The id under which the publisher registered its key.
pub const PUBLISHER_KEY_ID: &str = "publisher-key-1";

#[derive(Serialize)]
struct File {
    description: &'static str,
    cases: Vec<Case>,
    publisher: Publisher,
}

#[derive(Serialize)]
struct Case {
    name: &'static str,
    received_at: &'static str,
    #[serde(serialize_with = "sorted")]
    input: Value,
    content: String,
    signing_bytes: String,
    salt: String,
    content_digest: String,
}

#[derive(Serialize)]
struct Publisher {
    seed: String,
    public_key: String,
    key_id: &'static str,
    cases: Vec<PublisherCase>,
}

#[derive(Serialize)]
struct PublisherCase {
    name: &'static str,
    #[serde(serialize_with = "sorted")]
    event: Value,
    signing_bytes: String,
    signature: String,
}

/// The publisher's signing key.
pub fn publisher_key() -> SigningKey {
    SigningKey::from_bytes(&PUBLISHER_SEED)
}

/// Parses and validates an event exactly as ingest does.
fn normalise(input: &Value, received_at: DateTime<Utc>) -> Result<Event> {
    let bytes = serde_json::to_vec(input).context("serialising the input")?;
    let event = parse_event(&bytes).map_err(anyhow::Error::msg).context("parsing the event")?;
    event.validate(received_at).map_err(anyhow::Error::msg).context("validating the event")
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).context("canonical bytes are UTF-8")
}

/// A fixed salt per case, derived from its name so every case has a different one.
fn salt_for(name: &str) -> [u8; SALT_LEN] {
    sha256(&[b"events.json salt ", name.as_bytes()]).0
}

/// The Ed25519 signature of the publisher over the event's signing bytes, as the event's
/// `signature` member.
fn sign(input: &Value, received_at: DateTime<Utc>) -> Result<Value> {
    let bytes = signing_bytes(&normalise(input, received_at)?);
    let signature = publisher_key().sign(&bytes);
    Ok(json!({"key_id": PUBLISHER_KEY_ID, "alg": "ed25519", "sig": base64(&signature.to_bytes())}))
}

fn every_optional_member() -> Value {
    json!({
        "action": "document.delete",
        "actor": {"id": "u-42", "type": "user", "name": "Ann Example", "ip": "203.0.113.7",
                  "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
        "resource": {"type": "document", "id": "d-9", "name": "Q3 plan"},
        "outcome": "denied",
        "occurred_at": "2026-11-24T09:59:00Z",
        "severity": "high",
        "source": "web",
        "request_id": "r-1",
        "session_id": "s-1",
        "metadata": {"reason": "cleanup"}
    })
}

fn cases() -> Result<Vec<(&'static str, Value)>> {
    let received_at = time(RECEIVED_AT)?;
    let unsigned = json!({
        "action": "invoice.pay",
        "actor": {"id": "svc-billing", "type": "service"},
        "resource": {"type": "invoice", "id": "inv-2026-0042"},
        "outcome": "success",
        "occurred_at": "2026-11-24T09:58:30.25Z",
        "metadata": {"amount": 12.5, "currency": "EUR"}
    });
    let mut signed = unsigned.clone();
    signed["signature"] = sign(&unsigned, received_at)?;
    Ok(vec![
        ("minimal_event_gets_default_outcome_and_occurred_at", json!({"action": "user.login", "actor": {"id": "u-1"}})),
        ("every_optional_member", every_optional_member()),
        (
            "occurred_at_with_offset_is_normalised_to_utc",
            json!({"action": "user.logout", "actor": {"id": "u-1"}, "occurred_at": "2026-11-24T11:59:00.5+02:00"}),
        ),
        (
            "occurred_at_nanoseconds_are_truncated_to_microseconds",
            json!({"action": "user.login", "actor": {"id": "u-1"}, "occurred_at": "2026-11-24T09:59:59.123456789Z"}),
        ),
        (
            "metadata_with_nested_objects_unicode_and_numbers",
            json!({
                "action": "config.update",
                "actor": {"id": "u-\u{e9}l\u{e9}onore", "type": "user", "name": "\u{c9}l\u{e9}onore \u{1f600}"},
                "outcome": "success",
                "metadata": {
                    "z": {"b": [1, {"y": null, "x": true}], "a": "caf\u{e9} \u{20ac} \u{65e5}\u{672c}"},
                    "\u{20ac}": "a key outside ASCII",
                    "\u{1f600}": "a key outside the BMP",
                    "numbers": [0, -1, 1.5, 0.1, 1e21, 1e-7, 9007199254740991_u64, -9007199254740991_i64, 1.5e300],
                    "text": "line\nbreak\ttab \"quoted\" back\\slash \u{1f}",
                    "empty": {},
                    "list": []
                }
            }),
        ),
        ("empty_metadata_is_omitted", json!({"action": "user.login", "actor": {"id": "u-1"}, "metadata": {}})),
        (
            "resource_with_type_only_and_ipv6_actor",
            json!({"action": "bucket.read", "actor": {"id": "u-7", "ip": "2001:db8::7"}, "resource": {"type": "bucket"},
                   "outcome": "error", "severity": "low"}),
        ),
        ("signed_by_a_publisher", signed),
    ])
}

fn publisher_cases() -> Vec<(&'static str, Value)> {
    vec![
        (
            "minimal_signed_event",
            json!({"action": "user.login", "actor": {"id": "u-1"}, "outcome": "success",
                   "occurred_at": "2026-11-24T09:59:00Z"}),
        ),
        (
            "occurred_at_is_signed_in_its_normalised_utc_form",
            json!({"action": "payment.refund", "actor": {"id": "svc-payments", "type": "service"},
                   "outcome": "failure", "occurred_at": "2026-11-24T10:59:00.123456789+01:00",
                   "severity": "medium"}),
        ),
        (
            "metadata_and_unicode",
            json!({"action": "document.share", "actor": {"id": "u-42", "name": "J\u{fc}rgen"},
                   "resource": {"type": "document", "id": "d-9", "name": "Pl\u{e4}ne \u{1f4c8}"},
                   "outcome": "success", "occurred_at": "2026-11-24T09:00:00.000001Z",
                   "metadata": {"shared_with": ["u-7", "u-8"], "expires_in_days": 30, "ratio": 0.25}}),
        ),
    ]
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let received_at = time(RECEIVED_AT)?;
    let mut out = Vec::new();
    for (name, input) in cases()? {
        let event = normalise(&input, received_at).with_context(|| format!("case {name}"))?;
        let content = content_bytes(&event).map_err(anyhow::Error::msg).with_context(|| format!("case {name}"))?;
        let signing = signing_bytes(&event);
        let salt = salt_for(name);
        ensure!(
            (event.signature.is_some()) == (content != signing),
            "case {name}: the content and signing bytes differ exactly when the event is signed"
        );
        out.push(Case {
            name,
            received_at: RECEIVED_AT,
            input,
            content_digest: content_digest(&salt, &content).to_hex(),
            content: utf8(content)?,
            signing_bytes: utf8(signing)?,
            salt: base64(&salt),
        });
    }

    let key = publisher_key();
    let mut publisher = Vec::new();
    for (name, event) in publisher_cases() {
        let bytes = signing_bytes(&normalise(&event, received_at).with_context(|| format!("publisher case {name}"))?);
        let signature = base64(&key.sign(&bytes).to_bytes());
        publisher.push(PublisherCase { name, event, signing_bytes: utf8(bytes)?, signature });
    }

    let file = File {
        description: "Events as sent (`input`), received at `received_at`, normalised as the service does \
                      (outcome defaults to success, occurred_at to the receive time and is rewritten as UTC with \
                      exactly six fractional digits, sub-microsecond digits truncated, empty metadata omitted). \
                      `content` is the RFC 8785 form of the normalised event that is stored and digested (with \
                      the publisher `signature` member if there is one); `signing_bytes` is the same without \
                      `signature`; `content_digest` = hex(SHA-256(salt || content)), `salt` standard base64. \
                      `publisher`: an Ed25519 key (`seed` and raw `public_key` in standard base64, `key_id` its \
                      registered id) and events a client signs: `signature` = base64(Ed25519(signing_bytes)), \
                      which is deterministic, so an SDK must reproduce it exactly.",
        cases: out,
        publisher: Publisher {
            seed: base64(&PUBLISHER_SEED),
            public_key: base64(key.verifying_key().as_bytes()),
            key_id: PUBLISHER_KEY_ID,
            cases: publisher,
        },
    };
    Ok(vec![json_file("events.json", &file)?])
}
