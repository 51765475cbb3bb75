//! The API end to end over HTTP, through the local gateway and the real authorizer, on real
//! PostgreSQL and the local AWS endpoint: what a tenant application sees.

mod support;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::chain::checkpoint;
use shared::chain::hash::Hash;
use shared::chain::merkle;
use shared::chain::receipt::{verify_receipt, Receipt};
use support::{event, Stack};

fn hash(v: &Value) -> Hash {
    Hash::from_hex(v.as_str().expect("hex hash")).expect("32-byte hash")
}

#[tokio::test]
async fn appended_event_is_readable_provable_and_its_receipt_verifies() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let writer = stack.key(&admin, &["events:write"]).await?;
    let reader = stack.key(&admin, &["events:read"]).await?;

    let sent =
        json!({ "action": "user.login", "actor": { "id": "ada" }, "resource": { "type": "session", "id": "s1" } });
    let reply = stack.call(Method::POST, "/v1/events", Some(&writer), Some(&sent)).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let seq = reply.body["seq"].as_u64().unwrap();
    // Tenant creation was itself recorded as the tenant's first event.
    assert!(seq >= 1);

    // The receipt is signed by a published key and covers exactly what was acknowledged.
    let receipt: Receipt = serde_json::from_value(reply.body["receipt"].clone())?;
    let keys = stack.call(Method::GET, "/v1/receipts/public-key", Some(&reader), None).await?;
    let raw = keys.body["keys"][0]["public_key"].as_str().unwrap();
    let raw: [u8; 32] = base64::engine::general_purpose::STANDARD.decode(raw)?.try_into().unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&raw)?;
    verify_receipt(&receipt, &public)?;
    let receipt_json = &reply.body["receipt"];
    assert_eq!(receipt_json["tenant_id"], tenant);
    assert_eq!(receipt_json["event_id"], id);
    assert_eq!(receipt_json["leaf_hash"], reply.body["leaf_hash"]);
    assert_eq!(receipt_json["chain_hash"], reply.body["chain_hash"]);

    // The stored entry is what was sent, with the same hashes.
    let entry = stack.call(Method::GET, &format!("/v1/events/{id}"), Some(&reader), None).await?;
    assert_eq!(entry.status, StatusCode::OK);
    assert_eq!(entry.body["event"]["action"], "user.login");
    assert_eq!(entry.body["leaf_hash"], reply.body["leaf_hash"]);
    assert_eq!(entry.body["erased"], false);

    // Its inclusion proof verifies against the returned root.
    let proof = stack.call(Method::GET, &format!("/v1/events/{id}/proof"), Some(&reader), None).await?;
    assert_eq!(proof.status, StatusCode::OK, "{proof:?}");
    let path: Vec<Hash> = proof.body["audit_path"].as_array().unwrap().iter().map(hash).collect();
    let size = proof.body["tree_size"].as_u64().unwrap();
    merkle::verify_inclusion(&hash(&proof.body["leaf_hash"]), seq, size, &path, &hash(&proof.body["root"]))?;

    // A writer key cannot read, a reader key cannot write: 403 naming the scope.
    let denied = stack.call(Method::GET, "/v1/events", Some(&writer), None).await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_code(), "forbidden");
    assert!(denied.body["error"]["message"].as_str().unwrap().contains("events:read"));
    let denied = stack.call(Method::POST, "/v1/events", Some(&reader), Some(&event("a.b", "x"))).await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn a_tenant_checkpoint_is_proved_in_the_anchored_global_log() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let (_, other) = stack.tenant("globex").await?;
    for key in [&admin, &other] {
        let r = stack.call(Method::POST, "/v1/events", Some(key), Some(&event("doc.read", "u"))).await?;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let latest = stack.call(Method::GET, "/v1/checkpoints/latest", Some(&admin), None).await?;
    assert_eq!(latest.status, StatusCode::NOT_FOUND);
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let latest = stack.call(Method::GET, "/v1/checkpoints/latest", Some(&admin), None).await?;
    let size = latest.body["tree_size"].as_u64().unwrap();

    let proof = stack.call(Method::GET, &format!("/v1/checkpoints/{size}/global-proof"), Some(&admin), None).await?;
    assert_eq!(proof.status, StatusCode::OK, "{proof:?}");
    let b = &proof.body;
    assert_eq!(b["checkpoint"]["note"], latest.body["note"]);

    // The global log's entry is an ordinary entry: its leaf is recomputed from event and salt.
    let entry = &b["entry"];
    let salt = base64::engine::general_purpose::STANDARD.decode(entry["salt"].as_str().unwrap())?;
    let content = shared::chain::canonical::jcs(&entry["event"]);
    let recomputed = shared::chain::entry::Entry {
        tenant_id: uuid::Uuid::nil(),
        seq: entry["seq"].as_u64().unwrap(),
        id: entry["id"].as_str().unwrap().parse()?,
        received_at: entry["received_at"].as_str().unwrap().parse()?,
        content_digest: shared::chain::entry::content_digest(&salt, &content),
    };
    assert_eq!(recomputed.leaf_hash(), hash(&entry["leaf_hash"]));
    // It records this tenant's signed head exactly.
    let head = &entry["event"]["metadata"];
    assert_eq!(entry["event"]["resource"]["id"], tenant);
    assert_eq!(head["tree_size"], size);
    assert_eq!(head["root"], latest.body["root"]);
    let note = latest.body["note"].as_str().unwrap();
    assert_eq!(hash(&head["note_sha256"]), shared::chain::hash::sha256(&[note.as_bytes()]));

    // Included in the global log's signed checkpoint, which is the note anchored in S3.
    let global = &b["global_checkpoint"];
    let key = stack.call(Method::GET, "/v1/checkpoints/public-key", Some(&admin), None).await?;
    let der = base64::engine::general_purpose::STANDARD.decode(key.body["public_key"].as_str().unwrap())?;
    let global_note = global["note"].as_str().unwrap();
    let signed = checkpoint::verify(global_note, key.body["key_name"].as_str().unwrap(), &der)?;
    assert!(signed.origin.ends_with(&uuid::Uuid::nil().to_string()), "{}", signed.origin);
    assert_eq!(signed.size, 2, "one head per tenant");
    let path: Vec<Hash> = b["audit_path"].as_array().unwrap().iter().map(hash).collect();
    let leaf_index = b["leaf_index"].as_u64().unwrap();
    merkle::verify_inclusion(&recomputed.leaf_hash(), leaf_index, signed.size, &path, &signed.root)?;
    let anchors = shared::aws::anchors::AnchorStore::new(&stack.sdk, &stack.env["ANCHOR_BUCKET"], 1);
    assert_eq!(b["anchor_key"], anchors.key(signed.size));
    assert_eq!(anchors.get(signed.size).await?.as_deref(), Some(global_note));

    // Only the tenant's own checkpoints: another size is simply not found.
    let missing =
        stack.call(Method::GET, &format!("/v1/checkpoints/{}/global-proof", size + 7), Some(&admin), None).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{missing:?}");
    Ok(())
}

