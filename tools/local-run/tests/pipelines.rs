//! The async pipelines end to end, on real services: events appended over HTTP go through the
//! outbox and the real SQS of the local AWS endpoint to the indexer and a real OpenSearch node,
//! and back out of `GET /v1/events?q=`; exports go through the export queue to the export
//! function, into S3 multipart uploads, and are downloaded through presigned URLs with a plain
//! HTTP client and verified offline.

mod support;

use anyhow::{Context, Result};
use base64::Engine;
use localstack::opensearch::OpenSearch as Node;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::chain::export::{verify_export, TrustedKey};
use support::{event, Pipelines, Stack};

fn node() -> Result<String> {
    Ok(Node::shared()?.url())
}

/// The seqs of a listing.
fn seqs(reply: &support::Reply) -> Vec<u64> {
    reply.body["events"].as_array().map(|a| a.iter().filter_map(|e| e["seq"].as_u64()).collect()).unwrap_or_default()
}

/// Every page of `query` (with `limit` per page), following `next_cursor`.
async fn all_pages(stack: &Stack, base: &str, key: &str, query: &str, limit: u32) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/events?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = stack.call_at(base, Method::GET, &path, Some(key), None).await?;
        anyhow::ensure!(reply.status == StatusCode::OK, "{path}: {reply:?}");
        out.extend(reply.body["events"].as_array().cloned().unwrap_or_default());
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(out),
        }
    }
}

async fn append_batch(stack: &Stack, key: &str, events: Vec<Value>) -> Result<Value> {
    let reply = stack.call(Method::POST, "/v1/events/batch", Some(key), Some(&json!({ "events": events }))).await?;
    anyhow::ensure!(reply.status == StatusCode::CREATED, "{reply:?}");
    Ok(reply.body)
}

fn words_event(actor: &str, words: &str) -> Value {
    json!({
        "action": "doc.edit",
        "actor": { "id": actor, "name": format!("{actor} person") },
        "resource": { "type": "doc", "id": format!("d-{words}") },
        "metadata": { "note": words },
    })
}

#[tokio::test]
async fn appended_events_become_searchable_and_match_postgres_full_text() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("searchers").await?;
    let mut events = Vec::new();
    for i in 0..30 {
        let words = match i % 3 {
            0 => "quarterly budget review",
            1 => "budget approved",
            _ => "holiday schedule",
        };
        events.push(words_event(if i % 2 == 0 { "ada" } else { "bob" }, words));
    }
    append_batch(&stack, &admin, events).await?;
    pipes.drain_index().await?;

    // The same API over the same database, without OpenSearch: PostgreSQL's full text.
    let mut pg_env = stack.env.clone();
    pg_env.remove("OPENSEARCH_URL");
    let pg_app = local_run::gateway(&pg_env, &stack.sdk).await?.into_router();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let pg_base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, pg_app).await });

    for query in [
        "q=budget",
        "q=budget%20-approved",
        "q=%22budget%20review%22",
        "q=holiday%20or%20approved",
        "q=budget&actor_id=ada",
        "q=budget&order=asc",
        "q=schedule&action=doc.*",
        "q=nothing-matches-this",
    ] {
        let search = all_pages(&stack, &stack.base, &admin, query, 4).await?;
        let postgres = all_pages(&stack, &pg_base, &admin, query, 4).await?;
        let ids = |v: &[Value]| v.iter().map(|e| e["seq"].as_u64().unwrap_or(u64::MAX)).collect::<Vec<_>>();
        assert_eq!(ids(&search), ids(&postgres), "{query}: OpenSearch and PostgreSQL disagree");
        // Every hit is the stored entry, with the hashes PostgreSQL holds.
        assert_eq!(search, postgres, "{query}");
    }
    let budget = all_pages(&stack, &stack.base, &admin, "q=budget", 100).await?;
    assert_eq!(budget.len(), 20);
    assert!(budget.windows(2).all(|w| w[0]["seq"].as_u64() > w[1]["seq"].as_u64()), "newest first");
    Ok(())
}

#[tokio::test]
async fn a_tenant_never_finds_another_tenants_events() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, first) = stack.tenant("first").await?;
    let (_, second) = stack.tenant("second").await?;
    append_batch(&stack, &first, vec![words_event("ada", "secret merger plans")]).await?;
    append_batch(&stack, &second, vec![words_event("bob", "public picnic")]).await?;
    pipes.drain_index().await?;
    let found = stack.call(Method::GET, "/v1/events?q=merger", Some(&first), None).await?;
    assert_eq!(seqs(&found).len(), 1, "{found:?}");
    let other = stack.call(Method::GET, "/v1/events?q=merger", Some(&second), None).await?;
    assert_eq!(other.status, StatusCode::OK);
    assert!(seqs(&other).is_empty(), "{other:?}");
    Ok(())
}

