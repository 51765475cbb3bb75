//! A real OpenSearch node starts on loopback, indexes and finds documents, and can be taken away
//! (stopped, or paused) and brought back the way the retry tests need.
//!
//! Each test prints how long its node took to start and its resident memory, so a run with
//! `--nocapture` shows the figures.

use localstack::opensearch::OpenSearch;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DOCS: usize = 5_000;

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().expect("a plain HTTP client builds")
}

async fn send_json(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "OpenSearch answered {status}: {body}");
    Ok(body)
}

/// `_bulk` of `count` events for `tenant`, numbered from 0, as NDJSON.
fn bulk_body(index: &str, tenant: &str, count: usize) -> String {
    let mut body = String::new();
    for seq in 0..count {
        let action = json!({ "index": { "_index": index, "_id": format!("{tenant}-{seq}") } });
        let kind = if seq % 10 == 0 { "user.deleted" } else { "user.login" };
        let doc = json!({ "tenant": tenant, "seq": seq, "kind": kind, "message": format!("event {seq} of {tenant}") });
        body.push_str(&format!("{action}\n{doc}\n"));
    }
    body
}

async fn create_index(http: &reqwest::Client, url: &str, index: &str) -> anyhow::Result<()> {
    let mapping = json!({
        // The integ-test distribution has no analysis-common module; a custom analyzer from the
        // core's standard tokenizer and lowercase filter (what the audit index uses) must work.
        "settings": {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "analysis": { "analyzer": { "folded": { "type": "custom", "tokenizer": "standard", "filter": ["lowercase"] } } }
        },
        "mappings": { "properties": {
            "tenant": { "type": "keyword" },
            "seq": { "type": "long" },
            "kind": { "type": "keyword" },
            "message": { "type": "text", "analyzer": "folded" }
        } }
    });
    let created = send_json(http.put(format!("{url}/{index}")).json(&mapping)).await?;
    anyhow::ensure!(created["acknowledged"] == true, "index {index} not created: {created}");
    Ok(())
}

async fn bulk(http: &reqwest::Client, url: &str, index: &str, tenant: &str, count: usize) -> anyhow::Result<Value> {
    send_json(
        http.post(format!("{url}/_bulk?refresh=true"))
            .header("content-type", "application/x-ndjson")
            .body(bulk_body(index, tenant, count)),
    )
    .await
}