#[tokio::test]
async fn checkpoints_are_signed_and_verify_with_the_published_key() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    for i in 0..5 {
        let r =
            stack.call(Method::POST, "/v1/events", Some(&admin), Some(&event("doc.read", &format!("u{i}")))).await?;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let missing = stack.call(Method::GET, "/v1/checkpoints/latest", Some(&admin), None).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let latest = stack.call(Method::GET, "/v1/checkpoints/latest", Some(&admin), None).await?;
    assert_eq!(latest.status, StatusCode::OK, "{latest:?}");
    let key = stack.call(Method::GET, "/v1/checkpoints/public-key", Some(&admin), None).await?;
    let der = base64::engine::general_purpose::STANDARD.decode(key.body["public_key"].as_str().unwrap())?;
    let verified =
        checkpoint::verify(latest.body["note"].as_str().unwrap(), key.body["key_name"].as_str().unwrap(), &der)?;
    let size = latest.body["tree_size"].as_u64().unwrap();
    assert_eq!(verified.size, size);
    assert_eq!(verified.origin, key.body["origin"].as_str().unwrap());
    assert!(verified.origin.ends_with(&tenant));
    assert_eq!(key.body["retired"], json!([]), "no key was rotated out");
    let by_size = stack.call(Method::GET, &format!("/v1/checkpoints/{size}"), Some(&admin), None).await?;
    assert_eq!(by_size.body["note"], latest.body["note"]);

    // Append more; a consistency proof links the signed tree to the current one.
    stack.call(Method::POST, "/v1/events", Some(&admin), Some(&event("doc.read", "late"))).await?;
    let c = stack.call(Method::GET, &format!("/v1/proofs/consistency?from={size}"), Some(&admin), None).await?;
    assert_eq!(c.status, StatusCode::OK, "{c:?}");
    let proof: Vec<Hash> = c.body["proof"].as_array().unwrap().iter().map(hash).collect();
    let to = c.body["to"].as_u64().unwrap();
    assert_eq!(to, size + 1);
    merkle::verify_consistency(size, to, &verified.root, &hash(&c.body["to_root"]), &proof)?;

    // And the whole chain verifies against the signed checkpoint.
    let report = stack.call(Method::POST, "/v1/verify", Some(&admin), None).await?;
    assert_eq!(report.status, StatusCode::OK, "{report:?}");
    assert_eq!(report.body["ok"], true, "{report:?}");
    assert_eq!(report.body["verified"], to);
    assert_eq!(report.body["checkpoint_size"], size);
    Ok(())
}