#[tokio::test]
async fn an_opensearch_outage_is_retried_and_indexed_when_it_returns() -> Result<()> {
    // A node of this test's own, since it is stopped half-way.
    let mut own = Node::start()?;
    let (stack, pipes) = Stack::start_pipelines(&own.url(), 10).await?;
    // The tenant's name is in its creation record, so it must not match the query.
    let (_, admin) = stack.tenant("node-down").await?;
    own.stop()?;
    append_batch(&stack, &admin, vec![words_event("ada", "written during outage")]).await?;

    // Delivered while the node is down: the indexer reports the message failed, so it stays.
    let (pool, search) = (pipes.pool.clone(), pipes.search.clone());
    let failures = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let counted = failures.clone();
    let indexer = move |event| {
        let (pool, search, counted) = (pool.clone(), search.clone(), counted.clone());
        async move {
            let response = shared::sqs::handle_index_event(&pool, Some(&search), &event).await;
            *counted.lock().unwrap() += response.batch_item_failures.len();
            response
        }
    };
    let mut delivered = 0;
    for _ in 0..5 {
        delivered += pipes.index.poll_once(1, &indexer).await?;
    }
    assert!(delivered >= 1, "the append's message was delivered");
    assert_eq!(*failures.lock().unwrap(), delivered, "every delivery during the outage failed");
    // Searching meanwhile is a retryable 503, not an empty answer.
    let down = stack.call(Method::GET, "/v1/events?q=outage", Some(&admin), None).await?;
    assert_eq!((down.status, down.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"), "{down:?}");
    assert!(down.headers.contains_key("retry-after"));

    own.restart()?;
    pipes.drain_index().await?;
    let found = stack.call(Method::GET, "/v1/events?q=outage", Some(&admin), None).await?;
    assert_eq!(seqs(&found).len(), 1, "indexed after the node came back: {found:?}");
    assert!(pipes.peek(&stack.sdk, &pipes.index_queue.dlq_url).await?.is_empty(), "nothing was dead-lettered");
    own.stop()?;
    Ok(())
}

#[tokio::test]
async fn a_malformed_message_ends_in_the_dlq_and_the_others_are_indexed() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 2).await?;
    let (_, admin) = stack.tenant("poison").await?;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    sqs.send_message().queue_url(&pipes.index_queue.url).message_body("{\"not\":\"an index message\"}").send().await?;
    append_batch(&stack, &admin, vec![words_event("ada", "healthy neighbour")]).await?;
    pipes.drain_index().await?;
    let found = stack.call(Method::GET, "/v1/events?q=neighbour", Some(&admin), None).await?;
    assert_eq!(seqs(&found).len(), 1, "{found:?}");
    let dead = pipes.peek(&stack.sdk, &pipes.index_queue.dlq_url).await?;
    assert_eq!(dead, vec!["{\"not\":\"an index message\"}".to_owned()]);
    Ok(())
}

#[tokio::test]
async fn the_relay_sends_an_append_whose_send_never_happened() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (tenant, admin) = stack.tenant("crashy").await?;
    pipes.drain_index().await?;
    // An append committed by an instance that stopped before sending its outbox row.
    let mut store = stack.db.store().await?;
    let tenant: uuid::Uuid = tenant.parse()?;
    let value = words_event("ada", "committed but never sent");
    shared::service::ingest::ingest(&mut store, tenant, shared::service::ingest::Request::One(&value), None).await?;
    drop(store);
    pipes.drain_index().await?;
    let before = stack.call(Method::GET, "/v1/events?q=never", Some(&admin), None).await?;
    assert!(seqs(&before).is_empty(), "not indexed before the relay ran: {before:?}");

    let queue = shared::service::indexing::OutboxQueues::index_only(shared::aws::queues::Queue::new(
        &stack.sdk,
        &pipes.index_queue.url,
    ));
    let settings =
        shared::service::indexing::RelaySettings { min_age: std::time::Duration::ZERO, ..Default::default() };
    let run = shared::service::indexing::run_relay(&pipes.pool, &queue, settings).await?;
    assert_eq!(run.sent, 1, "{run:?}");
    let again = shared::service::indexing::run_relay(&pipes.pool, &queue, settings).await?;
    assert_eq!(again.sent, 0, "a sent row is not sent twice: {again:?}");
    pipes.drain_index().await?;
    let after = stack.call(Method::GET, "/v1/events?q=never", Some(&admin), None).await?;
    assert_eq!(seqs(&after).len(), 1, "{after:?}");
    Ok(())
}

#[tokio::test]
async fn erased_content_leaves_the_search_index() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("forgetful").await?;
    append_batch(
        &stack,
        &admin,
        vec![words_event("ada", "ada private diary"), words_event("bob", "bob private diary")],
    )
    .await?;
    pipes.drain_index().await?;
    assert_eq!(seqs(&stack.call(Method::GET, "/v1/events?q=diary", Some(&admin), None).await?).len(), 2);
    let erased = stack.call(Method::POST, "/v1/erasures", Some(&admin), Some(&json!({ "actor_id": "ada" }))).await?;
    assert_eq!(erased.status, StatusCode::OK, "{erased:?}");
    pipes.drain_index().await?;
    let left = stack.call(Method::GET, "/v1/events?q=diary", Some(&admin), None).await?;
    assert_eq!(seqs(&left).len(), 1, "only bob's event is still found: {left:?}");
    let hits = pipes
        .search
        .search_seqs(
            uuid::Uuid::nil(),
            &shared::service::query::EventFilter { q: Some("ada".into()), ..Default::default() },
            shared::service::query::Order::Desc,
            None,
            10,
        )
        .await?;
    assert!(hits.is_empty());
    Ok(())
}

/// The checkpoint keys a tenant is told about, as an offline verifier would take them.
async fn trusted_keys(stack: &Stack, key: &str) -> Result<Vec<TrustedKey>> {
    let reply = stack.call(Method::GET, "/v1/checkpoints/public-key", Some(key), None).await?;
    let der = base64::engine::general_purpose::STANDARD.decode(reply.body["public_key"].as_str().context("key")?)?;
    Ok(vec![TrustedKey { key_name: reply.body["key_name"].as_str().context("name")?.to_owned(), spki_der: der }])
}

