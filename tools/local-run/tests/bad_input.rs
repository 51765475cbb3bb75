//! Every kind of bad input gets a precise 4xx with the JSON error body, never a 500, and writes
//! nothing: after each rejected request the tenant's tree has the size it had before.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{event, Stack};

/// (what, body, expected status, expected code, a word the message must contain)
fn bad_events() -> Vec<(&'static str, Value, u16, &'static str, &'static str)> {
    let mut deep = json!("leaf");
    for _ in 0..20 {
        deep = json!({ "k": deep });
    }
    let big = "x".repeat(70 * 1024);
    vec![
        ("missing action", json!({ "actor": { "id": "u" } }), 400, "invalid_request", "action"),
        ("missing actor", json!({ "action": "a.b" }), 400, "invalid_request", "actor"),
        ("wrong type", json!({ "action": 5, "actor": { "id": "u" } }), 400, "invalid_request", "action"),
        (
            "unknown outcome",
            json!({ "action": "a", "actor": { "id": "u" }, "outcome": "maybe" }),
            400,
            "invalid_request",
            "outcome",
        ),
        (
            "unknown severity",
            json!({ "action": "a", "actor": { "id": "u" }, "severity": "extreme" }),
            400,
            "invalid_request",
            "severity",
        ),
        (
            "unknown field",
            json!({ "action": "a", "actor": { "id": "u" }, "colour": "red" }),
            400,
            "invalid_request",
            "colour",
        ),
        (
            "body tenant_id",
            json!({ "action": "a", "actor": { "id": "u" }, "tenant_id": "x" }),
            400,
            "invalid_request",
            "tenant_id",
        ),
        (
            "bad time",
            json!({ "action": "a", "actor": { "id": "u" }, "occurred_at": "yesterday" }),
            400,
            "invalid_request",
            "occurred_at",
        ),
        (
            "time without zone",
            json!({ "action": "a", "actor": { "id": "u" }, "occurred_at": "2026-01-01T00:00:00" }),
            400,
            "invalid_request",
            "occurred_at",
        ),
        (
            "deep metadata",
            json!({ "action": "a", "actor": { "id": "u" }, "metadata": deep }),
            400,
            "invalid_request",
            "metadata",
        ),
        (
            "oversize event",
            json!({ "action": "a", "actor": { "id": "u" }, "metadata": { "blob": big } }),
            400,
            "invalid_request",
            "bytes",
        ),
        (
            "unsafe integer",
            json!({ "action": "a", "actor": { "id": "u" }, "metadata": { "n": 9007199254740993u64 } }),
            400,
            "invalid_request",
            "metadata",
        ),
        (
            "signature with unknown key",
            json!({ "action": "a", "actor": { "id": "u" }, "outcome": "success", "occurred_at": "2026-01-01T10:00:00Z", "signature": { "key_id": "nope", "alg": "ed25519", "sig": "AAAA" } }),
            400,
            "invalid_request",
            "signature",
        ),
        ("not an object", json!([1, 2]), 400, "invalid_request", ""),
    ]
}

#[tokio::test]
async fn rejects_each_bad_event_precisely_and_writes_nothing() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let size = stack.tree_size(&key).await?;
    for (what, body, status, code, word) in bad_events() {
        let reply = stack.call(Method::POST, "/v1/events", Some(&key), Some(&body)).await?;
        assert_eq!(reply.status.as_u16(), status, "{what}: {reply:?}");
        assert_eq!(reply.error_code(), code, "{what}");
        assert!(reply.body["error"]["message"].as_str().unwrap().contains(word), "{what}: {reply:?}");
        // The same event inside a batch is refused too, and the message names its index.
        let batch = json!({ "events": [event("ok.one", "u"), body] });
        let reply = stack.call(Method::POST, "/v1/events/batch", Some(&key), Some(&batch)).await?;
        assert_eq!(reply.status.as_u16(), status, "{what} in a batch: {reply:?}");
        if !word.is_empty() {
            assert!(reply.body["error"]["message"].as_str().unwrap().contains("events[1]"), "{what}: {reply:?}");
        }
    }
    assert_eq!(stack.tree_size(&key).await?, size, "a rejected request wrote something");
    Ok(())
}

