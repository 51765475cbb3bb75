//! The HTTP API under load, through the local gateway (the same authorizer and handlers as in
//! Lambda, over loopback HTTP): a tenant is filled with N events (10 million by default), then
//! each request shape is timed one request at a time for latency, and `POST /v1/events` from
//! concurrent clients for throughput. The baseline is the database alone: the same page of 100
//! newest entries read by primary key with one SQL statement, on the same data in the same run.

use crate::db::BenchDb;
use crate::workload::Pool;
use anyhow::{bail, Context, Result};
use localstack::moto::Moto;
use serde_json::{json, Value};
use shared::store::Store;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One timed request shape.
#[derive(Debug)]
pub struct Shape {
    pub label: String,
    pub requests: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Shape {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct ApiBench {
    pub events: usize,
    pub fill: Duration,
    /// Writing PostgreSQL's full text for the filled tenant, as the indexer does after commit.
    pub text: Duration,
    pub shapes: Vec<Shape>,
    pub baseline: Shape,
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn get(&self, path: &str) -> Result<Value> {
        let response = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.key).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let response = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.key).json(body).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }
}

/// Times `requests` sequential GETs of `path`.
async fn time_gets(client: &Client, label: &str, path: &str, requests: usize) -> Result<Shape> {
    // A few untimed requests first: connections, prepared statements, caches.
    for _ in 0..5 {
        client.get(path).await?;
    }
    let mut latencies = Vec::with_capacity(requests);
    let started = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let body = client.get(path).await?;
        latencies.push(t.elapsed());
        if body.get("events").is_some_and(|e| e.as_array().is_none_or(|a| a.is_empty())) {
            bail!("{label}: the page is empty, so it measures nothing");
        }
    }
    Ok(Shape { label: label.to_owned(), requests, elapsed: started.elapsed(), latencies })
}