/// Requests an export, runs the export function and returns the finished job.
async fn export(stack: &Stack, pipes: &Pipelines, key: &str, request: Value) -> Result<Value> {
    let reply = stack.call(Method::POST, "/v1/exports", Some(key), Some(&request)).await?;
    anyhow::ensure!(reply.status == StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(reply.body["status"], "queued");
    let id = reply.body["id"].as_str().context("id")?.to_owned();
    pipes.drain_exports().await?;
    let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(key), None).await?;
    anyhow::ensure!(job.status == StatusCode::OK, "{job:?}");
    Ok(job.body)
}

/// Downloads a finished export's three files through its presigned URLs, without credentials.
async fn download(job: &Value) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let get = |name: &'static str| {
        let url = job["download"][name]["url"].as_str().map(str::to_owned);
        async move {
            let url = url.with_context(|| format!("no {name} URL"))?;
            let response = reqwest::Client::new().get(url).send().await?;
            anyhow::ensure!(response.status().is_success(), "GET {name}: {}", response.status());
            Ok::<_, anyhow::Error>(response.bytes().await?.to_vec())
        }
    };
    Ok((get("manifest").await?, get("data").await?, get("proof").await?))
}

#[tokio::test]
async fn a_jsonl_export_downloads_verifies_offline_and_matches_postgres() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("exporter").await?;
    let mut events: Vec<Value> =
        (0..40).map(|i| event(if i % 4 == 0 { "user.login" } else { "doc.read" }, "ada")).collect();
    events.push(json!({ "action": "user.login", "actor": { "id": "zoë, \"the\" admin" }, "metadata": { "why": "line\nbreak" } }));
    append_batch(&stack, &admin, events).await?;
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    // Appended after the checkpoint: outside the export's snapshot.
    append_batch(&stack, &admin, vec![event("user.login", "late")]).await?;

    let job =
        export(&stack, &pipes, &admin, json!({ "format": "jsonl", "filter": { "action": "user.login" } })).await?;
    assert_eq!(job["status"], "done", "{job}");
    let (manifest, data, proof) = download(&job).await?;
    let summary = verify_export(&manifest, data.as_slice(), proof.as_slice(), &trusted_keys(&stack, &admin).await?)
        .map_err(|f| anyhow::anyhow!("{f}"))?;

    // Exactly the matching entries PostgreSQL holds below the snapshot, byte for byte.
    let tree_size = job["tree_size"].as_u64().context("tree_size")?;
    let listed: Vec<Value> = all_pages(&stack, &stack.base, &admin, "action=user.login&order=asc", 1000)
        .await?
        .into_iter()
        .filter(|e| e["seq"].as_u64() < Some(tree_size))
        .collect();
    let rows: Vec<Value> =
        data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(serde_json::from_slice).collect::<Result<_, _>>()?;
    assert_eq!(rows.len(), listed.len());
    assert_eq!(summary.rows, rows.len() as u64);
    assert_eq!(job["rows"], rows.len());
    for (row, entry) in rows.iter().zip(&listed) {
        for field in
            ["seq", "id", "received_at", "event", "salt", "content_digest", "leaf_hash", "chain_hash", "erased"]
        {
            assert_eq!(row[field], entry[field], "{field} of seq {}", entry["seq"]);
        }
    }
    assert!(rows.iter().all(|r| r["event"]["actor"]["id"] != "late"));
    let m: Value = serde_json::from_slice(&manifest)?;
    assert_eq!(m["checkpoint"]["tree_size"], tree_size);
    assert!(m["proof"]["nodes"].as_u64() > Some(0), "a filtered export has proof nodes");
    Ok(())
}

#[tokio::test]
async fn a_gzip_csv_export_quotes_commas_quotes_and_newlines() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("csv").await?;
    let tricky = "a, \"quoted\" value\nwith a newline";
    append_batch(
        &stack,
        &admin,
        vec![json!({ "action": "doc.share", "actor": { "id": tricky, "name": "Ünïcødé ✓" }, "source": "x,y" })],
    )
    .await?;
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let job = export(&stack, &pipes, &admin, json!({ "format": "csv", "gzip": true })).await?;
    assert_eq!(job["status"], "done", "{job}");
    let (manifest, data, proof) = download(&job).await?;
    verify_export(&manifest, data.as_slice(), proof.as_slice(), &trusted_keys(&stack, &admin).await?)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let mut csv_text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(data.as_slice()), &mut csv_text)?;
    let mut reader = csv::Reader::from_reader(csv_text.as_slice());
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let shared_row = records.iter().find(|r| &r[column("action")] == "doc.share").context("the row")?;
    assert_eq!(&shared_row[column("actor_id")], tricky);
    assert_eq!(&shared_row[column("actor_name")], "Ünïcødé ✓");
    assert_eq!(&shared_row[column("source")], "x,y");
    // Every entry of the tenant is a row: its creation record, the key's and the event.
    assert_eq!(records.len() as u64, job["tree_size"].as_u64().context("size")?);
    Ok(())
}

#[tokio::test]
async fn an_export_of_no_rows_completes_and_verifies() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("empty").await?;
    append_batch(&stack, &admin, vec![event("user.login", "ada")]).await?;
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let job = export(&stack, &pipes, &admin, json!({ "format": "jsonl", "filter": { "actor_id": "nobody" } })).await?;
    assert_eq!((job["status"].as_str(), job["rows"].as_u64()), (Some("done"), Some(0)), "{job}");
    let (manifest, data, proof) = download(&job).await?;
    assert!(data.is_empty());
    let summary = verify_export(&manifest, data.as_slice(), proof.as_slice(), &trusted_keys(&stack, &admin).await?)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!((summary.rows, summary.first_seq), (0, None));
    Ok(())
}

