//! Every administrative change and the chain record that accounts for it, under faults, over
//! HTTP through the gateway on real PostgreSQL and the local AWS endpoint.
//!
//! Faults are real: triggers (installed by the database owner) terminate the serving backend or
//! fail the statement at every table each change writes, and a deferred trigger fails the
//! COMMIT; DynamoDB calls fail in the SDK's HTTP client. After each fault the test retries the
//! same request (same `Idempotency-Key`) and then counts the records against the effects:
//! exactly one record per change, the change in force, and the chain verifying.

mod support;

use anyhow::{ensure, Context, Result};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use support::{Reply, Stack};
use uuid::Uuid;

/// Where a fault strikes: a table and operation (a statement-level trigger, so it fires even
/// for a statement that writes no row), or the COMMIT.
const FAULT_POINTS: &[(&str, &str)] = &[
    ("tenants", "INSERT"),
    ("tenants", "UPDATE"),
    ("chain_heads", "INSERT"),
    ("chain_heads", "UPDATE"),
    ("publisher_keys", "INSERT"),
    ("publisher_keys", "UPDATE"),
    ("events", "INSERT"),
    ("events", "UPDATE"),
    ("chain_entries", "INSERT"),
    ("merkle_nodes", "INSERT"),
    ("outbox", "INSERT"),
    ("idempotency_keys", "INSERT"),
    ("COMMIT", "COMMIT"),
];
/// `terminate`: the backend kills itself mid-statement (the connection is lost); `fail`: the
/// statement raises a serialization failure (the transaction aborts, the connection stays).
const MODES: [&str; 2] = ["terminate", "fail"];

const FAULT_SQL: &str = "
CREATE TABLE test_faults (tbl text NOT NULL, op text NOT NULL, mode text NOT NULL);
GRANT SELECT ON test_faults TO PUBLIC;
CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE m text;
BEGIN
    SELECT mode INTO m FROM test_faults WHERE tbl = TG_ARGV[0] AND op = TG_OP;
    IF m = 'terminate' THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
        PERFORM pg_sleep(10);
    ELSIF m = 'fail' THEN
        RAISE EXCEPTION 'injected fault at % %', TG_OP, TG_ARGV[0] USING ERRCODE = '40001';
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION test_fault_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE m text;
BEGIN
    SELECT mode INTO m FROM test_faults WHERE tbl = 'COMMIT';
    IF m = 'terminate' THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
        PERFORM pg_sleep(10);
    ELSIF m = 'fail' THEN
        RAISE EXCEPTION 'injected fault at COMMIT' USING ERRCODE = '40001';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_fault_commit AFTER INSERT ON chain_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fault_at_commit();
";

/// Installs the fault triggers in the stack's database.
async fn install_faults(stack: &Stack) -> Result<tokio_postgres::Client> {
    let su = stack.db.superuser().await?;
    su.batch_execute(FAULT_SQL).await.context("fault functions")?;
    for (table, op) in FAULT_POINTS.iter().filter(|(t, _)| *t != "COMMIT") {
        let sql = format!(
            "CREATE TRIGGER test_fault_{table}_{op} BEFORE {op} ON {table} FOR EACH STATEMENT \
             EXECUTE FUNCTION test_fault('{table}')",
            op = op.to_lowercase()
        );
        su.batch_execute(&sql).await.with_context(|| sql.clone())?;
    }
    Ok(su)
}

async fn arm(su: &tokio_postgres::Client, table: &str, op: &str, mode: &str) -> Result<()> {
    su.execute("DELETE FROM test_faults", &[]).await?;
    su.execute("INSERT INTO test_faults VALUES ($1, $2, $3)", &[&table, &op, &mode]).await?;
    Ok(())
}

async fn disarm(su: &tokio_postgres::Client) -> Result<()> {
    su.execute("DELETE FROM test_faults", &[]).await?;
    Ok(())
}

/// How many records of `action` about `resource_id` the tenant's chain holds.
async fn records(su: &tokio_postgres::Client, tenant: &str, action: &str, resource_id: &str) -> Result<i64> {
    let tenant = Uuid::parse_str(tenant)?;
    let row = su
        .query_one(
            "SELECT count(*) FROM events WHERE tenant_id = $1 AND action = $2 AND resource_id = $3",
            &[&tenant, &action, &resource_id],
        )
        .await?;
    Ok(row.get(0))
}

