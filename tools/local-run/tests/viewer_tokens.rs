//! Viewer tokens end to end, through the local gateway and the real authorizer on PostgreSQL and
//! the local AWS endpoint: a token reads only what its pin selects, everywhere it reads, and
//! nothing else gets through.

mod support;

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::auth::Pin;
use shared::aws::viewer_tokens::{ViewerScope, ViewerTokenMac, ViewerTokenPayload};
use support::{event, Stack};

/// Issues a viewer token with an admin key; the whole 201 body.
async fn issue(stack: &Stack, admin: &str, request: Value) -> Result<Value> {
    let reply = stack.call(Method::POST, "/v1/viewer-tokens", Some(admin), Some(&request)).await?;
    anyhow::ensure!(reply.status == StatusCode::CREATED, "issuing a viewer token: {reply:?}");
    Ok(reply.body)
}

async fn append(stack: &Stack, key: &str, action: &str, actor: &str) -> Result<String> {
    let reply = stack.call(Method::POST, "/v1/events", Some(key), Some(&event(action, actor))).await?;
    anyhow::ensure!(reply.status == StatusCode::CREATED, "{reply:?}");
    Ok(reply.body["id"].as_str().context("id")?.to_owned())
}

fn actors(reply: &support::Reply) -> Vec<String> {
    reply.body["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["event"]["actor"]["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A token made with the service's own MAC key, with whatever payload a test wants.
async fn crafted(stack: &Stack, payload: &ViewerTokenPayload) -> Result<String> {
    let mac = ViewerTokenMac::new(&stack.sdk, &stack.env["API_KEY_MAC_KEY_ID"]);
    Ok(mac.sign(payload).await?)
}

fn payload(tenant: &str, issued_at: i64, expires_at: i64) -> Result<ViewerTokenPayload> {
    Ok(ViewerTokenPayload {
        v: 1,
        tenant_id: tenant.parse()?,
        subject: "crafted".into(),
        scopes: vec![ViewerScope::Read],
        filter: Pin::new(),
        issued_at,
        expires_at,
        token_id: ViewerTokenPayload::new_token_id(),
    })
}

#[tokio::test]
async fn a_token_pinned_to_an_actor_reads_only_that_actors_events() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let bob_login = append(&stack, &admin, "user.login", "bob").await?;
    append(&stack, &admin, "doc.read", "bob").await?;
    let alice_login = append(&stack, &admin, "user.login", "alice").await?;
    stack.index_text(&tenant, &admin).await?;

    let issued =
        issue(&stack, &admin, json!({ "subject": "customer-42", "filter": { "actor_id": "bob" }, "expires_in": 600 }))
            .await?;
    let token = issued["token"].as_str().context("token")?.to_owned();
    assert!(token.starts_with("alv_"), "{token}");
    assert_eq!(issued["subject"], "customer-42");
    assert_eq!(issued["filter"], json!({ "actor_id": "bob" }));
    assert_eq!(issued["scopes"], json!(["read"]));
    let expires_at: chrono::DateTime<chrono::Utc> = issued["expires_at"].as_str().context("expires_at")?.parse()?;
    let lifetime = expires_at - chrono::Utc::now();
    assert!(lifetime <= chrono::Duration::seconds(600) && lifetime > chrono::Duration::seconds(500), "{lifetime}");

    // Listing: bob's events only, whatever the query asks for.
    let all = stack.call(Method::GET, "/v1/events", Some(&token), None).await?;
    assert_eq!(all.status, StatusCode::OK, "{all:?}");
    assert_eq!(actors(&all), ["bob", "bob"]);
    let logins = stack.call(Method::GET, "/v1/events?action=user.login", Some(&token), None).await?;
    assert_eq!(actors(&logins), ["bob"]);
    let outside = stack.call(Method::GET, "/v1/events?actor_id=alice", Some(&token), None).await?;
    assert_eq!(outside.status, StatusCode::OK, "a contradiction is an empty page, not an error: {outside:?}");
    assert!(actors(&outside).is_empty(), "{outside:?}");
    assert!(outside.body["next_cursor"].is_null());
    // Full-text search too (PostgreSQL's here; the same filter reaches OpenSearch).
    let searched = stack.call(Method::GET, "/v1/events?q=user.login", Some(&token), None).await?;
    assert_eq!(searched.status, StatusCode::OK, "{searched:?}");
    assert_eq!(actors(&searched), ["bob"]);
    let unpinned = stack.call(Method::GET, "/v1/events?q=user.login", Some(&admin), None).await?;
    assert_eq!(actors(&unpinned).len(), 2, "the admin key sees both logins: {unpinned:?}");

    // By id and its proof: bob's are there, alice's do not exist.
    for path in [format!("/v1/events/{bob_login}"), format!("/v1/events/{bob_login}/proof")] {
        let reply = stack.call(Method::GET, &path, Some(&token), None).await?;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
    }
    for path in [format!("/v1/events/{alice_login}"), format!("/v1/events/{alice_login}/proof")] {
        let reply = stack.call(Method::GET, &path, Some(&token), None).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
        let unknown = stack
            .call(Method::GET, &path.replace(&alice_login, &uuid::Uuid::now_v7().to_string()), Some(&token), None)
            .await?;
        assert_eq!(reply.body, unknown.body, "outside the pin reads exactly like an unknown id");
    }

    // Tenant-wide figures, writes and administration are refused.
    let stats = stack.call(Method::GET, "/v1/stats", Some(&token), None).await?;
    assert_eq!((stats.status, stats.error_code()), (StatusCode::FORBIDDEN, "forbidden"));
    let verify = stack.call(Method::POST, "/v1/verify", Some(&token), None).await?;
    assert_eq!(verify.status, StatusCode::FORBIDDEN, "{verify:?}");
    let write = stack.call(Method::POST, "/v1/events", Some(&token), Some(&event("a.b", "bob"))).await?;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{write:?}");
    let key =
        stack.call(Method::POST, "/v1/keys", Some(&token), Some(&json!({ "name": "x", "scopes": ["admin"] }))).await?;
    assert_eq!(key.status, StatusCode::FORBIDDEN, "{key:?}");
    let nested = stack.call(Method::POST, "/v1/viewer-tokens", Some(&token), Some(&json!({ "subject": "s" }))).await?;
    assert_eq!(nested.status, StatusCode::FORBIDDEN, "a viewer token cannot issue tokens: {nested:?}");
    let export = stack.call(Method::POST, "/v1/exports", Some(&token), Some(&json!({ "format": "jsonl" }))).await?;
    assert_eq!(export.status, StatusCode::FORBIDDEN, "a read-only token cannot export: {export:?}");

    // whoami shows the token for what it is.
    let me = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.body["kind"], "viewer_token");
    assert_eq!(me.body["subject"], "customer-42");
    assert_eq!(me.body["filter"], json!({ "actor_id": "bob" }));
    assert_eq!(me.body["scopes"], json!(["events:read"]));
    assert_eq!(me.body["expires_at"], issued["expires_at"]);
    assert!(me.body["key_id"].as_str().is_some_and(|k| k.starts_with("viewer:")), "{me:?}");
    Ok(())
}