pub async fn run(db: &BenchDb, pool: &Pool, events: usize, requests: usize) -> Result<ApiBench> {
    let moto = Moto::start().context("starting the local AWS endpoint")?;
    let sdk = moto.sdk_config();
    let resources = localstack::bootstrap::bootstrap(&sdk).await?;
    let mut env = local_run::function_env(db.app_url(), db.maintenance_url(), &resources);
    env.insert("AUTHORIZER_CACHE_SECONDS".into(), "300".into());
    // No live tail here (nothing would consume its queue): the send after commit is the index
    // queue's alone.
    env.remove("TAIL_QUEUE_URL");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let env = local_run::with_gateway_url(env, &base);
    let app = local_run::gateway(&env, &sdk).await?.into_router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let platform = local_run::create_platform_key(&sdk, &resources).await?;
    // The index queue's consumer, without OpenSearch: PostgreSQL's full text, as the local run.
    let indexer = tokio::spawn(local_run::run_indexer(env.clone(), sdk.clone()));

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&platform)
        .json(&json!({ "name": "bench" }))
        .send()
        .await?
        .json()
        .await?;
    let tenant = Uuid::parse_str(created["tenant_id"].as_str().context("tenant id")?)?;
    let key = created["api_key"]["secret"].as_str().context("admin key")?.to_owned();
    let client = Client { http, base, key };

    eprintln!("  filling one tenant with {events} events");
    let mut store = Store::connect(db.app_url()).await?;
    let sealed = pool.sealed()?;
    let started = Instant::now();
    let mut appended = 0;
    while appended < events {
        let n = (events - appended).min(sealed.len());
        store.append(tenant, &sealed[..n], None).await?;
        appended += n;
        if appended % 1_000_000 < n {
            eprintln!("  filled {appended} of {events} in {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    let fill = started.elapsed();
    // The fill bypassed the queue; write its words as the indexer would, 100,000 seqs a call.
    eprintln!("  writing the full text of {events} events");
    let started = Instant::now();
    let size = store.tree_head(tenant).await?.size;
    for first in (0..size).step_by(100_000) {
        store.index_text(tenant, &[(first, (first + 100_000).min(size))]).await?;
    }
    let text = started.elapsed();
    db.superuser().batch_execute("VACUUM ANALYZE").await?;

    let sample = client.get("/v1/events?limit=1&action=document.update").await?;
    let first = &sample["events"][0];
    let id = first["id"].as_str().context("an event id")?.to_owned();
    let actor = first["event"]["actor"]["id"].as_str().context("an actor")?.to_owned();
    let resource_id = first["event"]["resource"]["id"].as_str().context("a resource id")?.to_owned();
    let from = "2000-01-01T00:00:00Z";
    let to = "2100-01-01T00:00:00Z";
    let shapes_to_time = [
        ("GET /v1/events (newest 100, no filter)".to_owned(), "/v1/events?limit=100".to_owned()),
        ("GET /v1/events?action= (exact)".to_owned(), "/v1/events?limit=100&action=user.login".to_owned()),
        ("GET /v1/events?action= (prefix user.*)".to_owned(), "/v1/events?limit=100&action=user.*".to_owned()),
        ("GET /v1/events?actor_id=".to_owned(), format!("/v1/events?limit=100&actor_id={actor}")),
        (
            "GET /v1/events?outcome=denied&from=&to=".to_owned(),
            format!("/v1/events?limit=100&outcome=denied&from={from}&to={to}"),
        ),
        (
            "GET /v1/events?resource_type=&resource_id=".to_owned(),
            format!("/v1/events?limit=100&resource_type=document&resource_id={resource_id}"),
        ),
        ("GET /v1/events?q= (one resource id)".to_owned(), format!("/v1/events?limit=100&q={resource_id}")),
        ("GET /v1/events/{id}/proof".to_owned(), format!("/v1/events/{id}/proof")),
    ];
    let mut shapes = Vec::new();
    for (label, path) in shapes_to_time {
        eprintln!("  timing {label}");
        shapes.push(time_gets(&client, &label, &path, requests).await?);
    }
    // Paging: the second page through a cursor costs the same as the first.
    let page = client.get("/v1/events?limit=100&action=user.login").await?;
    let cursor = page["next_cursor"].as_str().context("a cursor")?.to_owned();
    shapes.push(
        time_gets(
            &client,
            "GET /v1/events?action=&cursor= (next page)",
            &format!("/v1/events?limit=100&action=user.login&cursor={cursor}"),
            requests,
        )
        .await?,
    );

    eprintln!("  timing POST /v1/events from 8 clients");
    shapes.push(post_concurrently(&client, pool, 8, requests * 4).await?);

    // The send after commit alone: the same SendMessage to a queue of its own on the same
    // endpoint, from as many concurrent clients.
    eprintln!("  timing SQS SendMessage from 8 clients");
    let scratch = localstack::bootstrap::ensure_queue_pair(&sdk, "bench-send", 30, 5).await?;
    let queue = shared::aws::queues::Queue::new(&sdk, scratch.url.clone());
    shapes.push(send_concurrently(&queue, 8, requests * 4).await?);

    eprintln!("  timing POST /v1/events until q finds it");
    shapes.push(time_until_searchable(&client, requests / 10).await?);
    indexer.abort();

    eprintln!("  timing the baseline");
    let baseline = baseline(db, tenant, requests).await?;
    Ok(ApiBench { events, fill, text, shapes, baseline })
}

/// `total` single-event POSTs spread over `clients` concurrent clients.
async fn post_concurrently(client: &Client, pool: &Pool, clients: usize, total: usize) -> Result<Shape> {
    let per_client = total / clients;
    let started = Instant::now();
    let runs = (0..clients).map(|c| async move {
        let mut latencies = Vec::with_capacity(per_client);
        for n in 0..per_client {
            let t = Instant::now();
            client.post("/v1/events", pool.one(c * per_client + n)).await?;
            latencies.push(t.elapsed());
        }
        anyhow::Ok(latencies)
    });
    let latencies: Vec<Duration> = futures::future::try_join_all(runs).await?.into_iter().flatten().collect();
    Ok(Shape {
        label: format!("POST /v1/events, {clients} concurrent clients"),
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    })
}

/// `total` SQS `SendMessage` calls of an index message's size spread over `clients` concurrent
/// clients: what the send after commit costs a single-event append by itself.
async fn send_concurrently(queue: &shared::aws::queues::Queue, clients: usize, total: usize) -> Result<Shape> {
    let per_client = total / clients;
    let body = json!({ "v": 1, "outbox_id": 1, "tenant_id": Uuid::nil(), "first_seq": 0, "count": 1 }).to_string();
    let started = Instant::now();
    let runs = (0..clients).map(|_| {
        let body = body.clone();
        async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                queue.send(&body, 0).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }
    });
    let latencies: Vec<Duration> = futures::future::try_join_all(runs).await?.into_iter().flatten().collect();
    Ok(Shape {
        label: format!("SQS SendMessage alone, {clients} concurrent clients"),
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    })
}

/// `samples` single events, one at a time, each with a word of its own: the time from sending
/// the POST until `GET /v1/events?q=<word>` finds it (polled every 5 ms), through the send after
/// commit, the index queue and the indexer writing PostgreSQL's full text.
async fn time_until_searchable(client: &Client, samples: usize) -> Result<Shape> {
    let run = Uuid::new_v4().simple().to_string();
    let mut latencies = Vec::with_capacity(samples);
    let started = Instant::now();
    for i in 0..samples {
        let word = format!("needle{run}n{i}");
        let t = Instant::now();
        client
            .post(
                "/v1/events",
                &json!({ "action": "bench.search", "actor": { "id": "bench" }, "metadata": { "note": word } }),
            )
            .await?;
        loop {
            let page = client.get(&format!("/v1/events?limit=1&q={word}")).await?;
            if page["events"].as_array().is_some_and(|a| a.len() == 1) {
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("event {i} was not searchable after a minute");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(t.elapsed());
    }
    Ok(Shape {
        label: "POST /v1/events, then until q finds it (queue + indexer)".to_owned(),
        requests: samples,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// The newest 100 entries with their content, by primary key, straight from PostgreSQL as the
/// service login (row-level security on): what a page costs the database alone.
async fn baseline(db: &BenchDb, tenant: Uuid, requests: usize) -> Result<Shape> {
    let (client, connection) = tokio_postgres::connect(db.app_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let sql = "SELECT c.seq, c.event_id, c.leaf_hash, c.chain_hash, e.content, e.salt
                 FROM (SELECT * FROM events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 100) e
                 JOIN chain_entries c ON c.tenant_id = e.tenant_id AND c.seq = e.seq ORDER BY e.seq DESC";
    let statement = client.prepare(sql).await?;
    let tenant_text = tenant.to_string();
    let mut latencies = Vec::with_capacity(requests);
    let started = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        client.batch_execute("BEGIN READ ONLY").await?;
        client.execute("SELECT set_config('app.tenant_id', $1, true)", &[&tenant_text]).await?;
        let rows = client.query(&statement, &[&tenant]).await?;
        client.batch_execute("COMMIT").await?;
        latencies.push(t.elapsed());
        if rows.len() != 100 {
            bail!("the baseline read {} rows, not 100", rows.len());
        }
    }
    Ok(Shape {
        label: "baseline: the same page by primary key, SQL only".to_owned(),
        requests,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Prints the figures.
pub fn print(bench: &ApiBench) {
    println!();
    println!(
        "API through the local gateway, one tenant of {} events (filled in {:.0} s, full text written after in {:.0} s, {:.0} events/s):",
        bench.events,
        bench.fill.as_secs_f64(),
        bench.text.as_secs_f64(),
        bench.events as f64 / bench.text.as_secs_f64()
    );
    println!("| request | req/s | p50 ms | p99 ms | p99 / baseline p99 |");
    println!("|---|---|---|---|---|");
    let base_p99 = bench.baseline.percentile(0.99).as_secs_f64();
    for shape in bench.shapes.iter().chain(std::iter::once(&bench.baseline)) {
        let p99 = shape.percentile(0.99).as_secs_f64();
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} |",
            shape.label,
            shape.per_second(),
            shape.percentile(0.5).as_secs_f64() * 1e3,
            p99 * 1e3,
            p99 / base_p99
        );
    }
    println!("Targets: a filtered page of 100 at p99 <= 20 ms at 10 M events; a proof at p99 <= 5 ms.");
}
