//! Tenant console settings through the local gateway on PostgreSQL and the local AWS endpoint:
//! every change is recorded in the tenant's chain exactly once, a registration belongs to one
//! tenant, and the public sign-in route tells a browser only what it needs.

mod support;

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::aws::console_settings::{registration_key, ConsoleSettingsStore, SettingsWrite};
use support::Stack;

fn settings(issuer: &str, client_id: &str) -> Value {
    json!({
        "frame_ancestors": ["https://app.example.com"],
        "oidc": { "issuer": issuer, "client_id": client_id, "role_claim": "roles",
                  "roles": { "audit-admins": "admin", "auditors": "auditor", "staff": "viewer" } },
    })
}

/// An issuer no other test registers.
fn unique_issuer() -> String {
    format!("https://idp-{}.example.com", uuid::Uuid::new_v4().simple())
}

/// The tenant's console settings records, oldest first.
async fn records(stack: &Stack, admin: &str) -> Result<Vec<Value>> {
    let reply = stack
        .call(Method::GET, "/v1/events?action=audit_log.console_settings.updated&order=asc", Some(admin), None)
        .await?;
    anyhow::ensure!(reply.status == StatusCode::OK, "{reply:?}");
    Ok(reply.body["events"].as_array().context("events")?.iter().map(|e| e["event"].clone()).collect())
}

#[tokio::test]
async fn each_change_of_settings_is_recorded_once_and_a_repeat_records_nothing() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let defaults = stack.call(Method::GET, "/v1/console/settings", Some(&admin), None).await?;
    assert_eq!(defaults.status, StatusCode::OK, "{defaults:?}");
    assert_eq!(defaults.body, json!({ "frame_ancestors": [], "oidc": null }));

    let issuer = unique_issuer();
    let first = settings(&issuer, "console");
    let put = stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&first)).await?;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.body, first);
    let again = stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&first)).await?;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    let read = stack.call(Method::GET, "/v1/console/settings", Some(&admin), None).await?;
    assert_eq!(read.body, first);
    let recorded = records(&stack, &admin).await?;
    assert_eq!(recorded.len(), 1, "a repeat of the settings in effect records nothing: {recorded:?}");
    assert_eq!(recorded[0]["metadata"]["version"], 1);
    assert_eq!(recorded[0]["metadata"]["settings"], first);
    assert_eq!(recorded[0]["resource"], json!({ "type": "tenant", "id": tenant }));

    let second = json!({ "frame_ancestors": [], "oidc": null });
    let put = stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&second)).await?;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let recorded = records(&stack, &admin).await?;
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1]["metadata"], json!({ "version": 2, "settings": second }));
    Ok(())
}

#[tokio::test]
async fn a_change_that_took_effect_without_its_record_is_recorded_by_the_next_put() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    // The change is written, and the function stops before recording it.
    let table = ConsoleSettingsStore::new(&stack.sdk, &stack.env["CONSOLE_SETTINGS_TABLE"]);
    let values = json!({ "frame_ancestors": ["https://app.example.com"], "oidc": null });
    let text = values.to_string();
    let write = SettingsWrite { settings: &text, expected_version: 0, old_oidc_key: None, oidc: None };
    table.put(tenant.parse()?, &write).await?;
    assert!(records(&stack, &admin).await?.is_empty());

    // The retry of the same request records it, once.
    for _ in 0..2 {
        let retry = stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&values)).await?;
        assert_eq!(retry.status, StatusCode::OK, "{retry:?}");
    }
    let recorded = records(&stack, &admin).await?;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["metadata"], json!({ "version": 1, "settings": values }));
    Ok(())
}

#[tokio::test]
async fn an_issuer_and_client_id_belong_to_one_tenant() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin_a) = stack.tenant("a").await?;
    let (_, admin_b) = stack.tenant("b").await?;
    let issuer = unique_issuer();
    let a =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin_a), Some(&settings(&issuer, "console"))).await?;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let b =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin_b), Some(&settings(&issuer, "console"))).await?;
    assert_eq!((b.status, b.error_code()), (StatusCode::CONFLICT, "conflict"), "{b:?}");
    assert!(records(&stack, &admin_b).await?.is_empty(), "a refused change records nothing");
    // Another client id of the same issuer is another registration.
    let other =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin_b), Some(&settings(&issuer, "other"))).await?;
    assert_eq!(other.status, StatusCode::OK, "{other:?}");
    // Once a moves to another client id, its old one is free.
    let moved =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin_a), Some(&settings(&issuer, "console-2"))).await?;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    let table = ConsoleSettingsStore::new(&stack.sdk, &stack.env["CONSOLE_SETTINGS_TABLE"]);
    assert!(table.registration(&issuer, "console").await?.is_none(), "{}", registration_key(&issuer, "console"));
    let taken =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin_b), Some(&settings(&issuer, "console"))).await?;
    assert_eq!(taken.status, StatusCode::OK, "{taken:?}");
    Ok(())
}