#[tokio::test]
async fn requests_without_a_valid_key_never_reach_a_function() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let none = stack.call(Method::GET, "/v1/events", None, None).await?;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body, json!({ "message": "Unauthorized" }));
    for bad in ["garbage", "alk_", "Bearer", &admin[..admin.len() - 1], &format!("{admin}x")] {
        let reply = stack.call(Method::GET, "/v1/events", Some(bad), None).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "key {bad:?}");
        assert_eq!(reply.body, json!({ "message": "Forbidden" }));
    }
    let unknown_route = stack.call(Method::GET, "/v1/nothing", Some(&admin), None).await?;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_revoked_key_is_refused() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let created = stack
        .call(Method::POST, "/v1/keys", Some(&admin), Some(&json!({ "name": "w", "scopes": ["events:read"] })))
        .await?;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let key_id = created.body["key"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(stack.call(Method::GET, "/v1/events", Some(&secret), None).await?.status, StatusCode::OK);

    let listed = stack.call(Method::GET, "/v1/keys", Some(&admin), None).await?;
    assert!(listed.body["keys"].as_array().unwrap().iter().any(|k| k["key_id"] == key_id));
    assert!(!listed.body.to_string().contains(&secret), "a key listing must not contain secrets");

    let revoked = stack.call(Method::DELETE, &format!("/v1/keys/{key_id}"), Some(&admin), None).await?;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    assert!(revoked.body["key"]["revoked_at"].is_string());
    assert_eq!(stack.call(Method::GET, "/v1/events", Some(&secret), None).await?.status, StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn tenants_never_see_each_other() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant_a, key_a) = stack.tenant("a").await?;
    let (_, key_b) = stack.tenant("b").await?;
    let a_event = stack.call(Method::POST, "/v1/events", Some(&key_a), Some(&event("secret.read", "alice"))).await?;
    let id = a_event.body["id"].as_str().unwrap().to_owned();

    let get = stack.call(Method::GET, &format!("/v1/events/{id}"), Some(&key_b), None).await?;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(get.error_code(), "not_found");
    let proof = stack.call(Method::GET, &format!("/v1/events/{id}/proof"), Some(&key_b), None).await?;
    assert_eq!(proof.status, StatusCode::NOT_FOUND);
    let list = stack.call(Method::GET, "/v1/events?action=secret.read", Some(&key_b), None).await?;
    assert_eq!(list.body["events"], json!([]));

    // A body naming another tenant is refused and writes nothing anywhere.
    let size_a = stack.tree_size(&key_a).await?;
    let size_b = stack.tree_size(&key_b).await?;
    let mut forged = event("x.y", "mallory");
    forged["tenant_id"] = json!(tenant_a);
    let reply = stack.call(Method::POST, "/v1/events", Some(&key_b), Some(&forged)).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("tenant_id"), "{reply:?}");
    assert_eq!(stack.tree_size(&key_a).await?, size_a);
    assert_eq!(stack.tree_size(&key_b).await?, size_b);
    Ok(())
}