#[tokio::test]
async fn an_export_that_cannot_run_is_reported_failed() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("unsigned").await?;
    // No checkpoint was ever signed for this tenant: nothing can be exported verifiably.
    let job = export(&stack, &pipes, &admin, json!({ "format": "csv" })).await?;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "no_checkpoint");
    assert!(job["download"].is_null());
    Ok(())
}

#[tokio::test]
async fn exports_are_private_to_their_tenant_and_bad_requests_queue_nothing() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, first) = stack.tenant("first").await?;
    let (_, second) = stack.tenant("second").await?;
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let job = export(&stack, &pipes, &first, json!({ "format": "jsonl" })).await?;
    assert_eq!(job["status"], "done", "{job}");
    let id = job["id"].as_str().context("id")?;
    let theirs = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(&second), None).await?;
    assert_eq!((theirs.status, theirs.error_code()), (StatusCode::NOT_FOUND, "not_found"));
    let listed = stack.call(Method::GET, "/v1/exports", Some(&second), None).await?;
    assert_eq!(listed.body["exports"], json!([]));
    let reader = stack.key(&first, &["events:read"]).await?;
    let forbidden = stack.call(Method::POST, "/v1/exports", Some(&reader), Some(&json!({ "format": "csv" }))).await?;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    // A body of the wrong shape is invalid_json (as for every route), a filter the listing would
    // refuse is invalid_request; each names what is wrong.
    for (body, code, field) in [
        (json!({}), "invalid_json", "format"),
        (json!({ "format": "xml" }), "invalid_json", "format"),
        (json!({ "format": "csv", "tenant_id": "x" }), "invalid_json", "tenant_id"),
        (json!({ "format": "csv", "filter": { "limit": "5" } }), "invalid_request", "filter.limit"),
        (json!({ "format": "csv", "filter": { "actor_id": 5 } }), "invalid_request", "filter.actor_id"),
        (json!({ "format": "csv", "filter": { "outcome": "meh" } }), "invalid_request", "filter.outcome"),
    ] {
        let reply = stack.call(Method::POST, "/v1/exports", Some(&second), Some(&body)).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {reply:?}");
        assert_eq!(reply.error_code(), code, "{body}");
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: {message}");
    }
    let listed = stack.call(Method::GET, "/v1/exports", Some(&second), None).await?;
    assert_eq!(listed.body["exports"], json!([]), "a rejected request queued nothing");
    let mine = stack.call(Method::GET, "/v1/exports", Some(&first), None).await?;
    assert_eq!(mine.body["exports"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn a_long_export_hands_on_and_a_later_run_completes_the_same_upload() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("long").await?;
    for chunk in 0..3 {
        let events: Vec<Value> = (0..100).map(|i| event("doc.read", &format!("u{chunk}-{i}"))).collect();
        append_batch(&stack, &admin, events).await?;
    }
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let reply =
        stack.call(Method::POST, "/v1/exports", Some(&admin), Some(&json!({ "format": "csv", "gzip": true }))).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let id = reply.body["id"].as_str().context("id")?.to_owned();

    // Every run nears its deadline after one chunk of 64 rows, so the export takes several runs.
    let mut worker = pipes.worker.clone();
    worker.settings.chunk_rows = 64;
    worker.settings.margin = std::time::Duration::from_secs(3600);
    let outcomes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let exporter = move |event: aws_lambda_events::sqs::SqsEvent| {
        let (worker, seen) = (worker.clone(), seen.clone());
        async move {
            let body = event.records[0].body.clone().unwrap_or_default();
            let outcome = worker.handle(&body, 1, std::time::Instant::now() + std::time::Duration::from_secs(60)).await;
            seen.lock().unwrap().push(format!("{outcome:?}"));
            let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
            if outcome.is_err() {
                let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
                failure.item_identifier = event.records[0].message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
            response
        }
    };
    for _ in 0..20 {
        if pipes.export.poll_once(1, &exporter).await? == 0 {
            break;
        }
        // Between runs the job is visible half-way, with its rows so far.
        let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(&admin), None).await?;
        assert!(["running", "done"].contains(&job.body["status"].as_str().unwrap_or_default()), "{job:?}");
    }
    let outcomes = outcomes.lock().unwrap().clone();
    assert!(outcomes.len() >= 5, "the export took several runs: {outcomes:?}");
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| o == "Ok(HandedOn)"), "{outcomes:?}");
    assert_eq!(outcomes.last().map(String::as_str), Some("Ok(Done)"));

    let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(&admin), None).await?.body;
    assert_eq!(job["status"], "done", "{job}");
    let (manifest, data, proof) = download(&job).await?;
    let summary = verify_export(&manifest, data.as_slice(), proof.as_slice(), &trusted_keys(&stack, &admin).await?)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(summary.rows, job["tree_size"].as_u64().context("size")?);
    assert!(summary.rows > 300);
    Ok(())
}

