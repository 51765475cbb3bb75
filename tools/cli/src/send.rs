//! `auditlog send`: appends events through `POST /v1/events/batch`, at most 1000 per request,
//! each request with its own Idempotency-Key so a retried request never appends twice.
//!
//! With `--signing-key`, each event is signed the way docs/FORMATS.md ("Event content") says a
//! publisher signs: the event is validated and normalised with the service's own rules
//! (`shared::chain::event`), `occurred_at` and `outcome` are filled in when absent (a signed event
//! must carry both, since the signature covers them), and the Ed25519 signature is over
//! `canonical::signing_bytes` of that normalised event. The normalised event is what is sent,
//! so the service stores exactly the bytes that were signed.

use crate::client::Client;
use crate::UsageError;
use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reqwest::Method;
use serde_json::{json, Value};
use shared::chain::canonical::signing_bytes;
use shared::chain::event::parse_event_value;
use shared::chain::strict_json::{self, StrictJsonKind};

/// The most events one `POST /v1/events/batch` takes.
pub const MAX_BATCH: usize = 1000;

/// Reads events: one JSON object, a JSON array of objects, or JSON Lines (one object per
/// non-blank line), each strict JSON: re-serialised, a duplicate name or a rounded number would
/// send something other than the file says.
pub fn parse_events(text: &str, source: &str) -> Result<Vec<Value>> {
    match strict_json::check(text.as_bytes()) {
        // Not one JSON text: perhaps JSON Lines.
        Err(e) if e.kind == StrictJsonKind::InvalidJson => {}
        Err(e) => return Err(UsageError(format!("{source}: not strict JSON: {e}")).into()),
        Ok(()) => {}
    }
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return match value {
            Value::Object(_) => Ok(vec![value]),
            Value::Array(items) => Ok(items),
            _ => Err(UsageError(format!("{source}: an event is a JSON object")).into()),
        };
    }
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = crate::parse_strict_json(line).map_err(|e| UsageError(format!("{source}: line {}: {e}", i + 1)))?;
        if !value.is_object() {
            return Err(UsageError(format!("{source}: line {}: an event is a JSON object", i + 1)).into());
        }
        events.push(value);
    }
    if events.is_empty() {
        return Err(UsageError(format!("{source}: no events")).into());
    }
    Ok(events)
}

/// An Ed25519 seed, 32 bytes written as hex or standard base64.
pub fn read_signing_key(path: &std::path::Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read the signing key {}: {e}", path.display())))?;
    let text = text.trim();
    let bytes =
        hex::decode(text).ok().filter(|b| b.len() == 32).or_else(|| BASE64.decode(text).ok().filter(|b| b.len() == 32));
    let seed: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        UsageError(format!("{}: the signing key must be a 32-byte Ed25519 seed as hex or base64", path.display()))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The validated, normalised event with its publisher signature attached.
pub fn sign_event(event: &Value, key: &SigningKey, key_id: &str, index: usize) -> Result<Value> {
    let input = parse_event_value(event).map_err(|e| UsageError(format!("event {index}: {e}")))?;
    if input.signature.is_some() {
        return Err(UsageError(format!("event {index} is already signed")).into());
    }
    let normalised = input.validate(chrono::Utc::now()).map_err(|e| UsageError(format!("event {index}: {e}")))?;
    let bytes = signing_bytes(&normalised);
    let signature = key.sign(&bytes);
    let mut signed: Value = serde_json::from_slice(&bytes).context("the canonical event is JSON")?;
    signed["signature"] = json!({"key_id": key_id, "alg": "ed25519", "sig": BASE64.encode(signature.to_bytes())});
    Ok(signed)
}

/// The Idempotency-Key of batch `index` (0-based) of `batches`: the given key for a single
/// batch, `<key>-<n>` (n from 1) for several, or a fresh UUID each.
pub fn idempotency_key(given: Option<&str>, index: usize, batches: usize) -> String {
    match given {
        Some(key) if batches == 1 => key.to_owned(),
        Some(key) => format!("{key}-{}", index + 1),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

/// Sends the events in batches and prints one line (or JSON object) per appended event.
pub async fn run(client: &Client, events: &[Value], given_key: Option<&str>, json_output: bool) -> Result<()> {
    let batches: Vec<&[Value]> = events.chunks(MAX_BATCH).collect();
    let mut sent = 0usize;
    for (i, batch) in batches.iter().enumerate() {
        let key = idempotency_key(given_key, i, batches.len());
        let body = json!({ "events": batch });
        let response =
            client.send(Method::POST, "/v1/events/batch", &[], Some(&body), Some(&key)).await.with_context(|| {
                format!(
                    "batch {} of {} (events {} to {}, Idempotency-Key {key})",
                    i + 1,
                    batches.len(),
                    sent,
                    sent + batch.len() - 1
                )
            })?;
        let appended = response.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
        for event in &appended {
            if json_output {
                println!("{event}");
            } else {
                let seq = event.get("seq").map_or_else(String::new, Value::to_string);
                let id = event.get("id").and_then(Value::as_str).unwrap_or("");
                println!("appended seq {seq} id {id}");
            }
        }
        sent += batch.len();
    }
    if !json_output {
        eprintln!("{sent} event(s) appended in {} request(s)", batches.len());
    }
    Ok(())
}