async fn tree_size(su: &tokio_postgres::Client, tenant: &str) -> Result<i64> {
    let tenant = Uuid::parse_str(tenant)?;
    Ok(su.query_one("SELECT size FROM chain_heads WHERE tenant_id = $1", &[&tenant]).await?.get(0))
}

/// A request with an `Idempotency-Key`.
async fn call(
    stack: &Stack,
    method: Method,
    path: &str,
    key: &str,
    idempotency_key: Option<&str>,
    body: Option<&Value>,
) -> Result<Reply> {
    let mut request = stack.http.request(method, format!("{}{path}", stack.base)).bearer_auth(key);
    if let Some(k) = idempotency_key {
        request = request.header("idempotency-key", k);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? };
    Ok(Reply { status, headers, body })
}

/// A failed attempt must be a 503 with Retry-After: "nothing happened, retry" or "retry
/// completes it".
fn assert_retryable(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {reply:?}");
    assert!(reply.headers.contains_key("retry-after"), "{what}: {reply:?}");
    assert_eq!(reply.error_code(), "unavailable", "{what}");
}

async fn verify_chain(stack: &Stack, admin: &str) -> Result<()> {
    let reply = stack.call(Method::POST, "/v1/verify", Some(admin), None).await?;
    ensure!(reply.status == StatusCode::OK && reply.body["ok"] == json!(true), "verification: {reply:?}");
    Ok(())
}

fn public_key(seed: u8) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes())
}

/// One attempt of a change with the fault armed.
async fn attempt<Fut>(su: &tokio_postgres::Client, (table, op): (&str, &str), mode: &str, change: Fut) -> Result<Reply>
where
    Fut: std::future::Future<Output = Result<Reply>>,
{
    arm(su, table, op, mode).await?;
    let reply = change.await;
    disarm(su).await?;
    reply
}