#[tokio::test]
async fn a_duplicate_delivery_of_an_export_message_never_runs_twice() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("twice").await?;
    append_batch(&stack, &admin, (0..50).map(|i| event("doc.read", &format!("u{i}"))).collect()).await?;
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let reply = stack.call(Method::POST, "/v1/exports", Some(&admin), Some(&json!({ "format": "jsonl" }))).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let id = reply.body["id"].as_str().context("id")?.to_owned();
    let body = pipes.peek(&stack.sdk, &pipes.export_queue.url).await?.pop().context("the job's message")?;

    // Two deliveries of the same message at once (SQS may deliver a message twice).
    let far = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let (first, second) = tokio::join!(pipes.worker.handle(&body, 1, far), pipes.worker.handle(&body, 1, far));
    let mut outcomes = vec![format!("{:?}", first?), format!("{:?}", second?)];
    outcomes.sort();
    assert!(
        outcomes == ["Busy", "Done"] || outcomes == ["Done", "Stale"],
        "exactly one delivery ran the export: {outcomes:?}"
    );
    // A later redelivery finds the job past its step.
    assert_eq!(format!("{:?}", pipes.worker.handle(&body, 2, far).await?), "Stale");

    let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(&admin), None).await?.body;
    assert_eq!(job["status"], "done", "{job}");
    let (manifest, data, proof) = download(&job).await?;
    let summary = verify_export(&manifest, data.as_slice(), proof.as_slice(), &trusted_keys(&stack, &admin).await?)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(summary.rows, job["tree_size"].as_u64().context("size")?);
    Ok(())
}

/// The tenant's documents in `index` that are not tombstones: their seqs, in order.
async fn indexed_seqs(node: &str, index: &str, tenant: &str) -> Result<Vec<u64>> {
    let body = json!({
        "size": 10000,
        "_source": false,
        "docvalue_fields": ["seq"],
        "sort": [{ "seq": "asc" }],
        "query": { "bool": {
            "filter": [{ "term": { "tenant_id": tenant } }],
            "must_not": [{ "term": { "erased": true } }],
        } },
    });
    let url = format!("{node}/{index}/_search?routing={tenant}");
    let reply: Value = reqwest::Client::new().post(url).json(&body).send().await?.error_for_status()?.json().await?;
    let hits = reply["hits"]["hits"].as_array().context("hits")?;
    hits.iter().map(|h| h["fields"]["seq"][0].as_u64().context("a hit without its seq")).collect()
}

/// A document of `index` as stored (its `_source`), or `None` when there is none.
async fn stored_document(node: &str, index: &str, tenant: &str, id: &str) -> Result<Option<Value>> {
    let reply = reqwest::Client::new().get(format!("{node}/{index}/_doc/{id}?routing={tenant}")).send().await?;
    if reply.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let doc: Value = reply.error_for_status()?.json().await?;
    Ok(Some(doc["_source"].clone()))
}

#[tokio::test]
async fn a_message_whose_documents_partly_fail_is_retried_until_all_are_indexed() -> Result<()> {
    let node = node()?;
    let (stack, pipes) = Stack::start_pipelines(&node, 20).await?;
    let (tenant, admin) = stack.tenant("partly").await?;
    // An index whose mapping does not know `severity` yet (the mapping is strict): a document with
    // a severity is refused by OpenSearch itself, one without is written, in the same `_bulk`.
    let index = format!("partial-{}", uuid::Uuid::new_v4().simple());
    let template = local_run::index_template()?;
    let mut mappings = template["template"]["mappings"].clone();
    mappings["properties"].as_object_mut().context("properties")?.remove("severity");
    let http = reqwest::Client::new();
    http.put(format!("{node}/{index}"))
        .json(&json!({ "settings": template["template"]["settings"], "mappings": mappings }))
        .send()
        .await?
        .error_for_status()?;
    let search = shared::search::OpenSearch::new(&stack.sdk, &node, &index)?;

    let events: Vec<Value> = (0..10)
        .map(|i| {
            let mut e = event("doc.read", &format!("reader-{i}"));
            if i % 2 == 0 {
                e["severity"] = json!("high");
            }
            e
        })
        .collect();
    let appended = append_batch(&stack, &admin, events).await?;
    let batch_seqs: Vec<u64> =
        appended["events"].as_array().context("events")?.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(batch_seqs.len(), 10);

    let pool = pipes.pool.clone();
    let failures = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let counted = failures.clone();
    let indexer = move |event| {
        let (pool, search, counted) = (pool.clone(), search.clone(), counted.clone());
        async move {
            let response = shared::sqs::handle_index_event(&pool, Some(&search), &event).await;
            *counted.lock().unwrap() += response.batch_item_failures.len();
            response
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while *failures.lock().unwrap() == 0 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "no delivery failed");
        pipes.index.poll_once(1, &indexer).await?;
    }
    let partial = shared::search::OpenSearch::new(&stack.sdk, &node, &index)?;
    partial.refresh().await?;
    let seen = indexed_seqs(&node, &index, &tenant).await?;
    let (with_severity, without): (Vec<u64>, Vec<u64>) = batch_seqs.iter().partition(|s| (*s - batch_seqs[0]) % 2 == 0);
    assert!(without.iter().all(|s| seen.contains(s)), "the accepted half was written: {seen:?}");
    assert!(with_severity.iter().all(|s| !seen.contains(s)), "the refused half was not: {seen:?}");

    // The mapping learns the field; the message, never acknowledged, is delivered again and
    // every document of it is written.
    http.put(format!("{node}/{index}/_mapping"))
        .json(&json!({ "properties": { "severity": { "type": "keyword" } } }))
        .send()
        .await?
        .error_for_status()?;
    support::drain(&pipes.index, &indexer).await?;
    partial.refresh().await?;
    let size = stack.tree_size(&admin).await?;
    assert_eq!(indexed_seqs(&node, &index, &tenant).await?, (0..size).collect::<Vec<_>>());
    assert!(pipes.peek(&stack.sdk, &pipes.index_queue.dlq_url).await?.is_empty(), "nothing was dead-lettered");
    Ok(())
}