fn report(what: &str, node: &OpenSearch, started: Duration) -> anyhow::Result<()> {
    let rss_mib = node.resident_kib()? / 1024;
    println!("{what}: yellow after {:.1} s, resident {rss_mib} MiB", started.as_secs_f64());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_indexed_documents_are_found_by_term_and_full_text_search() -> anyhow::Result<()> {
    let started = Instant::now();
    let node = tokio::task::block_in_place(OpenSearch::shared)?;
    let start_time = started.elapsed();
    let url = node.url();
    let http = client(Duration::from_secs(60));

    let health = send_json(http.get(format!("{url}/_cluster/health"))).await?;
    assert_eq!(health["number_of_nodes"], 1, "{health}");
    let info = send_json(http.get(&url)).await?;
    assert_eq!(info["version"]["number"], localstack::opensearch::VERSION, "{info}");

    create_index(&http, &url, "events-bulk").await?;
    let indexed = bulk(&http, &url, "events-bulk", "tenant-a", DOCS).await?;
    assert_eq!(indexed["errors"], false, "bulk reported errors");
    assert_eq!(indexed["items"].as_array().map(Vec::len), Some(DOCS));
    bulk(&http, &url, "events-bulk", "tenant-b", 10).await?;

    let count = send_json(
        http.post(format!("{url}/events-bulk/_count")).json(&json!({ "query": { "term": { "tenant": "tenant-a" } } })),
    )
    .await?;
    assert_eq!(count["count"], DOCS, "{count}");

    let deleted = send_json(http.post(format!("{url}/events-bulk/_search")).json(&json!({
        "query": { "bool": { "filter": [
            { "term": { "tenant": "tenant-a" } },
            { "term": { "kind": "user.deleted" } }
        ] } },
        "sort": [{ "seq": "asc" }],
        "size": 3,
        "track_total_hits": true
    })))
    .await?;
    assert_eq!(deleted["hits"]["total"]["value"], DOCS / 10, "{deleted}");
    let seqs: Vec<&Value> =
        deleted["hits"]["hits"].as_array().into_iter().flatten().map(|h| &h["_source"]["seq"]).collect();
    assert_eq!(seqs, [&json!(0), &json!(10), &json!(20)]);

    let text =
        send_json(http.post(format!("{url}/events-bulk/_search")).json(
            &json!({ "query": { "match": { "message": { "query": "EVENT 4242 Tenant-A", "operator": "and" } } } }),
        ))
        .await?;
    assert_eq!(text["hits"]["total"]["value"], 1, "{text}");
    assert_eq!(text["hits"]["hits"][0]["_id"], "tenant-a-4242");

    report("shared node", node, start_time)?;
    let stats = send_json(http.get(format!("{url}/_nodes/stats/jvm"))).await?;
    let jvm = stats["nodes"].as_object().and_then(|nodes| nodes.values().next()).map(|n| &n["jvm"]["mem"]);
    let peak = jvm.map(|mem| &mem["pools"]["old"]["peak_used_in_bytes"]).and_then(Value::as_u64).unwrap_or(0);
    let used = jvm.and_then(|mem| mem["heap_used_in_bytes"].as_u64()).unwrap_or(0);
    let max = jvm.and_then(|mem| mem["heap_max_in_bytes"].as_u64()).unwrap_or(0);
    println!(
        "after {DOCS} documents: heap {} MiB used, old generation peak {} MiB, of {} MiB",
        used >> 20,
        peak >> 20,
        max >> 20
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_refuses_connects_and_a_retried_write_lands_after_restart() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut node = tokio::task::block_in_place(OpenSearch::start)?;
    report("dedicated node", &node, started.elapsed())?;
    let url = node.url();
    let http = client(Duration::from_secs(5));
    create_index(&http, &url, "events-outage").await?;
    bulk(&http, &url, "events-outage", "before", 3).await?;

    tokio::task::block_in_place(|| node.stop())?;
    let refused = http.get(&url).send().await.expect_err("a stopped node answered");
    assert!(refused.is_connect(), "a stopped node should refuse connects, got {refused:?}");

    // The writer retries until the node is back, as the indexer must.
    let writer = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move {
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                match bulk(&http, &url, "events-outage", "during", 2).await {
                    Ok(done) if done["errors"] == false => return Ok::<u32, anyhow::Error>(attempts),
                    Ok(done) => anyhow::bail!("bulk after restart reported errors: {done}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    tokio::task::block_in_place(|| node.restart())?;
    println!("restart: yellow after {:.1} s", restarted.elapsed().as_secs_f64());
    assert_eq!(node.url(), url, "a restarted node keeps its port");

    let attempts = tokio::time::timeout(Duration::from_secs(60), writer).await???;
    assert!(attempts > 1, "the write should have failed while the node was down");
    let all = send_json(http.post(format!("{url}/events-outage/_count"))).await?;
    assert_eq!(all["count"], 5, "documents from before the stop and the retried write: {all}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_accepts_connects_but_times_out_and_answers_after_resume() -> anyhow::Result<()> {
    let node = tokio::task::block_in_place(OpenSearch::start)?;
    let url = node.url();
    let http = client(Duration::from_secs(30));
    create_index(&http, &url, "events-paused").await?;

    node.pause()?;
    let address = format!("127.0.0.1:{}", node.http_port());
    assert!(TcpStream::connect(&address).is_ok(), "the kernel still accepts connects for a paused node");
    let timed_out = client(Duration::from_secs(1)).get(&url).send().await.expect_err("a paused node answered");
    assert!(timed_out.is_timeout() && !timed_out.is_connect(), "expected a timeout, got {timed_out:?}");

    // A request sent while paused is answered once the node runs again.
    let waiting = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { bulk(&http, &url, "events-paused", "queued", 4).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "a paused node answered a bulk request");
    node.resume()?;
    let done = tokio::time::timeout(Duration::from_secs(30), waiting).await???;
    assert_eq!(done["errors"], false, "{done}");
    let all = send_json(http.post(format!("{url}/events-paused/_count"))).await?;
    assert_eq!(all["count"], 4, "{all}");
    Ok(())
}

#[test]
fn dropped_node_stops_listening_and_deletes_its_folder() -> anyhow::Result<()> {
    let node = OpenSearch::start()?;
    let address = format!("127.0.0.1:{}", node.http_port());
    let dir = node.dir().to_path_buf();
    assert!(dir.join("data").is_dir());
    drop(node);
    assert!(TcpStream::connect(&address).is_err(), "{address} still answers after drop");
    assert!(!dir.exists(), "{} survived the drop", dir.display());
    Ok(())
}