#[tokio::test]
async fn sign_in_is_public_and_tells_only_the_issuer_and_client_id() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let issuer = unique_issuer();
    let put =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&settings(&issuer, "console"))).await?;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let sign_in = stack.call(Method::GET, &format!("/v1/console/sign-in?tenant={tenant}"), None, None).await?;
    assert_eq!(sign_in.status, StatusCode::OK, "{sign_in:?}");
    assert_eq!(sign_in.body, json!({ "tenant_id": tenant, "oidc": { "issuer": issuer, "client_id": "console" } }));
    let unknown = uuid::Uuid::now_v7();
    let nobody = stack.call(Method::GET, &format!("/v1/console/sign-in?tenant={unknown}"), None, None).await?;
    assert_eq!(nobody.body, json!({ "tenant_id": unknown, "oidc": null }), "no hint whether a tenant exists");
    for query in ["", "?tenant=nope", "?tenant_id=x"] {
        let bad = stack.call(Method::GET, &format!("/v1/console/sign-in{query}"), None, None).await?;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}: {bad:?}");
    }
    // The settings themselves need an admin credential.
    let anonymous = stack.call(Method::GET, "/v1/console/settings", None, None).await?;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn settings_need_the_admin_scope_and_refuse_bad_fields_by_name() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let reader = stack.key(&admin, &["events:read", "exports"]).await?;
    let denied = stack.call(Method::GET, "/v1/console/settings", Some(&reader), None).await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied =
        stack.call(Method::PUT, "/v1/console/settings", Some(&reader), Some(&settings(&unique_issuer(), "c"))).await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({ "frame_ancestors": ["http://app.example.com"], "oidc": null }), "frame_ancestors[0]"),
        (settings("http://idp.example.com", "c"), "oidc.issuer"),
        (
            json!({ "frame_ancestors": [], "oidc": { "issuer": unique_issuer(), "client_id": "c", "role_claim": "roles", "roles": {} } }),
            "oidc.roles",
        ),
        (
            json!({ "frame_ancestors": [], "oidc": { "issuer": unique_issuer(), "client_id": "c", "role_claim": "roles", "roles": { "x": "root" } } }),
            "oidc.roles",
        ),
        (json!({ "frame_ancestors": [], "oidc": null, "tenant_id": "x" }), "tenant_id"),
    ] {
        let reply = stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&body)).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {reply:?}");
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: {message}");
    }
    Ok(())
}

#[tokio::test]
async fn console_pages_take_the_tenants_frame_ancestors_and_issuer_origin_from_its_settings() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("framed").await?;
    let (other, _) = stack.tenant("unframed").await?;
    let issuer = unique_issuer();
    let put =
        stack.call(Method::PUT, "/v1/console/settings", Some(&admin), Some(&settings(&issuer, "console"))).await?;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let csp = |reply: &support::Reply| {
        reply.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    // The console's pages are public: no key. config.json carries the same policy as its pages.
    let framed = stack.call(Method::GET, &format!("/console/config.json?tenant={tenant}"), None, None).await?;
    assert_eq!(framed.status, StatusCode::OK, "{framed:?}");
    let policy = csp(&framed);
    assert!(policy.ends_with("frame-ancestors https://app.example.com"), "{policy}");
    assert!(policy.contains(&format!(" {issuer};")), "the issuer's origin may be connected to: {policy}");
    for path in ["/console/config.json".to_owned(), format!("/console/config.json?tenant={other}")] {
        let reply = stack.call(Method::GET, &path, None, None).await?;
        let policy = csp(&reply);
        assert!(policy.ends_with("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(!policy.contains(&issuer), "{path}: {policy}");
    }
    Ok(())
}
