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
        // Refused before the event is looked at, as JSON that is not strict (below).
        (
            "unsafe integer",
            json!({ "action": "a", "actor": { "id": "u" }, "metadata": { "n": 9007199254740993u64 } }),
            400,
            "invalid_json",
            "metadata.n",
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

/// (what, path, body, the message). Each body is sent as raw bytes: a JSON serialiser could not
/// write a duplicate name or keep these number spellings.
const NOT_STRICT: &[(&str, &str, &str, &str)] = &[
    (
        "duplicate at the root",
        "/v1/events",
        r#"{"action":"a.b","action":"c.d","actor":{"id":"u"}}"#,
        r#"duplicate member name "action" at action"#,
    ),
    (
        "duplicate in actor",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u","type":"user","id":"v"}}"#,
        r#"duplicate member name "id" at actor.id"#,
    ),
    (
        "duplicate in metadata",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"k":1,"k":1}}"#,
        r#"duplicate member name "k" at metadata.k"#,
    ),
    (
        "duplicate in a batch element",
        "/v1/events/batch",
        r#"{"events":[{"action":"a.b","actor":{"id":"u"}},{"action":"a.b","actor":{"id":"u"},"action":"c.d"}]}"#,
        r#"duplicate member name "action" at events[1].action"#,
    ),
    (
        "escaped duplicate",
        "/v1/events",
        r#"{"action":"a.b","\u0061ction":"c.d","actor":{"id":"u"}}"#,
        r#"duplicate member name "action" at action"#,
    ),
    (
        "2^64",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"n":18446744073709551616}}"#,
        "integer 18446744073709551616 at metadata.n is outside +-(2^53-1); send it as a string",
    ),
    (
        "10^20",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"n":100000000000000000000}}"#,
        "integer 100000000000000000000 at metadata.n is outside +-(2^53-1); send it as a string",
    ),
    (
        "2^53+1",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"n":9007199254740993}}"#,
        "integer 9007199254740993 at metadata.n is outside +-(2^53-1); send it as a string",
    ),
    (
        "1e20",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"n":1e20}}"#,
        "number 1e20 at metadata.n is the integer 100000000000000000000, outside +-(2^53-1); send it as a string",
    ),
    (
        "a number that rounds",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"x":0.10000000000000001}}"#,
        "number 0.10000000000000001 at metadata.x is not exactly an IEEE 754 double (the nearest is 0.1); send it as a string",
    ),
    (
        "a lone surrogate",
        "/v1/events",
        r#"{"action":"a.b","actor":{"id":"u","name":"\ud800"}}"#,
        "string at actor.name holds a lone surrogate escape (\\ud800 to \\udfff without its pair)",
    ),
    (
        "a noncharacter",
        "/v1/events/batch",
        r#"{"events":[{"action":"a.b","actor":{"id":"u"},"metadata":{"s":"\uffff"}}]}"#,
        "string at events[0].metadata.s holds the noncharacter U+FFFF",
    ),
];

#[tokio::test]
async fn rejects_json_that_is_not_strict_naming_the_path_and_writes_nothing() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let size = stack.tree_size(&key).await?;
    for &(what, path, body, message) in NOT_STRICT {
        let reply = stack.call_raw(Method::POST, path, &key, "application/json", body.as_bytes().to_vec()).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}: {reply:?}");
        assert_eq!(reply.body, json!({ "error": { "code": "invalid_json", "message": message } }), "{what}");
    }
    assert_eq!(stack.tree_size(&key).await?, size, "a rejected request wrote something");

    // Routes whose bodies are not events: each is recorded in the tenant's chain when it
    // succeeds, so an unchanged tree means nothing was done.
    let settings = stack.call(Method::GET, "/v1/settings", Some(&key), None).await?;
    let keys = stack.call(Method::GET, "/v1/keys", Some(&key), None).await?;
    let others = [
        (
            Method::PATCH,
            "/v1/settings",
            r#"{"require_signatures":false,"require_signatures":true}"#,
            r#"duplicate member name "require_signatures" at require_signatures"#,
        ),
        (
            Method::POST,
            "/v1/keys",
            r#"{"name":"reader","scopes":["events:read"],"name":"admin"}"#,
            r#"duplicate member name "name" at name"#,
        ),
        (
            Method::POST,
            "/v1/exports",
            r#"{"format":"csv","filter":{"limit":18446744073709551616}}"#,
            "integer 18446744073709551616 at filter.limit is outside +-(2^53-1); send it as a string",
        ),
    ];
    for (method, path, body, message) in others {
        let reply = stack.call_raw(method, path, &key, "application/json", body.as_bytes().to_vec()).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {reply:?}");
        assert_eq!(reply.body, json!({ "error": { "code": "invalid_json", "message": message } }), "{path}");
    }
    assert_eq!(stack.call(Method::GET, "/v1/settings", Some(&key), None).await?.body, settings.body);
    assert_eq!(stack.call(Method::GET, "/v1/keys", Some(&key), None).await?.body, keys.body);
    let exports = stack.call(Method::GET, "/v1/exports", Some(&key), None).await?;
    assert_eq!(exports.status, StatusCode::OK, "{exports:?}");
    assert_eq!(exports.body["exports"], json!([]), "no export was created");
    assert_eq!(stack.tree_size(&key).await?, size, "a rejected request wrote something");

    // The same bodies made strict are accepted, so each refusal above was the strict check.
    let strict = r#"{"action":"a.b","actor":{"id":"u"},"metadata":{"n":9007199254740991,"x":0.1,"s":"\ud83d\ude00"}}"#;
    let reply =
        stack.call_raw(Method::POST, "/v1/events", &key, "application/json", strict.as_bytes().to_vec()).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(stack.tree_size(&key).await?, size + 1);
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
