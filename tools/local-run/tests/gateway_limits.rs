//! The limits of API Gateway and Lambda, met over real HTTP through the local gateway as a client
//! meets them in AWS: pages of big events stay under Lambda's 6 MB response limit and page on
//! exactly; oversized requests and slow functions get API Gateway's answers and write nothing;
//! a wrong method gets 405 with `Allow`; a body with broken chunked framing gets 400.

mod support;

use local_run::gateway::{Limits, FUNCTION_TIMEOUT, MAX_GATEWAY_BODY, MAX_INVOKE_REQUEST, TOO_LARGE_FOR_GATEWAY};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use support::{event, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every response body must stay under this: Lambda's response limit is 6 MB for the whole
/// response event, which is larger than the body.
const SIX_MB: usize = 6_000_000;

/// An event of about 60 KB (the limit is 64 KiB) whose metadata is mostly quotes: each is two
/// bytes in the event's JSON and four once the body is a string inside the Lambda response
/// event, so a page bounded by its body bytes alone would pass the limit.
fn big_event(i: usize) -> Value {
    json!({
        "action": "doc.upload",
        "actor": { "id": format!("u{i}") },
        "outcome": "success",
        "metadata": { "note": "needle", "blob": "x\"".repeat(20_000) },
    })
}

/// A tenant with 100 big events (matching `q=needle`) and 20 small ones between them (not
/// matching), indexed for PostgreSQL's full text; returns the admin key and the seqs of the big
/// events.
async fn tenant_with_big_events(stack: &Stack) -> anyhow::Result<(String, Vec<u64>)> {
    let (tenant, key) = stack.tenant("acme").await?;
    let mut big = Vec::new();
    for batch in 0..5 {
        let mut events = Vec::new();
        for i in 0..24 {
            events.push(if i % 6 == 5 { event("user.login", "small") } else { big_event(batch * 24 + i) });
        }
        let reply =
            stack.call(Method::POST, "/v1/events/batch", Some(&key), Some(&json!({ "events": events }))).await?;
        anyhow::ensure!(reply.status == StatusCode::CREATED, "appending: {:?}", reply.status);
        for (i, appended) in reply.body["events"].as_array().expect("events").iter().enumerate() {
            if i % 6 != 5 {
                big.push(appended["seq"].as_u64().expect("seq"));
            }
        }
    }
    assert_eq!(big.len(), 100);
    stack.index_text(&tenant, &key).await?;
    Ok((key, big))
}

/// Follows `next_cursor` from the first page of `/v1/events?limit=1000&{query}`; returns the
/// seqs in the order received and the size of each page. Every page must be a 200 (the gateway
/// answers 500 for a response over Lambda's limit) with a body under 6 MB.
async fn page_through(stack: &Stack, key: &str, query: &str) -> anyhow::Result<(Vec<u64>, Vec<usize>)> {
    let mut seqs = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        anyhow::ensure!(pages.len() < 20, "{query}: more pages than entries could fill");
        let mut url = format!("{}/v1/events?limit=1000&{query}", stack.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let response = stack.http.get(url).bearer_auth(key).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{query}, page {}", pages.len());
        let bytes = response.bytes().await?;
        assert!(bytes.len() < SIX_MB, "{query}: a page of {} bytes", bytes.len());
        let body: Value = serde_json::from_slice(&bytes)?;
        let events = body["events"].as_array().expect("events");
        pages.push(events.len());
        seqs.extend(events.iter().map(|e| e["seq"].as_u64().expect("seq")));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    Ok((seqs, pages))
}

#[tokio::test]
async fn pages_of_big_events_stay_under_the_response_limit_and_return_each_event_once_in_order() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (key, big) = tenant_with_big_events(&stack).await?;
    let size = stack.tree_size(&key).await?;
    let all: Vec<u64> = (0..size).collect();
    // Without q, from the events table; with q, through PostgreSQL's full text (no OpenSearch).
    for (query, expected) in [
        ("order=asc", all.clone()),
        ("order=desc", all.iter().rev().copied().collect()),
        ("order=asc&q=needle", big.clone()),
        ("order=desc&q=needle", big.iter().rev().copied().collect()),
    ] {
        let (seqs, pages) = page_through(&stack, &key, query).await?;
        assert_eq!(seqs, expected, "{query}: every entry once, in order");
        // 100 events of ~100 KB each in the response event cannot share one page.
        assert!(pages.len() >= 2 && pages[0] < 100, "{query}: pages of {pages:?}");
    }
    // The entries come whole.
    let reply = stack.call(Method::GET, "/v1/events?order=asc&q=needle&limit=1", Some(&key), None).await?;
    assert!(reply.body["events"][0]["event"]["metadata"] == big_event(0)["metadata"], "the first big event, whole");
    Ok(())
}

#[tokio::test]
async fn search_pages_through_opensearch_are_bounded_and_exact_too() -> anyhow::Result<()> {
    // The seqs come from the index, the entries from PostgreSQL; the page is cut the same way.
    let node = localstack::opensearch::OpenSearch::shared()?.url();
    let (stack, pipes) = Stack::start_pipelines(&node, 3).await?;
    let (key, big) = tenant_with_big_events(&stack).await?;
    pipes.drain_index().await?;
    for (query, expected) in
        [("order=asc&q=needle", big.clone()), ("order=desc&q=needle", big.iter().rev().copied().collect::<Vec<_>>())]
    {
        let (seqs, pages) = page_through(&stack, &key, query).await?;
        assert_eq!(seqs, expected, "{query}: every hit once, in order");
        assert!(pages.len() >= 2 && pages[0] < 100, "{query}: pages of {pages:?}");
    }
    Ok(())
}

#[tokio::test]
async fn requests_over_the_gateway_and_invocation_limits_get_aws_answers_and_write_nothing() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let size = stack.tree_size(&key).await?;
    let url = format!("{}/v1/events", stack.base);
    // Over API Gateway's 10 MB: its own text answer.
    let response = stack
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(vec![b' '; MAX_GATEWAY_BODY + 1])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.text().await?, TOO_LARGE_FOR_GATEWAY);
    // Under 10 MB but an event over Lambda's 6 MB: refused before the function runs.
    for body_len in [MAX_INVOKE_REQUEST + 1, MAX_GATEWAY_BODY] {
        let reply = stack.call_raw(Method::POST, "/v1/events", &key, "application/json", vec![b' '; body_len]).await?;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{body_len} bytes");
        assert_eq!(reply.body, json!({ "message": "Request Entity Too Large" }), "{body_len} bytes");
    }
    assert_eq!(stack.tree_size(&key).await?, size, "an oversized request wrote something");
    // A body just under the limit, with the event around it, reaches the function.
    let reply = stack.call(Method::POST, "/v1/events", Some(&key), Some(&event("a.b", "u"))).await?;
    assert_eq!(reply.status, StatusCode::CREATED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_slower_than_its_timeout_gets_api_gateways_500_and_a_retry_appends_once() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, key) = stack.tenant("acme").await?;
    let size = stack.tree_size(&key).await?;
    let slow = stack.serve_with_limits(Limits { function_timeout: Duration::from_secs(2) }).await?;
    // Someone with database access holds the tenant's chain head: the append waits for it.
    let mut su = stack.db.superuser().await?;
    let holder = su.transaction().await?;
    let tenant_id: uuid::Uuid = tenant.parse()?;
    holder.execute("SELECT 1 FROM chain_heads WHERE tenant_id = $1 FOR UPDATE", &[&tenant_id]).await?;
    let append = |base: String| {
        let http = stack.http.clone();
        let key = key.clone();
        async move {
            http.post(format!("{base}/v1/events"))
                .bearer_auth(key)
                .header("Idempotency-Key", "slow-append-1")
                .json(&event("a.b", "u"))
                .timeout(Duration::from_secs(60))
                .send()
                .await
        }
    };
    let response = append(slow.clone()).await?;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.json::<Value>().await?, json!({ "message": "Internal Server Error" }));
    holder.rollback().await?;
    assert_eq!(stack.tree_size(&key).await?, size, "the timed-out append wrote something");
    // The client retries with the same key once the database is free: one append.
    let response = append(slow).await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(stack.tree_size(&key).await?, size + 1);
    Ok(())
}