#[tokio::test]
async fn every_change_of_a_tenant_is_recorded_exactly_once_whatever_statement_fails() -> Result<()> {
    let stack = Stack::start().await?;
    let su = install_faults(&stack).await?;
    let (tenant, admin) = stack.tenant("faults").await?;
    let mut attempts_that_failed = 0;

    for &point in FAULT_POINTS {
        for mode in MODES {
            let what = format!("{mode} at {} {}", point.0, point.1);
            let idem = format!("req-{}", Uuid::new_v4().simple());
            let (idem_key, idem_signing) = (format!("{idem}-key"), format!("{idem}-signing"));
            let (idem_settings, idem_erasure) = (format!("{idem}-settings"), format!("{idem}-erasure"));

            // A new API key: the retry answers with the recorded key, whose secret works.
            let size = tree_size(&su, &tenant).await?;
            let body = json!({ "name": "ci", "scopes": ["events:read"] });
            let first =
                attempt(&su, point, mode, call(&stack, Method::POST, "/v1/keys", &admin, Some(&idem_key), Some(&body)))
                    .await?;
            if first.status != StatusCode::CREATED {
                attempts_that_failed += 1;
                assert_retryable(&first, &format!("key, {what}"));
                assert_eq!(tree_size(&su, &tenant).await?, size, "key, {what}: a failed attempt records nothing");
            }
            let retry = call(&stack, Method::POST, "/v1/keys", &admin, Some(&idem_key), Some(&body)).await?;
            assert_eq!(retry.status, StatusCode::CREATED, "key retry, {what}: {retry:?}");
            let key_id = retry.body["key"]["key_id"].as_str().context("key id")?.to_owned();
            let secret = retry.body["secret"].as_str().context("secret")?.to_owned();
            assert_eq!(records(&su, &tenant, "audit_log.api_key.created", &key_id).await?, 1, "key, {what}");
            let listing = stack.call(Method::GET, "/v1/events?limit=1", Some(&secret), None).await?;
            assert_eq!(listing.status, StatusCode::OK, "the retried key works, {what}: {listing:?}");

            // Its revocation: recorded once, and the key refused afterwards.
            let path = format!("/v1/keys/{key_id}");
            let first = attempt(&su, point, mode, call(&stack, Method::DELETE, &path, &admin, None, None)).await?;
            if first.status != StatusCode::OK {
                attempts_that_failed += 1;
                assert_retryable(&first, &format!("revocation, {what}"));
            }
            let retry = call(&stack, Method::DELETE, &path, &admin, None, None).await?;
            assert_eq!(retry.status, StatusCode::OK, "revocation retry, {what}: {retry:?}");
            assert_eq!(records(&su, &tenant, "audit_log.api_key.revoked", &key_id).await?, 1, "revocation, {what}");
            let refused = stack.call(Method::GET, "/v1/events?limit=1", Some(&secret), None).await?;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "a revoked key, {what}");

            // A signing key: registered and recorded together, or neither.
            let signing_id = format!("pk-{}", &idem[4..16]);
            let body = json!({ "key_id": signing_id, "name": "billing", "public_key": public_key(7) });
            let size = tree_size(&su, &tenant).await?;
            let first = attempt(
                &su,
                point,
                mode,
                call(&stack, Method::POST, "/v1/signing-keys", &admin, Some(&idem_signing), Some(&body)),
            )
            .await?;
            if first.status != StatusCode::CREATED {
                attempts_that_failed += 1;
                assert_retryable(&first, &format!("signing key, {what}"));
                assert_eq!(tree_size(&su, &tenant).await?, size, "signing key, {what}");
            }
            let retry =
                call(&stack, Method::POST, "/v1/signing-keys", &admin, Some(&idem_signing), Some(&body)).await?;
            assert_eq!(retry.status, StatusCode::CREATED, "signing key retry, {what}: {retry:?}");
            assert_eq!(retry.body["key_id"], json!(signing_id));
            assert_eq!(
                records(&su, &tenant, "audit_log.signing_key.registered", &signing_id).await?,
                1,
                "signing key, {what}"
            );
            let listed = stack.call(Method::GET, "/v1/signing-keys", Some(&admin), None).await?;
            let active = listed.body["keys"]
                .as_array()
                .context("keys")?
                .iter()
                .filter(|k| k["key_id"] == json!(signing_id) && k["revoked_at"].is_null())
                .count();
            assert_eq!(active, 1, "signing key, {what}");

            // Its revocation, in one transaction with its record.
            let path = format!("/v1/signing-keys/{signing_id}");
            let size = tree_size(&su, &tenant).await?;
            let first = attempt(&su, point, mode, call(&stack, Method::DELETE, &path, &admin, None, None)).await?;
            if first.status != StatusCode::OK {
                attempts_that_failed += 1;
                assert_retryable(&first, &format!("signing key revocation, {what}"));
                assert_eq!(tree_size(&su, &tenant).await?, size, "signing key revocation, {what}");
            }
            let retry = call(&stack, Method::DELETE, &path, &admin, None, None).await?;
            assert_eq!(retry.status, StatusCode::OK, "signing key revocation retry, {what}: {retry:?}");
            assert!(retry.body["revoked_at"].is_string(), "{retry:?}");
            assert_eq!(
                records(&su, &tenant, "audit_log.signing_key.revoked", &signing_id).await?,
                1,
                "signing key revocation, {what}"
            );

            // A settings change: one record per request, whatever failed before its retry.
            let settings_records = records(&su, &tenant, "audit_log.settings.updated", &tenant).await?;
            let require = attempts_that_failed % 2 == 0;
            let body = json!({ "require_signatures": require });
            let first = attempt(
                &su,
                point,
                mode,
                call(&stack, Method::PATCH, "/v1/settings", &admin, Some(&idem_settings), Some(&body)),
            )
            .await?;
            if first.status != StatusCode::OK {
                attempts_that_failed += 1;
                assert_retryable(&first, &format!("settings, {what}"));
            }
            let retry = call(&stack, Method::PATCH, "/v1/settings", &admin, Some(&idem_settings), Some(&body)).await?;
            assert_eq!(retry.status, StatusCode::OK, "settings retry, {what}: {retry:?}");
            assert_eq!(retry.body["require_signatures"], json!(require));
            assert_eq!(
                records(&su, &tenant, "audit_log.settings.updated", &tenant).await?,
                settings_records + 1,
                "settings, {what}"
            );
            let now = stack.call(Method::GET, "/v1/settings", Some(&admin), None).await?;
            assert_eq!(now.body["require_signatures"], json!(require), "settings, {what}");
            if require {
                let off = json!({ "require_signatures": false });
                let reply = call(&stack, Method::PATCH, "/v1/settings", &admin, None, Some(&off)).await?;
                assert_eq!(reply.status, StatusCode::OK);
            }

            // An erasure: the content goes and the record says so (erased: 1), or neither.
            let appended = stack
                .call(Method::POST, "/v1/events", Some(&admin), Some(&support::event("doc.read", "subject")))
                .await?;
            assert_eq!(appended.status, StatusCode::CREATED, "{appended:?}");
            let event_id = appended.body["id"].as_str().context("id")?.to_owned();
            let size = tree_size(&su, &tenant).await?;
            let body = json!({ "event_id": event_id });
            let first = attempt(
                &su,
                point,
                mode,
                call(&stack, Method::POST, "/v1/erasures", &admin, Some(&idem_erasure), Some(&body)),
            )
            .await?;
            if first.status != StatusCode::OK {
                attempts_that_failed += 1;
                assert_retryable(&first, &format!("erasure, {what}"));
                assert_eq!(tree_size(&su, &tenant).await?, size, "erasure, {what}");
                let still = stack.call(Method::GET, &format!("/v1/events/{event_id}"), Some(&admin), None).await?;
                assert!(still.body["event"].is_object(), "a failed erasure erased nothing, {what}: {still:?}");
            }
            let retry = call(&stack, Method::POST, "/v1/erasures", &admin, Some(&idem_erasure), Some(&body)).await?;
            assert_eq!(retry.status, StatusCode::OK, "erasure retry, {what}: {retry:?}");
            assert_eq!(retry.body["erased"], json!(1), "the record accounts for the erasure, {what}: {retry:?}");
            assert_eq!(records(&su, &tenant, "audit_log.content.erased", &event_id).await?, 1, "erasure, {what}");
            let gone = stack.call(Method::GET, &format!("/v1/events/{event_id}"), Some(&admin), None).await?;
            assert!(gone.body["event"].is_null(), "erased, {what}: {gone:?}");
        }
    }
    // Most points strike at least one change; a fault that never fired would make this test
    // prove nothing.
    assert!(attempts_that_failed >= 2 * (FAULT_POINTS.len() - 3) * 3, "only {attempts_that_failed} attempts failed");
    verify_chain(&stack, &admin).await
}