#[tokio::test]
async fn once_the_indexer_acknowledges_every_seq_of_the_tenant_is_in_the_index() -> Result<()> {
    let node = node()?;
    let (stack, pipes) = Stack::start_pipelines(&node, 3).await?;
    let (tenant, admin) = stack.tenant("counted").await?;
    // Two full batches and a part, so messages of 1,000 entries meet `_bulk` requests of 1,000.
    for (batch, n) in [1000, 1000, 437].into_iter().enumerate() {
        append_batch(&stack, &admin, (0..n).map(|i| event("doc.read", &format!("u{batch}-{i}"))).collect()).await?;
    }
    pipes.drain_index().await?;
    let size = stack.tree_size(&admin).await?;
    assert!(size > 2437);
    assert_eq!(indexed_seqs(&node, pipes.search.index(), &tenant).await?, (0..size).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn a_message_naming_entries_that_were_not_read_is_not_acknowledged() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (tenant, admin) = stack.tenant("short").await?;
    pipes.drain_index().await?;
    let size = stack.tree_size(&admin).await?;
    let tenant_id: uuid::Uuid = tenant.parse()?;
    let message = |id: &str, first_seq: u64, count: u32| {
        let m = shared::service::indexing::IndexMessage { v: 1, outbox_id: 1, tenant_id, first_seq, count };
        shared::service::indexing::QueuedMessage { id: id.to_owned(), body: m.body() }
    };
    // All there; partly beyond the head; wholly beyond it.
    let messages = [message("whole", 0, size as u32), message("overlaps", size - 1, 2), message("beyond", size, 5)];
    let run = shared::service::indexing::index_messages(&pipes.pool, &pipes.search, &messages).await;
    let mut failed = run.failed.clone();
    failed.sort();
    assert_eq!(failed, ["beyond", "overlaps"], "{run:?}");
    // The same for PostgreSQL's own full text.
    let run = shared::service::indexing::index_messages_in_postgres(&pipes.pool, &messages).await;
    let mut failed = run.failed.clone();
    failed.sort();
    assert_eq!(failed, ["beyond", "overlaps"], "{run:?}");
    Ok(())
}

#[tokio::test]
async fn a_stale_content_write_never_brings_erased_text_back() -> Result<()> {
    let node = node()?;
    let (stack, pipes) = Stack::start_pipelines(&node, 3).await?;
    let (tenant, admin) = stack.tenant("tombstones").await?;
    append_batch(&stack, &admin, vec![words_event("ada", "ada secret diary"), words_event("bob", "bob open diary")])
        .await?;
    pipes.drain_index().await?;
    let tenant_id: uuid::Uuid = tenant.parse()?;
    let size = stack.tree_size(&admin).await?;
    // What an indexer read before the erasure: the content of ada's event.
    let mut store = stack.db.store().await?;
    let before = store.entries_in_ranges(tenant_id, &[(0, size)]).await?;
    drop(store);
    let stale: Vec<_> =
        before.into_iter().filter(|e| e.content.as_deref().is_some_and(|c| c.contains("ada secret"))).collect();
    assert_eq!(stale.len(), 1);
    let ada_id = stale[0].entry.id.to_string();

    let erased = stack.call(Method::POST, "/v1/erasures", Some(&admin), Some(&json!({ "actor_id": "ada" }))).await?;
    assert_eq!(erased.status, StatusCode::OK, "{erased:?}");
    pipes.drain_index().await?;
    let tombstone = stored_document(&node, pipes.search.index(), &tenant, &ada_id).await?.context("a tombstone")?;
    assert_eq!(tombstone["erased"], true, "{tombstone}");
    assert!(tombstone.get("text").is_none() && tombstone.get("actor_id").is_none(), "{tombstone}");

    // The content write replayed after the erasure: OpenSearch refuses the lower version.
    let document = shared::search::document::index_document(&stale[0]).context("a document")?;
    let replay = shared::search::opensearch::BulkAction {
        tenant: tenant_id,
        id: stale[0].entry.id,
        version: shared::search::document::CONTENT_VERSION,
        document,
    };
    let outcomes = pipes.search.bulk(std::slice::from_ref(&replay)).await?;
    assert_eq!(outcomes, [shared::search::opensearch::ItemOutcome::Superseded]);
    // The same through the indexer's own write: superseded, which is not a failure.
    let run = shared::service::indexing::write_entries(&pipes.pool, &pipes.search, tenant_id, &stale).await?;
    assert_eq!((run.superseded, run.indexed, run.failed.len()), (1, 0, 0), "{run:?}");
    pipes.search.refresh().await?;

    let ada = stored_document(&node, pipes.search.index(), &tenant, &ada_id).await?.context("the document")?;
    assert_eq!(ada["erased"], true, "still the tombstone: {ada}");
    for (query, expected) in [("q=secret", 0), ("q=ada", 0), ("q=diary", 1)] {
        let found = stack.call(Method::GET, &format!("/v1/events?{query}"), Some(&admin), None).await?;
        assert_eq!(seqs(&found).len(), expected, "{query}: {found:?}");
    }
    // A query of exclusions alone matches documents without text; never a tombstone.
    let all = stack.call(Method::GET, "/v1/events?q=-zzzz&limit=100", Some(&admin), None).await?;
    assert!(all.body["events"].as_array().is_some_and(|e| !e.is_empty()), "{all:?}");
    assert!(!seqs(&all).contains(&stale[0].entry.seq), "the erased entry is not a hit: {all:?}");
    Ok(())
}

#[tokio::test]
async fn content_read_before_an_erasure_and_written_after_it_is_tombstoned_at_once() -> Result<()> {
    let node = node()?;
    let (stack, pipes) = Stack::start_pipelines(&node, 3).await?;
    let (tenant, admin) = stack.tenant("race").await?;
    pipes.drain_index().await?;
    let tenant_id: uuid::Uuid = tenant.parse()?;
    append_batch(&stack, &admin, vec![words_event("ada", "ada hidden plans")]).await?;
    // An indexer reads ada's entry (content present) and is slow to write it...
    let size = stack.tree_size(&admin).await?;
    let mut store = stack.db.store().await?;
    let read = store.entries_in_ranges(tenant_id, &[(size - 1, size)]).await?;
    drop(store);
    assert!(read[0].content.is_some());

    // ... meanwhile ada is erased and the erasure record is applied to an index that has no
    // document of ada's yet, so it finds nothing to tombstone.
    let erased = stack.call(Method::POST, "/v1/erasures", Some(&admin), Some(&json!({ "actor_id": "ada" }))).await?;
    assert_eq!(erased.status, StatusCode::OK, "{erased:?}");
    let record = stack.tree_size(&admin).await? - 1;
    let message =
        shared::service::indexing::IndexMessage { v: 1, outbox_id: 0, tenant_id, first_seq: record, count: 1 };
    let queued = shared::service::indexing::QueuedMessage { id: "record".into(), body: message.body() };
    let run = shared::service::indexing::index_messages(&pipes.pool, &pipes.search, &[queued]).await;
    assert!(run.failed.is_empty(), "{run:?}");
    assert_eq!(run.erased, 0, "nothing of ada's was in the index yet: {run:?}");

    // The slow write lands now: written, then read again, found erased and tombstoned.
    let late = shared::service::indexing::write_entries(&pipes.pool, &pipes.search, tenant_id, &read).await?;
    assert_eq!((late.indexed, late.erased, late.failed.len()), (1, 1, 0), "{late:?}");
    pipes.drain_index().await?;
    let doc = stored_document(&node, pipes.search.index(), &tenant, &read[0].entry.id.to_string()).await?;
    assert_eq!(doc.context("the document")?["erased"], true);
    for query in ["q=hidden", "q=ada", "q=plans"] {
        let found = stack.call(Method::GET, &format!("/v1/events?{query}"), Some(&admin), None).await?;
        assert!(seqs(&found).is_empty(), "{query}: {found:?}");
    }
    Ok(())
}

/// Receives one message of a queue and deletes it, as a run that took it and then stopped
/// would leave it: gone. Returns its body.
async fn take_message(sdk: &aws_config::SdkConfig, queue_url: &str) -> Result<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let out = sqs.receive_message().queue_url(queue_url).max_number_of_messages(1).wait_time_seconds(2).send().await?;
    let message = out.messages().first().context("no message in the queue")?;
    sqs.delete_message()
        .queue_url(queue_url)
        .receipt_handle(message.receipt_handle().context("handle")?)
        .send()
        .await?;
    message.body().map(str::to_owned).context("a message without a body")
}