#[test]
fn the_gateway_times_functions_out_where_the_template_does() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let global = template["Globals"]["Function"]["Timeout"].as_u64().expect("Globals.Function.Timeout");
    assert_eq!(global, FUNCTION_TIMEOUT.as_secs());
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        let properties = &resource["Properties"];
        let serves_api = properties["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"].as_str() == Some("HttpApi")));
        if serves_api {
            let timeout = properties["Timeout"].as_u64().unwrap_or(global);
            assert_eq!(timeout, FUNCTION_TIMEOUT.as_secs(), "{name:?}");
        }
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_known_route_is_405_with_allow_and_an_unknown_path_404() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    for (method, path, allow) in
        [(Method::DELETE, "/v1/events", "POST, GET"), (Method::PUT, "/v1/settings", "GET, PATCH")]
    {
        for key in [Some(key.as_str()), None] {
            let reply = stack.call(method.clone(), path, key, None).await?;
            assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(reply.headers["allow"], allow, "{method} {path}");
            assert_eq!(reply.error_code(), "method_not_allowed");
        }
    }
    let reply = stack.call(Method::GET, "/v1/nothing", Some(&key), None).await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, json!({ "message": "Not Found" }));
    Ok(())
}

#[tokio::test]
async fn a_functions_own_router_answers_a_wrong_method_405_with_every_functions_methods() -> anyhow::Result<()> {
    use tower::ServiceExt;
    let stack = Stack::start().await?;
    // The query function's router, built as its `main` builds it: it serves only GET /v1/events,
    // but Allow names POST too (the ingest function's), as a route `ANY /v1/events` would need.
    let lookup = |name: &str| stack.env.get(name).cloned();
    let function = shared::api::Function::Query;
    let settings = shared::runtime::ApiSettings::from_env(&[function], shared::config::Env::with_lookup(lookup))?;
    let router = shared::api::router(shared::runtime::api_state(&settings, &stack.sdk).await?, &[function]);
    let request = axum::http::Request::builder().method("DELETE").uri("/v1/events").body(axum::body::Body::empty())?;
    let response = router.oneshot(request).await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST, GET");
    let body: Value = serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await?)?;
    assert_eq!(body["error"]["code"], "method_not_allowed");
    Ok(())
}

#[tokio::test]
async fn a_body_with_broken_chunked_framing_is_400_and_writes_nothing() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, key) = stack.tenant("acme").await?;
    let size = stack.tree_size(&key).await?;
    let address = stack.base.trim_start_matches("http://").to_owned();
    let body = serde_json::to_string(&event("a.b", "u"))?;
    for (what, chunks) in [
        ("a chunk size that is not hex", format!("zz\r\n{body}\r\n0\r\n\r\n")),
        ("a chunk longer than its size", format!("2\r\n{body}\r\n0\r\n\r\n")),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&address).await?;
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(chunks.as_bytes()).await?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer)).await??;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
    }
    assert_eq!(stack.tree_size(&key).await?, size, "a badly framed request wrote something");
    Ok(())
}