#[tokio::test]
async fn a_tenant_and_its_first_key_are_created_once_whatever_statement_fails() -> Result<()> {
    let stack = Stack::start().await?;
    let su = install_faults(&stack).await?;
    let mut failed = 0;
    for &point in FAULT_POINTS {
        for mode in MODES {
            let what = format!("{mode} at {} {}", point.0, point.1);
            let idem = format!("tenant-{}", Uuid::new_v4().simple());
            let name = format!("t-{}", &idem[7..19]);
            let body = json!({ "name": name });
            let platform = stack.platform_key.clone();
            let first = attempt(
                &su,
                point,
                mode,
                call(&stack, Method::POST, "/v1/tenants", &platform, Some(&idem), Some(&body)),
            )
            .await?;
            if first.status != StatusCode::CREATED {
                failed += 1;
                assert_retryable(&first, &what);
                let tenants: i64 = su.query_one("SELECT count(*) FROM tenants WHERE name = $1", &[&name]).await?.get(0);
                assert_eq!(tenants, 0, "a failed creation leaves no tenant, {what}");
            }
            let retry = call(&stack, Method::POST, "/v1/tenants", &platform, Some(&idem), Some(&body)).await?;
            assert_eq!(retry.status, StatusCode::CREATED, "retry, {what}: {retry:?}");
            let tenants: i64 = su.query_one("SELECT count(*) FROM tenants WHERE name = $1", &[&name]).await?.get(0);
            assert_eq!(tenants, 1, "{what}");
            let tenant = retry.body["tenant_id"].as_str().context("tenant")?.to_owned();
            let key_id = retry.body["api_key"]["key"]["key_id"].as_str().context("key id")?.to_owned();
            let admin = retry.body["api_key"]["secret"].as_str().context("secret")?.to_owned();
            assert_eq!(records(&su, &tenant, "audit_log.tenant.created", &tenant).await?, 1, "{what}");
            assert_eq!(records(&su, &tenant, "audit_log.api_key.created", &key_id).await?, 1, "{what}");
            assert_eq!(tree_size(&su, &tenant).await?, 2, "{what}: the creation and the key, nothing else");
            verify_chain(&stack, &admin).await.with_context(|| what.clone())?;
        }
    }
    assert!(failed >= 2 * 6, "only {failed} attempts failed");
    Ok(())
}