/// Runs the export queue's messages through `worker` until the queue stays empty; returns each
/// run's outcome.
async fn run_exports(pipes: &Pipelines, worker: &shared::service::export::ExportWorker) -> Result<Vec<String>> {
    let outcomes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let worker = worker.clone();
    let exporter = move |event: aws_lambda_events::sqs::SqsEvent| {
        let (worker, seen) = (worker.clone(), seen.clone());
        async move {
            let body = event.records[0].body.clone().unwrap_or_default();
            let far = std::time::Instant::now() + std::time::Duration::from_secs(300);
            let outcome = worker.handle(&body, 1, far).await;
            seen.lock().expect("outcomes").push(format!("{outcome:?}"));
            let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
            if !matches!(outcome, Ok(o) if o != shared::service::export::RunOutcome::Busy) {
                let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
                failure.item_identifier = event.records[0].message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
            response
        }
    };
    support::drain(&pipes.export, &exporter).await?;
    let outcomes = outcomes.lock().expect("outcomes").clone();
    Ok(outcomes)
}

async fn verified_rows(stack: &Stack, key: &str, id: &str) -> Result<u64> {
    let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(key), None).await?.body;
    anyhow::ensure!(job["status"] == "done", "{job}");
    let (manifest, data, proof) = download(&job).await?;
    let summary = verify_export(&manifest, data.as_slice(), proof.as_slice(), &trusted_keys(stack, key).await?)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(summary.rows, job["tree_size"].as_u64().context("size")?);
    Ok(summary.rows)
}