#[tokio::test]
async fn rejects_malformed_bodies() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let size = stack.tree_size(&key).await?;
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("invalid JSON", "application/json", b"{\"action\": ".to_vec(), 400, "invalid_json"),
        ("trailing garbage", "application/json", b"{} {}".to_vec(), 400, "invalid_json"),
        (
            "bad UTF-8",
            "application/json",
            b"{\"action\":\"\xff\xfe\",\"actor\":{\"id\":\"u\"}}".to_vec(),
            400,
            "invalid_json",
        ),
        ("empty body", "application/json", Vec::new(), 400, "invalid_json"),
        ("not JSON content type", "text/plain", b"{}".to_vec(), 415, "unsupported_media_type"),
        (
            "nesting beyond the parser's limit",
            "application/json",
            format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            400,
            "invalid_json",
        ),
    ];
    // A body over 6 MB never reaches a function: its event is over Lambda's invocation limit and
    // the gateway answers as AWS does (gateway_limits.rs).
    for (what, content_type, body, status, code) in cases {
        let reply = stack.call_raw(Method::POST, "/v1/events", &key, content_type, body).await?;
        assert_eq!(reply.status.as_u16(), status, "{what}: {reply:?}");
        assert_eq!(reply.error_code(), code, "{what}");
    }
    let too_many: Vec<Value> = (0..1001).map(|i| event("a.b", &format!("u{i}"))).collect();
    let reply = stack.call(Method::POST, "/v1/events/batch", Some(&key), Some(&json!({ "events": too_many }))).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("1001"));
    let empty = stack.call(Method::POST, "/v1/events/batch", Some(&key), Some(&json!({ "events": [] }))).await?;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let unknown =
        stack.call(Method::POST, "/v1/events/batch", Some(&key), Some(&json!({ "events": [], "x": 1 }))).await?;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let bad_idem = stack
        .http
        .post(format!("{}/v1/events", stack.base))
        .bearer_auth(&key)
        .header("Idempotency-Key", "has space")
        .json(&event("a.b", "u"))
        .send()
        .await?;
    assert_eq!(bad_idem.status(), StatusCode::BAD_REQUEST);
    assert_eq!(stack.tree_size(&key).await?, size, "a rejected request wrote something");
    Ok(())
}

#[tokio::test]
async fn rejects_bad_query_parameters_and_treats_sql_as_text() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    stack.call(Method::POST, "/v1/events", Some(&key), Some(&event("user.login", "u"))).await?;
    for (query, word) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("order=sideways", "order"),
        ("from=yesterday", "from"),
        ("outcome=maybe", "outcome"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
    ] {
        let reply = stack.call(Method::GET, &format!("/v1/events?{query}"), Some(&key), None).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {reply:?}");
        assert!(reply.body["error"]["message"].as_str().unwrap().contains(word), "{query}: {reply:?}");
    }
    for filter in ["action", "actor_id", "resource_type", "resource_id", "source", "q"] {
        for value in ["' OR 1=1 --", "%", "_", "\\", "user.%", "'; DROP TABLE events; --"] {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let reply = stack.call(Method::GET, &format!("/v1/events?{filter}={encoded}"), Some(&key), None).await?;
            assert_eq!(reply.status, StatusCode::OK, "{filter}={value}: {reply:?}");
            assert_eq!(reply.body["events"], json!([]), "{filter}={value} matched something");
        }
    }
    for (path, status) in [
        ("/v1/events/not-a-uuid", 404),
        ("/v1/events/not-a-uuid/proof", 404),
        ("/v1/checkpoints/abc", 404),
        ("/v1/proofs/consistency", 400),
        ("/v1/proofs/consistency?from=5&to=2", 400),
        ("/v1/proofs/consistency?from=0&to=999999", 400),
        ("/v1/stats?from=nope", 400),
    ] {
        let reply = stack.call(Method::GET, path, Some(&key), None).await?;
        assert_eq!(reply.status.as_u16(), status, "{path}: {reply:?}");
        reply.error_code();
    }
    Ok(())
}