#[tokio::test]
async fn idempotent_retry_returns_the_same_body_and_a_changed_body_conflicts() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let send = |body: Value, idem: &'static str| {
        let request = stack
            .http
            .post(format!("{}/v1/events", stack.base))
            .bearer_auth(&key)
            .header("Idempotency-Key", idem)
            .json(&body);
        async move {
            let r = request.send().await?;
            let status = r.status();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            let body: Value = r.json().await?;
            anyhow::Ok((status, replayed, body))
        }
    };
    let (status, replayed, first) = send(event("a.b", "u"), "retry-1").await?;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    let size = stack.tree_size(&key).await?;
    let (status, replayed, again) = send(event("a.b", "u"), "retry-1").await?;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, first);
    assert_eq!(stack.tree_size(&key).await?, size);
    let (status, _, conflict) = send(event("a.c", "u"), "retry-1").await?;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    assert_eq!(stack.tree_size(&key).await?, size);
    Ok(())
}

#[tokio::test]
async fn a_batch_is_appended_in_order_with_one_receipt_each() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let events: Vec<Value> = (0..50).map(|i| event("bulk.import", &format!("u{i}"))).collect();
    let reply = stack.call(Method::POST, "/v1/events/batch", Some(&key), Some(&json!({ "events": events }))).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let acked = reply.body["events"].as_array().unwrap();
    assert_eq!(acked.len(), 50);
    let first = acked[0]["seq"].as_u64().unwrap();
    for (i, a) in acked.iter().enumerate() {
        assert_eq!(a["seq"].as_u64().unwrap(), first + i as u64);
        assert_eq!(a["receipt"]["seq"], a["seq"]);
    }
    let listed =
        stack.call(Method::GET, "/v1/events?action=bulk.import&order=asc&limit=1000", Some(&key), None).await?;
    let actors: Vec<&str> =
        listed.body["events"].as_array().unwrap().iter().map(|e| e["event"]["actor"]["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
    assert_eq!(actors, expected);
    Ok(())
}

#[tokio::test]
async fn stats_count_by_action_outcome_and_severity() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    for (action, outcome) in [("login", "success"), ("login", "failure"), ("login", "failure"), ("export", "success")] {
        let e = json!({ "action": action, "actor": { "id": "u" }, "outcome": outcome, "severity": "high" });
        assert_eq!(stack.call(Method::POST, "/v1/events", Some(&key), Some(&e)).await?.status, StatusCode::CREATED);
    }
    let stats = stack.call(Method::GET, "/v1/stats", Some(&key), None).await?;
    assert_eq!(stats.status, StatusCode::OK, "{stats:?}");
    assert_eq!(stats.body["by_action"]["login"], 3);
    assert_eq!(stats.body["by_action"]["export"], 1);
    assert_eq!(stats.body["by_outcome"]["failure"], 2);
    assert_eq!(stats.body["by_severity"]["high"], 4);
    Ok(())
}