#[tokio::test]
async fn an_action_prefix_pin_narrows_every_query() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    append(&stack, &admin, "user.login", "bob").await?;
    append(&stack, &admin, "user.logout", "bob").await?;
    append(&stack, &admin, "doc.read", "bob").await?;
    let issued = issue(&stack, &admin, json!({ "subject": "s", "filter": { "action_prefix": "user." } })).await?;
    let token = issued["token"].as_str().context("token")?;
    let all = stack.call(Method::GET, "/v1/events", Some(token), None).await?;
    assert_eq!(all.body["events"].as_array().map(Vec::len), Some(2), "{all:?}");
    let narrower = stack.call(Method::GET, "/v1/events?action=user.logout", Some(token), None).await?;
    assert_eq!(narrower.body["events"].as_array().map(Vec::len), Some(1), "{narrower:?}");
    let other = stack.call(Method::GET, "/v1/events?action=doc.*", Some(token), None).await?;
    assert_eq!(other.body["events"].as_array().map(Vec::len), Some(0), "{other:?}");
    Ok(())
}

#[tokio::test]
async fn a_token_of_one_tenant_never_sees_another_tenant() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin_a) = stack.tenant("a").await?;
    let (_, admin_b) = stack.tenant("b").await?;
    append(&stack, &admin_a, "user.login", "bob").await?;
    let b_event = append(&stack, &admin_b, "user.login", "bob").await?;
    let token_a = issue(&stack, &admin_a, json!({ "subject": "s", "filter": { "actor_id": "bob" } })).await?;
    let token_a = token_a["token"].as_str().context("token")?;
    let listed = stack.call(Method::GET, "/v1/events", Some(token_a), None).await?;
    let ids: Vec<&str> =
        listed.body["events"].as_array().context("events")?.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(&b_event.as_str()));
    for path in [format!("/v1/events/{b_event}"), format!("/v1/events/{b_event}/proof")] {
        let reply = stack.call(Method::GET, &path, Some(token_a), None).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
    }
    Ok(())
}

