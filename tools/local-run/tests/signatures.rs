//! Publisher signatures end to end: a tenant registers an Ed25519 key, its publisher signs events
//! over their canonical form, and with `require_signatures` on, only validly signed events from an
//! active key are accepted.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::chain::canonical::signing_bytes;
use shared::chain::event::parse_event_value;
use support::Stack;

fn unsigned(action: &str) -> Value {
    json!({ "action": action, "actor": { "id": "svc-billing" }, "outcome": "success",
            "occurred_at": "2026-01-01T09:59:00.123456Z", "metadata": { "amount": 12.5 } })
}

/// Signs `event` as a publisher would: over the canonical form of the normalised event.
fn sign(event: &Value, key_id: &str, key: &SigningKey) -> Value {
    let normalised = parse_event_value(event).expect("parses").validate(chrono::Utc::now()).expect("valid");
    let sig = key.sign(&signing_bytes(&normalised));
    let mut signed = event.clone();
    signed["signature"] = json!({ "key_id": key_id, "alg": "ed25519", "sig": STANDARD.encode(sig.to_bytes()) });
    signed
}

#[tokio::test]
async fn required_signatures_admit_only_valid_signatures_from_active_keys() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let body = json!({ "key_id": "billing-1", "name": "billing", "public_key": STANDARD.encode(key.verifying_key().to_bytes()) });
    let registered = stack.call(Method::POST, "/v1/signing-keys", Some(&admin), Some(&body)).await?;
    assert_eq!(registered.status, StatusCode::CREATED, "{registered:?}");
    let again = stack.call(Method::POST, "/v1/signing-keys", Some(&admin), Some(&body)).await?;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    let bad_key = json!({ "name": "x", "public_key": "AAAA" });
    let rejected = stack.call(Method::POST, "/v1/signing-keys", Some(&admin), Some(&bad_key)).await?;
    assert_eq!(rejected.status, StatusCode::BAD_REQUEST, "{rejected:?}");

    // Before the setting, unsigned events are fine and signed ones are checked anyway.
    let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&unsigned("a.one"))).await?;
    assert_eq!(r.status, StatusCode::CREATED);
    let forged = sign(&unsigned("a.two"), "billing-1", &other);
    let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&forged)).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("signature"));

    let on =
        stack.call(Method::PATCH, "/v1/settings", Some(&admin), Some(&json!({ "require_signatures": true }))).await?;
    assert_eq!(on.status, StatusCode::OK, "{on:?}");
    assert_eq!(on.body["require_signatures"], true);

    let size = stack.tree_size(&admin).await?;
    let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&unsigned("a.three"))).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let unknown = sign(&unsigned("a.four"), "nobody", &key);
    let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&unknown)).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let tampered = {
        let mut t = sign(&unsigned("a.five"), "billing-1", &key);
        t["metadata"]["amount"] = json!(1000);
        t
    };
    let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&tampered)).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(stack.tree_size(&admin).await?, size, "a rejected event was written");

    let good = sign(&unsigned("a.six"), "billing-1", &key);
    let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&good)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let batch = json!({ "events": [sign(&unsigned("b.one"), "billing-1", &key), unsigned("b.two")] });
    let r = stack.call(Method::POST, "/v1/events/batch", Some(&admin), Some(&batch)).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("events[1]"), "{r:?}");

    // After revocation the key signs nothing new.
    let revoked = stack.call(Method::DELETE, "/v1/signing-keys/billing-1", Some(&admin), None).await?;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    assert!(revoked.body["revoked_at"].is_string());
    let r = stack
        .call(Method::POST, "/v1/events", Some(&admin), Some(&sign(&unsigned("a.seven"), "billing-1", &key)))
        .await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");

    // Every administrative change above is itself in the log.
    let listed = stack.call(Method::GET, "/v1/events?action=audit_log.*&order=asc", Some(&admin), None).await?;
    let actions: Vec<&str> =
        listed.body["events"].as_array().unwrap().iter().map(|e| e["event"]["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "audit_log.tenant.created",
            "audit_log.api_key.created",
            "audit_log.signing_key.registered",
            "audit_log.settings.updated",
            "audit_log.signing_key.revoked"
        ]
    );
    Ok(())
}