#[tokio::test]
async fn a_platform_key_issues_a_key_for_an_existing_tenant_only() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let body = json!({ "name": "recovered", "scopes": ["admin", "events:read"] });
    let issued =
        stack.call(Method::POST, &format!("/v1/tenants/{tenant}/keys"), Some(&stack.platform_key), Some(&body)).await?;
    assert_eq!(issued.status, StatusCode::CREATED, "{issued:?}");
    let key = issued.body["secret"].as_str().unwrap();
    assert_eq!(issued.body["key"]["tenant_id"], tenant);
    assert_eq!(stack.call(Method::GET, "/v1/keys", Some(key), None).await?.status, StatusCode::OK);

    let unknown = uuid::Uuid::now_v7();
    let missing = stack
        .call(Method::POST, &format!("/v1/tenants/{unknown}/keys"), Some(&stack.platform_key), Some(&body))
        .await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{missing:?}");
    // The service-wide log of tenant heads exists as a tenant, but no key may act for it.
    let global = uuid::Uuid::nil();
    let reserved =
        stack.call(Method::POST, &format!("/v1/tenants/{global}/keys"), Some(&stack.platform_key), Some(&body)).await?;
    assert_eq!(reserved.status, StatusCode::NOT_FOUND, "{reserved:?}");
    let not_platform =
        stack.call(Method::POST, &format!("/v1/tenants/{tenant}/keys"), Some(&admin), Some(&body)).await?;
    assert_eq!(not_platform.status, StatusCode::FORBIDDEN);
    let platform_scope = json!({ "name": "x", "scopes": ["platform"] });
    let refused = stack
        .call(Method::POST, &format!("/v1/tenants/{tenant}/keys"), Some(&stack.platform_key), Some(&platform_scope))
        .await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn an_erasure_removes_a_subject_keeps_the_chain_verifiable_and_is_acknowledged() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let reader = stack.key(&admin, &["events:read"]).await?;
    let mut ids = Vec::new();
    for actor in ["ada", "bob", "ada"] {
        let r = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&event("doc.read", actor))).await?;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }

    let reply = stack.call(Method::POST, "/v1/erasures", Some(&admin), Some(&json!({ "actor_id": "ada" }))).await?;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["erased"], 2);
    let receipt: Receipt = serde_json::from_value(reply.body["recorded"]["receipt"].clone())?;
    let keys = stack.call(Method::GET, "/v1/receipts/public-key", Some(&reader), None).await?;
    let raw = keys.body["keys"][0]["public_key"].as_str().unwrap();
    let raw: [u8; 32] = base64::engine::general_purpose::STANDARD.decode(raw)?.try_into().unwrap();
    verify_receipt(&receipt, &ed25519_dalek::VerifyingKey::from_bytes(&raw)?)?;

    let erased = stack.call(Method::GET, &format!("/v1/events/{}", ids[0]), Some(&reader), None).await?;
    assert_eq!((erased.body["erased"].clone(), erased.body["event"].clone()), (json!(true), Value::Null));
    let kept = stack.call(Method::GET, &format!("/v1/events/{}", ids[1]), Some(&reader), None).await?;
    assert_eq!(kept.body["event"]["actor"]["id"], "bob");
    let found = stack.call(Method::GET, "/v1/events?actor_id=ada", Some(&reader), None).await?;
    assert_eq!(found.body["events"], json!([]));
    let report = stack.call(Method::POST, "/v1/verify", Some(&reader), None).await?;
    assert_eq!((report.body["ok"].clone(), report.body["erased"].clone()), (json!(true), json!(2)), "{report:?}");
    let recorded = stack.call(Method::GET, "/v1/events?action=audit_log.content.erased", Some(&reader), None).await?;
    assert_eq!(recorded.body["events"].as_array().map(Vec::len), Some(1));

    // Bad requests change nothing; only admins erase.
    let future = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    for body in [
        json!({}),
        json!({ "actor_id": "bob", "event_id": ids[1] }),
        json!({ "actor_id": "" }),
        json!({ "received_before": future }),
        json!({ "received_before": "yesterday" }),
        json!({ "actor_id": "bob", "tenant_id": "x" }),
    ] {
        let r = stack.call(Method::POST, "/v1/erasures", Some(&admin), Some(&body)).await?;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {r:?}");
        assert!(r.body["error"]["code"].is_string());
    }
    let unknown = json!({ "event_id": uuid::Uuid::now_v7() });
    let r = stack.call(Method::POST, "/v1/erasures", Some(&admin), Some(&unknown)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    let r = stack.call(Method::POST, "/v1/erasures", Some(&reader), Some(&json!({ "actor_id": "bob" }))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let kept = stack.call(Method::GET, &format!("/v1/events/{}", ids[1]), Some(&reader), None).await?;
    assert_eq!(kept.body["event"]["actor"]["id"], "bob");
    Ok(())
}

/// Holds every SQS `SendMessage` (by `X-Amz-Target`) unanswered, in the SDK's HTTP client, so
/// the send after commit waits out its limit; every other call goes through.
#[derive(Debug, Clone)]
struct HeldSends(aws_smithy_runtime_api::client::http::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for HeldSends {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(HeldSendConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct HeldSendConnector(aws_smithy_runtime_api::client::http::SharedHttpConnector);

impl aws_smithy_runtime_api::client::http::HttpConnector for HeldSendConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        if request.headers().get("x-amz-target") == Some("AmazonSQS.SendMessage") {
            return aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(std::future::pending());
        }
        self.0.call(request)
    }
}

/// Waits until an event with `action` of the stack's database is committed.
async fn committed(su: &tokio_postgres::Client, action: &str) -> anyhow::Result<()> {
    for _ in 0..500 {
        let n: i64 = su.query_one("SELECT count(*) FROM events WHERE action = $1", &[&action]).await?.get(0);
        if n > 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    anyhow::bail!("{action} was never committed")
}

#[tokio::test]
async fn an_append_waiting_on_a_slow_queue_does_not_hold_the_connection_the_next_append_needs() -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let client = HeldSends(
        aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https(),
    );
    // One connection per function, as in Lambda: an append that kept it through its send after
    // commit would make the next append wait for the send's limit.
    let stack = Stack::start_with_env(0, &[("DATABASE_POOL_SIZE", "1")], move |sdk| {
        sdk.to_builder().http_client(client).build()
    })
    .await?;
    let (_, admin) = stack.tenant("held").await?;
    let su = stack.db.superuser().await?;
    let first_done = AtomicBool::new(false);
    let first = async {
        let reply = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&event("held.first", "a"))).await;
        first_done.store(true, Ordering::SeqCst);
        reply
    };
    let second = async {
        committed(&su, "held.first").await?;
        let body = event("held.second", "b");
        let call = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&body));
        let watch = async {
            committed(&su, "held.second").await?;
            Ok::<bool, anyhow::Error>(first_done.load(Ordering::SeqCst))
        };
        let (reply, first_was_done) = tokio::join!(call, watch);
        Ok::<_, anyhow::Error>((reply?, first_was_done?))
    };
    let (first, second) = tokio::join!(first, second);
    let (first, (second, first_was_done)) = (first?, second?);
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_eq!(second.status, StatusCode::CREATED, "{second:?}");
    assert!(!first_was_done, "the second append committed only once the first had answered");
    // Neither row was sent: both wait for the relay.
    let unsent: i64 = su
        .query_one("SELECT count(*) FROM outbox o JOIN events e ON e.tenant_id = o.tenant_id AND e.seq = o.first_seq WHERE o.sent_at IS NULL AND e.action LIKE 'held.%'", &[])
        .await?
        .get(0);
    assert_eq!(unsent, 2);
    Ok(())
}