#[tokio::test]
async fn expired_overlong_and_tampered_tokens_are_refused() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let now = chrono::Utc::now().timestamp();

    // A valid MAC over a payload that is expired, or claims more than a day, is refused.
    let expired = crafted(&stack, &payload(&tenant, now - 7200, now - 3600)?).await?;
    let overlong = crafted(&stack, &payload(&tenant, now - 60, now + 2 * 86_400)?).await?;
    let fine = crafted(&stack, &payload(&tenant, now - 60, now + 600)?).await?;
    for (what, token) in [("expired", &expired), ("over 24 hours", &overlong)] {
        let reply = stack.call(Method::GET, "/v1/events", Some(token), None).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {reply:?}");
        assert_eq!(reply.body, json!({ "message": "Forbidden" }), "API Gateway's own refusal");
    }
    let ok = stack.call(Method::GET, "/v1/events", Some(&fine), None).await?;
    assert_eq!(ok.status, StatusCode::OK, "the crafted token itself is sound: {ok:?}");

    // A payload changed after issuing (a wider pin) no longer matches its MAC.
    let issued = issue(&stack, &admin, json!({ "subject": "s", "filter": { "actor_id": "bob" } })).await?;
    let token = issued["token"].as_str().context("token")?;
    let (body, mac) = token.strip_prefix("alv_").and_then(|t| t.split_once('.')).context("shape")?;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(body)?)?;
    claims["filter"] = json!({});
    let tampered = format!("alv_{}.{mac}", b64.encode(serde_json::to_vec(&claims)?));
    let other_mac = format!("alv_{body}.{}", b64.encode([0u8; 32]));
    for (what, token) in [("wider pin", tampered.as_str()), ("another MAC", other_mac.as_str())] {
        let reply = stack.call(Method::GET, "/v1/events", Some(token), None).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {reply:?}");
    }
    Ok(())
}

#[tokio::test]
async fn issuing_refuses_bad_lifetimes_scopes_and_filters() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let reader = stack.key(&admin, &["events:read"]).await?;
    for (body, expected) in [
        (json!({ "subject": "s", "expires_in": 86_401 }), "expires_in"),
        (json!({ "subject": "s", "expires_in": 59 }), "expires_in"),
        (json!({ "subject": "" }), "subject"),
        (json!({ "subject": "s", "scopes": ["export"] }), "scopes"),
        (json!({ "subject": "s", "scopes": ["write"] }), "scopes"),
        (json!({ "subject": "s", "filter": { "tenant_id": "x" } }), "filter.tenant_id"),
        (json!({ "subject": "s", "filter": { "q": "x" } }), "filter.q"),
        (json!({ "subject": "s", "filter": { "outcome": "meh" } }), "filter.outcome"),
        (json!({ "subject": "s", "filter": { "actor_id": 7 } }), "filter.actor_id"),
        (json!({ "subject": "s", "filter": { "action": "a", "action_prefix": "b" } }), "filter.action_prefix"),
        (json!({ "subject": "s", "tenant_id": "x" }), "tenant_id"),
    ] {
        let reply = stack.call(Method::POST, "/v1/viewer-tokens", Some(&admin), Some(&body)).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {reply:?}");
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let ok =
        issue(&stack, &admin, json!({ "subject": "s", "expires_in": 86_400, "scopes": ["read", "export"] })).await?;
    assert_eq!(ok["scopes"], json!(["read", "export"]));
    let denied = stack.call(Method::POST, "/v1/viewer-tokens", Some(&reader), Some(&json!({ "subject": "s" }))).await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "issuing needs the admin scope: {denied:?}");
    Ok(())
}

