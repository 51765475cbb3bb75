//! OIDC sign-in end to end: ID tokens from a real local issuer (its own free port per test,
//! real RSA and P-256 keys) through the local gateway and the real authorizer, which finds the
//! tenant's registration in DynamoDB and the issuer's keys over HTTP.

mod support;

use anyhow::{Context, Result};
use oidc_issuer::{Issuer, IssuerConfig, Mint, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::Stack;

const CLIENT_ID: &str = "audit-console";

async fn issuer() -> Result<Issuer> {
    Issuer::start(IssuerConfig {
        client_id: CLIENT_ID.into(),
        allowed_origins: vec!["http://127.0.0.1:3000".into()],
        users: vec![
            User::with_roles("ada", "roles", &["audit-admins", "staff"]),
            User::with_roles("bob", "roles", &["auditors"]),
            User::with_roles("cy", "roles", &["staff"]),
            User::with_roles("dan", "roles", &["marketing"]),
        ],
    })
    .await
}

/// Registers `issuer` for the tenant of `admin`.
async fn register(stack: &Stack, admin: &str, issuer: &Issuer) -> Result<()> {
    let settings = json!({
        "frame_ancestors": [],
        "oidc": { "issuer": issuer.url(), "client_id": issuer.client_id(), "role_claim": "roles",
                  "roles": { "audit-admins": "admin", "auditors": "auditor", "staff": "viewer" } },
    });
    let reply = stack.call(Method::PUT, "/v1/console/settings", Some(admin), Some(&settings)).await?;
    anyhow::ensure!(reply.status == StatusCode::OK, "registering the issuer: {reply:?}");
    Ok(())
}

/// Another gateway over the same services with some of the functions' settings changed.
async fn serve_with(stack: &Stack, overrides: &[(&str, &str)]) -> Result<String> {
    let mut env = stack.env.clone();
    for (name, value) in overrides {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    let app = local_run::gateway(&env, &stack.sdk).await?.into_router();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

#[tokio::test]
async fn each_role_gets_exactly_its_scopes() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("acme").await?;
    let idp = issuer().await?;
    register(&stack, &admin, &idp).await?;

    for (login, role, scopes) in [
        ("ada", "admin", json!(["events:read", "exports", "admin"])),
        ("bob", "auditor", json!(["events:read", "exports"])),
        ("cy", "viewer", json!(["events:read"])),
    ] {
        let token = idp.token_for(login)?;
        let me = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
        assert_eq!(me.status, StatusCode::OK, "{login}: {me:?}");
        assert_eq!(me.body["tenant_id"], tenant);
        assert_eq!(me.body["kind"], "oidc");
        assert_eq!(me.body["role"], role, "{login}");
        assert_eq!(me.body["scopes"], scopes, "{login}");
        assert_eq!(me.body["subject"], format!("user-{login}"));
        assert!(me.body["expires_at"].is_string());
        assert!(me.body.get("filter").is_none());

        // What each scope set allows, on routes that need each scope.
        let read = stack.call(Method::GET, "/v1/events", Some(&token), None).await?;
        assert_eq!(read.status, StatusCode::OK, "{login} reads: {read:?}");
        let write = stack.call(Method::POST, "/v1/events", Some(&token), Some(&support::event("a.b", "x"))).await?;
        assert_eq!(write.status, StatusCode::FORBIDDEN, "no console role writes events: {write:?}");
        let settings = stack.call(Method::GET, "/v1/console/settings", Some(&token), None).await?;
        let expected = if role == "admin" { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(settings.status, expected, "{login} administers: {settings:?}");
        let exports = stack.call(Method::GET, "/v1/exports", Some(&token), None).await?;
        let expected = if role == "viewer" { StatusCode::FORBIDDEN } else { StatusCode::OK };
        assert_eq!(exports.status, expected, "{login} reads exports: {exports:?}");
    }

    // ES256 works as RS256 does.
    let es256 = idp.mint(&idp.claims_for("cy")?, Mint::Es256)?;
    let me = stack.call(Method::GET, "/v1/whoami", Some(&es256), None).await?;
    assert_eq!((me.status, me.body["role"].as_str()), (StatusCode::OK, Some("viewer")), "{me:?}");

    // A user whose roles map to nothing is refused, as is one with no role claim at all.
    let unmapped = stack.call(Method::GET, "/v1/whoami", Some(&idp.token_for("dan")?), None).await?;
    assert_eq!(unmapped.status, StatusCode::FORBIDDEN, "{unmapped:?}");
    let mut claims = idp.claims_for("cy")?;
    claims.as_object_mut().context("claims")?.remove("roles");
    let roleless = stack.call(Method::GET, "/v1/whoami", Some(&idp.mint(&claims, Mint::Rs256)?), None).await?;
    assert_eq!(roleless.status, StatusCode::FORBIDDEN, "{roleless:?}");
    Ok(())
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let idp = issuer().await?;
    register(&stack, &admin, &idp).await?;
    let good = idp.claims_for("ada")?;
    let now = chrono::Utc::now().timestamp();
    let with = |changes: Value| -> Value {
        let mut claims = good.clone();
        for (k, v) in changes.as_object().cloned().unwrap_or_default() {
            claims[k] = v;
        }
        claims
    };
    let ok = idp.mint(&good, Mint::Rs256)?;
    assert_eq!(stack.call(Method::GET, "/v1/whoami", Some(&ok), None).await?.status, StatusCode::OK);

    let mut tampered = ok.clone();
    let last = tampered.pop().context("signature")?;
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut other_subject = ok.split('.').map(str::to_owned).collect::<Vec<_>>();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    other_subject[1] = b64.encode(with(json!({ "sub": "user-root" })).to_string());
    let cases = [
        ("expired", idp.mint(&with(json!({ "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200 })), Mint::Rs256)?),
        ("not yet valid", idp.mint(&with(json!({ "nbf": now + 3600 })), Mint::Rs256)?),
        ("issued in the future", idp.mint(&with(json!({ "iat": now + 3600 })), Mint::Rs256)?),
        ("wrong audience", idp.mint(&with(json!({ "aud": "someone-else" })), Mint::Rs256)?),
        ("wrong issuer", idp.mint(&with(json!({ "iss": "http://127.0.0.1:1" })), Mint::Rs256)?),
        ("no exp", {
            let mut c = good.clone();
            c.as_object_mut().context("claims")?.remove("exp");
            idp.mint(&c, Mint::Rs256)?
        }),
        ("alg none", idp.mint(&good, Mint::AlgNone)?),
        ("HS256 with the public key", idp.mint(&good, Mint::Hs256WithPublicKey)?),
        ("unknown kid", idp.mint(&good, Mint::UnknownKid)?),
        ("tampered signature", tampered),
        ("tampered claims", other_subject.join(".")),
    ];
    for (what, token) in cases {
        let reply = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {reply:?}");
        assert_eq!(reply.body, json!({ "message": "Forbidden" }), "{what}");
    }
    Ok(())
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_first_token_at_most_once_a_period() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let idp = issuer().await?;
    register(&stack, &admin, &idp).await?;
    let base = serve_with(&stack, &[("OIDC_JWKS_MIN_REFETCH_SECONDS", "2")]).await?;
    let whoami = |token: String| {
        let (stack, base) = (&stack, base.clone());
        async move { stack.call_at(&base, Method::GET, "/v1/whoami", Some(&token), None).await }
    };
    assert_eq!(whoami(idp.token_for("ada")?).await?.status, StatusCode::OK);
    assert_eq!(whoami(idp.token_for("bob")?).await?.status, StatusCode::OK);
    assert_eq!(idp.jwks_fetches(), 1, "the keys are cached");

    idp.rotate().await?;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let rotated = whoami(idp.token_for("ada")?).await?;
    assert_eq!(rotated.status, StatusCode::OK, "a new kid fetches the keys again: {rotated:?}");
    assert_eq!(idp.jwks_fetches(), 2);
    // Unknown kids right after a fetch do not make the authorizer ask again.
    for _ in 0..3 {
        let unknown = whoami(idp.mint(&idp.claims_for("ada")?, Mint::UnknownKid)?).await?;
        assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(idp.jwks_fetches(), 2, "at most one fetch per period");
    // The retired key is no longer published, so its tokens are refused.
    let retired = whoami(idp.mint(&idp.claims_for("ada")?, Mint::RetiredKey)?).await?;
    assert_eq!(retired.status, StatusCode::FORBIDDEN, "{retired:?}");
    Ok(())
}

#[tokio::test]
async fn an_issuer_that_is_down_locks_out_none_but_its_own_users() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let idp = issuer().await?;
    register(&stack, &admin, &idp).await?;
    let token = idp.token_for("ada")?;
    drop(idp);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let refused = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the fetch has a timeout");
    let key = stack.call(Method::GET, "/v1/events", Some(&admin), None).await?;
    assert_eq!(key.status, StatusCode::OK, "API keys keep working: {key:?}");
    Ok(())
}

#[tokio::test]
async fn a_loopback_issuer_is_refused_unless_the_deployment_allows_it() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("acme").await?;
    let idp = issuer().await?;
    register(&stack, &admin, &idp).await?;
    let strict = serve_with(&stack, &[("OIDC_ALLOW_LOOPBACK_ISSUERS", "false")]).await?;
    let token = idp.token_for("ada")?;
    let refused = stack.call_at(&strict, Method::GET, "/v1/whoami", Some(&token), None).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(idp.jwks_fetches(), 0, "a plain-HTTP issuer is never even asked");
    let allowed = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
    assert_eq!(allowed.status, StatusCode::OK, "{allowed:?}");
    Ok(())
}

#[tokio::test]
async fn a_token_names_only_the_tenant_that_registered_its_issuer() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant_a, admin_a) = stack.tenant("a").await?;
    let (_, admin_b) = stack.tenant("b").await?;
    let idp = issuer().await?;
    register(&stack, &admin_a, &idp).await?;
    let event = stack.call(Method::POST, "/v1/events", Some(&admin_b), Some(&support::event("b.only", "x"))).await?;
    let b_event = event.body["id"].as_str().context("id")?.to_owned();
    let token = idp.token_for("ada")?;
    let me = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
    assert_eq!(me.body["tenant_id"], tenant_a);
    let other = stack.call(Method::GET, &format!("/v1/events/{b_event}"), Some(&token), None).await?;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{other:?}");
    // Once the tenant removes the registration, the issuer's tokens stop working.
    let cleared = json!({ "frame_ancestors": [], "oidc": null });
    let reply = stack.call(Method::PUT, "/v1/console/settings", Some(&admin_a), Some(&cleared)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let gone = stack.call(Method::GET, "/v1/whoami", Some(&token), None).await?;
    assert_eq!(gone.status, StatusCode::FORBIDDEN, "{gone:?}");
    let _: Value = me.body;
    Ok(())
}