/// Fails DynamoDB calls of one operation (`X-Amz-Target`) while armed, in the SDK's HTTP
/// client, before they reach the local endpoint.
#[derive(Debug, Clone)]
struct DynamoFaults {
    inner: SharedHttpClient,
    failing: Arc<Mutex<Option<&'static str>>>,
}

impl DynamoFaults {
    fn arm(&self, operation: &'static str) {
        *self.failing.lock().expect("lock") = Some(operation);
    }
    fn disarm(&self) {
        *self.failing.lock().expect("lock") = None;
    }
}

impl HttpClient for DynamoFaults {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(DynamoFaultConnector {
            inner: self.inner.http_connector(settings, components),
            failing: self.failing.clone(),
        })
    }
}

#[derive(Debug)]
struct DynamoFaultConnector {
    inner: SharedHttpConnector,
    failing: Arc<Mutex<Option<&'static str>>>,
}

impl HttpConnector for DynamoFaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let failing = *self.failing.lock().expect("lock");
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        if failing.is_some_and(|op| target == format!("DynamoDB_20120810.{op}")) {
            return HttpConnectorFuture::ready(Err(ConnectorError::io("injected fault: connection reset".into())));
        }
        self.inner.call(request)
    }
}

async fn stack_with_dynamo_faults() -> Result<(Stack, DynamoFaults)> {
    let faults = DynamoFaults {
        inner: aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https(),
        failing: Arc::new(Mutex::new(None)),
    };
    let client = faults.clone();
    let stack = Stack::start_with(0, move |sdk| sdk.to_builder().http_client(client).build()).await?;
    Ok((stack, faults))
}