#[tokio::test]
async fn whoami_describes_an_api_key() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let reader = stack.key(&admin, &["events:read"]).await?;
    let me = stack.call(Method::GET, "/v1/whoami", Some(&reader), None).await?;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.body["tenant_id"], tenant);
    assert_eq!(me.body["kind"], "api_key");
    assert_eq!(me.body["scopes"], json!(["events:read"]));
    assert!(me.body.get("filter").is_none() && me.body.get("subject").is_none(), "{me:?}");
    let platform = stack.call(Method::GET, "/v1/whoami", Some(&stack.platform_key), None).await?;
    assert_eq!(platform.status, StatusCode::OK, "{platform:?}");
    assert_eq!(platform.body["tenant_id"], Value::Null);
    assert_eq!(platform.body["scopes"], json!(["platform"]));
    Ok(())
}

/// Requests an export, runs the export function and returns the finished job.
async fn export(stack: &Stack, pipes: &support::Pipelines, key: &str, request: Value) -> Result<Value> {
    let reply = stack.call(Method::POST, "/v1/exports", Some(key), Some(&request)).await?;
    anyhow::ensure!(reply.status == StatusCode::ACCEPTED, "{reply:?}");
    let id = reply.body["id"].as_str().context("id")?.to_owned();
    pipes.drain_exports().await?;
    let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(key), None).await?;
    anyhow::ensure!(job.status == StatusCode::OK, "{job:?}");
    Ok(job.body)
}

async fn exported_actors(job: &Value) -> Result<Vec<String>> {
    let url = job["download"]["data"]["url"].as_str().context("data URL")?;
    let data = reqwest::Client::new().get(url).send().await?.bytes().await?;
    data.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let row: Value = serde_json::from_slice(line)?;
            Ok(row["event"]["actor"]["id"].as_str().context("actor")?.to_owned())
        })
        .collect()
}

async fn manifest(job: &Value) -> Result<Value> {
    let url = job["download"]["manifest"]["url"].as_str().context("manifest URL")?;
    Ok(reqwest::Client::new().get(url).send().await?.json().await?)
}

#[tokio::test]
async fn a_pinned_export_holds_only_the_pins_rows_and_stays_private_to_the_pin() -> Result<()> {
    let node = localstack::opensearch::OpenSearch::shared()?.url();
    let (stack, pipes) = Stack::start_pipelines(&node, 3).await?;
    let (_, admin) = stack.tenant("acme").await?;
    for actor in ["bob", "alice", "bob", "carol"] {
        append(&stack, &admin, "user.login", actor).await?;
    }
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let issued =
        issue(&stack, &admin, json!({ "subject": "s", "filter": { "actor_id": "bob" }, "scopes": ["read", "export"] }))
            .await?;
    let token = issued["token"].as_str().context("token")?;

    let job = export(&stack, &pipes, token, json!({ "format": "jsonl" })).await?;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(exported_actors(&job).await?, ["bob", "bob"]);
    // The manifest says the rows were narrowed by the token's pin; the admin's has no pin.
    assert_eq!(manifest(&job).await?["pin"], json!({ "actor_id": "bob" }));
    // The export's own filter is ANDed with the pin; a contradiction exports nothing.
    let none = export(&stack, &pipes, token, json!({ "format": "jsonl", "filter": { "actor_id": "alice" } })).await?;
    assert_eq!((none["status"].as_str(), none["rows"].as_u64()), (Some("done"), Some(0)), "{none}");

    // The admin's unpinned export is not the token's to see.
    let admins = export(&stack, &pipes, &admin, json!({ "format": "jsonl" })).await?;
    let admin_id = admins["id"].as_str().context("id")?;
    assert!(manifest(&admins).await?.get("pin").is_none(), "an unpinned export's manifest has no pin");
    let hidden = stack.call(Method::GET, &format!("/v1/exports/{admin_id}"), Some(token), None).await?;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{hidden:?}");
    let listed = stack.call(Method::GET, "/v1/exports", Some(token), None).await?;
    let ids: Vec<&str> =
        listed.body["exports"].as_array().context("exports")?.iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{listed:?}");
    assert!(!ids.contains(&admin_id));
    Ok(())
}