async fn queued_export(stack: &Stack, key: &str, events: usize) -> Result<String> {
    append_batch(stack, key, (0..events).map(|i| event("doc.read", &format!("u{i}"))).collect()).await?;
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    let reply =
        stack.call(Method::POST, "/v1/exports", Some(key), Some(&json!({ "format": "csv", "gzip": true }))).await?;
    anyhow::ensure!(reply.status == StatusCode::ACCEPTED, "{reply:?}");
    Ok(reply.body["id"].as_str().context("id")?.to_owned())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn an_export_whose_next_message_was_never_sent_is_swept_and_completes() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (_, admin) = stack.tenant("stranded").await?;
    let id = queued_export(&stack, &admin, 200).await?;
    let step0 = take_message(&stack.sdk, &pipes.export_queue.url).await?;
    // A run that hands on after one chunk and whose next message is never sent (its queue is not
    // there): the job is left `running` at step 1 with no message and no lease.
    let mut stopping = pipes.worker.clone();
    stopping.settings.chunk_rows = 64;
    stopping.settings.margin = std::time::Duration::from_secs(3600);
    stopping.queue = shared::aws::queues::Queue::new(&stack.sdk, format!("{}-gone", pipes.export_queue.url));
    let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
    assert_eq!(format!("{:?}", stopping.handle(&step0, 1, far).await?), "HandedOn");
    let job = stack.call(Method::GET, &format!("/v1/exports/{id}"), Some(&admin), None).await?.body;
    assert_eq!(job["status"], "running", "{job}");
    assert!(pipes.peek(&stack.sdk, &pipes.export_queue.url).await?.is_empty(), "no message continues it");

    let sweep = |at: i64| shared::service::export::sweep_stalled(&pipes.worker.jobs, &pipes.worker.queue, at);
    let early = sweep(now()).await?;
    assert_eq!(early.resent, 0, "within its grace period the job is left alone: {early:?}");
    // Past the grace period, two sweeps at once (the schedule may overlap). DynamoDB lets one of
    // their conditional writes through; the local endpoint does not serialise them, so both may
    // send. Either way the step runs once: a duplicate finds the job past its step.
    let due = now() + shared::service::export::SWEEP_GRACE.as_secs() as i64 + 1;
    let (first, second) = tokio::join!(sweep(due), sweep(due));
    let resent = first?.resent + second?.resent;
    assert!((1..=2).contains(&resent), "{resent}");
    assert_eq!(sweep(due).await?.resent, 0, "a swept job is not due again at once");

    let mut outcomes = run_exports(&pipes, &pipes.worker).await?;
    outcomes.sort();
    let mut expected = vec!["Ok(Done)".to_owned()];
    expected.extend((1..resent).map(|_| "Ok(Stale)".to_owned()));
    assert_eq!(outcomes, expected, "the swept step ran once, to the end");
    assert!(verified_rows(&stack, &admin, &id).await? > 200);
    let later = sweep(due + 86_400).await?;
    assert_eq!(later.stalled, 0, "a finished job leaves the sweep index: {later:?}");
    Ok(())
}

#[tokio::test]
async fn an_export_whose_run_died_under_its_lease_is_swept_once_the_lease_ends() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (tenant, admin) = stack.tenant("died").await?;
    let id = queued_export(&stack, &admin, 50).await?;
    let (tenant, export): (uuid::Uuid, uuid::Uuid) = (tenant.parse()?, id.parse()?);
    // A run claimed step 0 and died with the message (it ran out of deliveries, say).
    take_message(&stack.sdk, &pipes.export_queue.url).await?;
    let grace = shared::service::export::SWEEP_GRACE.as_secs() as i64;
    let lease_until = now() + 3600;
    let claim = pipes.worker.jobs.claim(tenant, export, 0, now(), lease_until, lease_until + grace).await?;
    assert!(matches!(claim, shared::aws::export_jobs::Claim::Claimed(_)), "{claim:?}");
    let sweep = |at: i64| shared::service::export::sweep_stalled(&pipes.worker.jobs, &pipes.worker.queue, at);

    // While the lease lasts the job is not touched, even past the grace the job was queued with.
    let during = sweep(now() + grace + 60).await?;
    assert_eq!((during.stalled, during.resent), (0, 0), "{during:?}");
    let untouched = pipes.worker.jobs.get(tenant, export, now()).await?.context("the job")?;
    assert_eq!((untouched.step, untouched.lease_until, untouched.resends), (0, Some(lease_until), 0));

    // Once the lease and the grace after it are over, the step's message is sent again.
    let after = sweep(lease_until + grace + 1).await?;
    assert_eq!((after.stalled, after.resent), (1, 1), "{after:?}");
    assert_eq!(pipes.peek(&stack.sdk, &pipes.export_queue.url).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_export_whose_lease_expired_without_a_message_runs_to_done_exactly_once() -> Result<()> {
    let (stack, pipes) = Stack::start_pipelines(&node()?, 3).await?;
    let (tenant, admin) = stack.tenant("expired").await?;
    let id = queued_export(&stack, &admin, 50).await?;
    let (tenant, export): (uuid::Uuid, uuid::Uuid) = (tenant.parse()?, id.parse()?);
    take_message(&stack.sdk, &pipes.export_queue.url).await?;
    // A run that claimed step 0 long ago and died: its lease has expired, no message is left.
    let grace = shared::service::export::SWEEP_GRACE.as_secs() as i64;
    let lease_until = now() - 1;
    pipes.worker.jobs.claim(tenant, export, 0, now() - 10, lease_until, lease_until + grace).await?;

    let sweep = |at: i64| shared::service::export::sweep_stalled(&pipes.worker.jobs, &pipes.worker.queue, at);
    let due = lease_until + grace + 1;
    assert_eq!(sweep(due).await?.resent, 1);
    // A second sweep (the next minute's run, or a late one) finds nothing to do, and a duplicate
    // of the message on top runs nothing twice.
    assert_eq!(sweep(due + 30).await?.resent, 0);
    let duplicate = shared::service::export::ExportMessage { v: 1, tenant_id: tenant, export_id: export, step: 0 };
    pipes.worker.queue.send(&duplicate.body(), 0).await?;
    let mut outcomes = run_exports(&pipes, &pipes.worker).await?;
    outcomes.sort();
    assert_eq!(outcomes, ["Ok(Done)", "Ok(Stale)"], "one run did the export");
    assert!(verified_rows(&stack, &admin, &id).await? > 50);
    Ok(())
}