#[tokio::test]
async fn a_key_recorded_but_not_stored_is_completed_by_the_retry() -> Result<()> {
    let (stack, faults) = stack_with_dynamo_faults().await?;
    let su = stack.db.superuser().await?;
    let (tenant, admin) = stack.tenant("dynamo").await?;
    let body = json!({ "name": "ci", "scopes": ["events:read"] });

    // The record commits, storing the key fails: nothing usable exists, and the record names
    // the key id the retry then stores.
    faults.arm("PutItem");
    let first = call(&stack, Method::POST, "/v1/keys", &admin, Some("k-1"), Some(&body)).await?;
    faults.disarm();
    assert_retryable(&first, "the key store failed");
    let recorded: Vec<String> = su
        .query(
            "SELECT resource_id FROM events WHERE tenant_id = $1 AND action = 'audit_log.api_key.created' ORDER BY seq",
            &[&Uuid::parse_str(&tenant)?],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded.len(), 2, "the first admin key and the one being created: {recorded:?}");
    let listed = stack.call(Method::GET, "/v1/keys", Some(&admin), None).await?;
    assert_eq!(listed.body["keys"].as_array().context("keys")?.len(), 1, "not stored yet: {listed:?}");

    let retry = call(&stack, Method::POST, "/v1/keys", &admin, Some("k-1"), Some(&body)).await?;
    assert_eq!(retry.status, StatusCode::CREATED, "{retry:?}");
    assert_eq!(retry.body["key"]["key_id"], json!(recorded[1]), "the recorded key id");
    let secret = retry.body["secret"].as_str().context("secret")?.to_owned();
    assert_eq!(stack.call(Method::GET, "/v1/events?limit=1", Some(&secret), None).await?.status, StatusCode::OK);

    // The answer is lost and the client retries again: the same key, a fresh secret that
    // replaces the one never received, still one record.
    let again = call(&stack, Method::POST, "/v1/keys", &admin, Some("k-1"), Some(&body)).await?;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    assert_eq!(again.body["key"]["key_id"], json!(recorded[1]));
    let newer = again.body["secret"].as_str().context("secret")?.to_owned();
    assert_ne!(newer, secret);
    assert_eq!(stack.call(Method::GET, "/v1/events?limit=1", Some(&newer), None).await?.status, StatusCode::OK);
    assert_eq!(stack.call(Method::GET, "/v1/events?limit=1", Some(&secret), None).await?.status, StatusCode::FORBIDDEN);
    assert_eq!(records(&su, &tenant, "audit_log.api_key.created", &recorded[1]).await?, 1);

    // Another request under the same key is refused and changes nothing.
    let other = json!({ "name": "other", "scopes": ["events:read"] });
    let size = tree_size(&su, &tenant).await?;
    let conflict = call(&stack, Method::POST, "/v1/keys", &admin, Some("k-1"), Some(&other)).await?;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{conflict:?}");
    assert_eq!(conflict.error_code(), "idempotency_conflict");
    assert_eq!(tree_size(&su, &tenant).await?, size);

    // A revocation whose DynamoDB write fails changes and records nothing; its retry both.
    faults.arm("UpdateItem");
    let failed = call(&stack, Method::DELETE, &format!("/v1/keys/{}", recorded[1]), &admin, None, None).await?;
    faults.disarm();
    assert_retryable(&failed, "the revocation failed");
    assert_eq!(records(&su, &tenant, "audit_log.api_key.revoked", &recorded[1]).await?, 0);
    assert_eq!(stack.call(Method::GET, "/v1/events?limit=1", Some(&newer), None).await?.status, StatusCode::OK);
    let revoked = call(&stack, Method::DELETE, &format!("/v1/keys/{}", recorded[1]), &admin, None, None).await?;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    assert_eq!(records(&su, &tenant, "audit_log.api_key.revoked", &recorded[1]).await?, 1);
    assert_eq!(stack.call(Method::GET, "/v1/events?limit=1", Some(&newer), None).await?.status, StatusCode::FORBIDDEN);
    // A revoked key's creation is not replayed into a working secret.
    let stale = call(&stack, Method::POST, "/v1/keys", &admin, Some("k-1"), Some(&body)).await?;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{stale:?}");
    assert_eq!(stale.error_code(), "secret_not_reissued");
    verify_chain(&stack, &admin).await
}

#[tokio::test]
async fn a_tenant_whose_first_key_was_not_stored_is_completed_by_the_retry() -> Result<()> {
    let (stack, faults) = stack_with_dynamo_faults().await?;
    let su = stack.db.superuser().await?;
    let body = json!({ "name": "late-key" });
    faults.arm("PutItem");
    let first = call(&stack, Method::POST, "/v1/tenants", &stack.platform_key, Some("t-1"), Some(&body)).await?;
    faults.disarm();
    assert_retryable(&first, "the first key was not stored");
    let retry = call(&stack, Method::POST, "/v1/tenants", &stack.platform_key, Some("t-1"), Some(&body)).await?;
    assert_eq!(retry.status, StatusCode::CREATED, "{retry:?}");
    let tenant = retry.body["tenant_id"].as_str().context("tenant")?.to_owned();
    let admin = retry.body["api_key"]["secret"].as_str().context("secret")?.to_owned();
    let tenants: i64 = su.query_one("SELECT count(*) FROM tenants WHERE name = 'late-key'", &[]).await?.get(0);
    assert_eq!(tenants, 1);
    assert_eq!(tree_size(&su, &tenant).await?, 2);
    // The same key without the header is a new request: another tenant.
    let other = call(&stack, Method::POST, "/v1/tenants", &stack.platform_key, None, Some(&body)).await?;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.body["tenant_id"], json!(tenant));
    verify_chain(&stack, &admin).await
}