/// The status of listing events with `token`.
async fn reads(stack: &Stack, token: &str) -> Result<StatusCode> {
    Ok(stack.call(Method::GET, "/v1/events", Some(token), None).await?.status)
}

#[tokio::test]
async fn a_revoked_token_is_refused_others_still_work_and_the_revocation_is_recorded_once() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let (_, admin_other) = stack.tenant("other").await?;
    append(&stack, &admin, "user.login", "bob").await?;
    let first = issue(&stack, &admin, json!({ "subject": "first" })).await?;
    let second = issue(&stack, &admin, json!({ "subject": "second" })).await?;
    let (token, token_id) = (first["token"].as_str().context("token")?, first["token_id"].as_str().context("id")?);
    let kept = second["token"].as_str().context("token")?;
    assert!(token_id.len() == 32 && token_id.bytes().all(|b| b.is_ascii_hexdigit()), "{token_id}");
    assert_ne!(Some(token_id), second["token_id"].as_str());
    let path = format!("/v1/viewer-tokens/{token_id}");
    assert_eq!(reads(&stack, token).await?, StatusCode::OK);

    // Another tenant's admin naming the same id revokes only its own tenant's token of that id.
    let elsewhere = stack.call(Method::DELETE, &path, Some(&admin_other), None).await?;
    assert_eq!(elsewhere.status, StatusCode::OK, "{elsewhere:?}");
    assert_eq!(reads(&stack, token).await?, StatusCode::OK, "another tenant cannot revoke this tenant's token");

    // Neither the token itself nor a malformed id gets a revocation through.
    let by_itself = stack.call(Method::DELETE, &path, Some(token), None).await?;
    assert_eq!(by_itself.status, StatusCode::FORBIDDEN, "{by_itself:?}");
    let malformed = stack.call(Method::DELETE, "/v1/viewer-tokens/not-a-token-id", Some(&admin), None).await?;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{malformed:?}");
    assert!(malformed.body["error"]["code"].is_string(), "{malformed:?}");

    let revoked = stack.call(Method::DELETE, &path, Some(&admin), None).await?;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    assert_eq!(revoked.body["token_id"], json!(token_id));
    let again = stack.call(Method::DELETE, &path, Some(&admin), None).await?;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body["revoked_at"], revoked.body["revoked_at"], "the first revocation's time stays");

    assert_eq!(reads(&stack, token).await?, StatusCode::FORBIDDEN, "the revoked token");
    assert_eq!(reads(&stack, kept).await?, StatusCode::OK, "a token not revoked");

    // Recorded once in the tenant's chain, however often it was asked for.
    let records =
        stack.call(Method::GET, "/v1/events?action=audit_log.viewer_token.revoked", Some(&admin), None).await?;
    let records = records.body["events"].as_array().context("events")?.clone();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["event"]["resource"]["id"], json!(token_id));
    assert_eq!(records[0]["event"]["resource"]["type"], json!("viewer_token"));
    Ok(())
}
