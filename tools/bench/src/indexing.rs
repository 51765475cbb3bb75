//! The indexer (`service::indexing::index_messages`) filling an OpenSearch index from one
//! tenant's stored entries, beside raw `_bulk` requests of the same documents in the same run.
//!
//! Set-up, timed but not the measured figure: the tenant is filled as in `verification` (pre-sealed
//! batches of `MAX_BATCH` through `Store::append`), then `VACUUM ANALYZE`; a node of its own with a
//! larger heap (the default 256 MiB is sized for tests) gets the production template and three
//! fresh indices: a warm-up one (a first pass that warms the JVM and the PostgreSQL cache for
//! both sides, then deleted), the indexer's and the baseline's.
//!
//! Measured:
//! - the indexer: messages of 1,000 seqs each (what an append of a full batch leaves in the
//!   outbox), handed to `index_messages` 10 at a time (one SQS delivery), one call after the other:
//!   the PostgreSQL read, the documents, the signed `_bulk` requests and their per-item results.
//! - the baseline: the same documents (built beforehand from entries read beforehand, not timed)
//!   as prebuilt `bulk_body` requests of 1,000 documents, posted one after the other; a request
//!   counts when it answers `"errors":false`. Once before the indexer and once after it, each into
//!   an index of its own, so a node that speeds up as its JVM warms shows; the indexer is held to
//!   the faster of the two.
//! - `OpenSearch::bulk` alone over the prebuilt documents (body, signing, request, per-item
//!   results): the indexer without its PostgreSQL read and documents.
//! - where the indexer's time goes: the PostgreSQL read (`entries_in_ranges`, one call per
//!   delivery), the documents (`index_document`) and the request bodies (`bulk_body`), each timed
//!   alone over the same batches; the rest is the node, the request signing and the result parsing.
//!
//! After each load the index is refreshed and its document count must equal the tenant's events,
//! or the scenario fails.

use crate::db::BenchDb;
use crate::report::{grouped, print_table, verdict};
use crate::verification::fill;
use crate::workload::Pool;
use anyhow::{bail, ensure, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use localstack::opensearch::OpenSearch as Node;
use serde_json::Value;
use shared::search::document::{index_document, CONTENT_VERSION};
use shared::search::opensearch::{bulk_body, BulkAction, ItemOutcome};
use shared::search::OpenSearch;
use shared::service::indexing::{index_messages, IndexMessage, QueuedMessage};
use shared::store::connect::DbConfig;
use shared::store::pool::StorePool;
use shared::store::read::StoredEntry;
use shared::store::Store;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Seqs per index message: one full append batch.
const MESSAGE_SEQS: u64 = 1000;
/// Messages per indexer call: what one SQS delivery carries.
const MESSAGES_PER_DELIVERY: usize = 10;
/// Documents per raw `_bulk` request, as the indexer sends them.
const BULK_DOCUMENTS: usize = 1000;
/// Deliveries indexed into the warm-up index before anything is timed.
const WARM_UP_DELIVERIES: usize = 2;
/// The indexer should keep this share of raw `_bulk` throughput.
const INDEXER_SHARE_OF_RAW: f64 = 0.7;

/// What one timed load measured.
#[derive(Debug)]
pub struct Load {
    pub label: String,
    pub documents: u64,
    pub requests: usize,
    pub elapsed: Duration,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.documents as f64 / self.elapsed.as_secs_f64()
    }
}

#[derive(Debug)]
pub struct IndexBench {
    pub events: usize,
    pub fill: Duration,
    pub heap_mib: u32,
    pub indexer: Load,
    /// The raw baseline before the indexer and after it.
    pub raws: [Load; 2],
    /// `OpenSearch::bulk` over the prebuilt documents: the indexer less the read and documents.
    pub client: Load,
    /// The indexer's steps, each timed alone over the same batches.
    pub read: Duration,
    pub documents: Duration,
    pub bodies: Duration,
}

pub async fn run(db: &BenchDb, pool: &Pool, events: usize, heap_mib: u32) -> Result<IndexBench> {
    let mut store = Store::connect(db.app_url()).await.context("connecting as the service")?;
    let tenant = store.create_tenant("bench-index").await.context("creating a tenant")?;
    let fill = fill(&mut store, tenant, pool, events).await?;
    db.superuser().batch_execute("VACUUM ANALYZE chain_entries, events").await.context("vacuuming")?;

    eprintln!("  starting OpenSearch with a {heap_mib} MiB heap");
    let node = Node::start_with_heap_mib(heap_mib).context("starting OpenSearch (run scripts/setup first)")?;
    let sdk = signing_config();
    let template = local_run::index_template()?;
    let index = |name: &str| OpenSearch::new(&sdk, &node.url(), name).context("an OpenSearch client");
    let warm_up = index("audit-events-bench-warm-up")?;
    let raw_before = index("audit-events-bench-raw-before")?;
    let indexed = index("audit-events-bench-indexer")?;
    let client_only = index("audit-events-bench-client")?;
    let raw_after = index("audit-events-bench-raw-after")?;
    for search in [&warm_up, &raw_before, &indexed, &client_only, &raw_after] {
        search.ensure_index(&template).await.with_context(|| format!("creating {}", search.index()))?;
    }
    let http = reqwest::Client::new();
    let messages = messages(tenant, events as u64);
    let deliveries: Vec<&[QueuedMessage]> = messages.chunks(MESSAGES_PER_DELIVERY).collect();
    let store_pool = StorePool::new(DbConfig::plain(db.app_url()), 2);

    eprintln!("  warming up");
    for delivery in deliveries.iter().take(WARM_UP_DELIVERIES) {
        let run = index_messages(&store_pool, &warm_up, delivery).await;
        ensure!(run.failed.is_empty(), "warm-up: {} messages failed", run.failed.len());
    }
    let response = http.delete(format!("{}/{}", node.url(), warm_up.index())).send().await?;
    ensure!(response.status().is_success(), "deleting the warm-up index: {}", response.status());

    eprintln!("  the indexer's steps alone");
    let (entries, read) = read_entries(&mut store, tenant, &deliveries).await?;
    let started = Instant::now();
    let actions: Vec<BulkAction> = entries
        .iter()
        .map(|e| {
            let document = index_document(e).context("an entry without content")?;
            Ok(BulkAction { tenant, id: e.entry.id, version: CONTENT_VERSION, document })
        })
        .collect::<Result<_>>()?;
    let documents_time = started.elapsed();
    drop(entries);
    let started = Instant::now();
    let bodies: Vec<Vec<u8>> = actions.chunks(BULK_DOCUMENTS).map(|c| bulk_body(raw_before.index(), c)).collect();
    let bodies_time = started.elapsed();

    // The raw baseline runs before and after the indexer, so a node that speeds up (or slows
    // down) as it runs shows as two different baselines rather than as the indexer's doing.
    eprintln!("  the baseline before the indexer ({} raw _bulk requests)", bodies.len());
    let raw_first = raw_bulk(&http, &node.url(), &bodies, raw_before.index(), "baseline: raw _bulk, before").await?;
    check_count(&http, &node.url(), &raw_before, events).await?;

    eprintln!("  the indexer ({} deliveries of {MESSAGES_PER_DELIVERY} messages)", deliveries.len());
    let started = Instant::now();
    let mut documents = 0;
    for delivery in &deliveries {
        let run = index_messages(&store_pool, &indexed, delivery).await;
        if !run.failed.is_empty() {
            bail!("the indexer reported {} of {} messages failed", run.failed.len(), delivery.len());
        }
        documents += run.indexed;
    }
    let elapsed = started.elapsed();
    let requests = deliveries.iter().map(|d| delivery_seqs(d).div_ceil(BULK_DOCUMENTS as u64) as usize).sum();
    let indexer = Load { label: "indexer: index_messages".into(), documents, requests, elapsed };
    check_count(&http, &node.url(), &indexed, events).await?;

    eprintln!("  OpenSearch::bulk of prebuilt documents");
    let started = Instant::now();
    for chunk in actions.chunks(BULK_DOCUMENTS) {
        let outcomes = client_only.bulk(chunk).await.context("OpenSearch::bulk")?;
        ensure!(outcomes.iter().all(|o| *o == ItemOutcome::Written), "OpenSearch::bulk: items failed");
    }
    let client = Load {
        label: "OpenSearch::bulk of prebuilt documents".into(),
        documents: actions.len() as u64,
        requests: actions.len().div_ceil(BULK_DOCUMENTS),
        elapsed: started.elapsed(),
    };
    check_count(&http, &node.url(), &client_only, events).await?;
    drop(actions);

    eprintln!("  the baseline after the indexer");
    let raw_second = raw_bulk(&http, &node.url(), &bodies, raw_after.index(), "baseline: raw _bulk, after").await?;
    check_count(&http, &node.url(), &raw_after, events).await?;

    Ok(IndexBench {
        events,
        fill,
        heap_mib,
        indexer,
        raws: [raw_first, raw_second],
        client,
        read,
        documents: documents_time,
        bodies: bodies_time,
    })
}

/// Posts each prebuilt body (whose actions name `index`) as one `_bulk` request, one after the
/// other; a request counts when it answers `"errors":false`.
async fn raw_bulk(http: &reqwest::Client, url: &str, bodies: &[Vec<u8>], index: &str, label: &str) -> Result<Load> {
    let url = format!("{url}/_bulk");
    // The bodies were built for the first raw index; the second gets the same bytes with its name.
    let renamed: Vec<Vec<u8>>;
    let bodies = if bodies.first().is_some_and(|b| contains(b, index.as_bytes())) {
        bodies
    } else {
        renamed = bodies.iter().map(|b| rename_index(b, index)).collect();
        &renamed
    };
    let mut documents = 0;
    let started = Instant::now();
    for body in bodies {
        let response = http.post(&url).header("content-type", "application/x-ndjson").body(body.clone()).send().await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "raw _bulk: {status}");
        ensure!(text.get(..60).is_some_and(|t| t.contains("\"errors\":false")), "raw _bulk items failed: {text:.300}");
        documents += body.iter().filter(|&&b| b == b'\n').count() as u64 / 2;
    }
    Ok(Load { label: label.to_owned(), documents, requests: bodies.len(), elapsed: started.elapsed() })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A `bulk_body` built for one index, pointed at `index` instead (the only `_index` values in it).
fn rename_index(body: &[u8], index: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let from = text.split("\"_index\":\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
    text.replace(&format!("\"_index\":\"{from}\""), &format!("\"_index\":\"{index}\"")).into_bytes()
}

/// Static credentials, so the indexer signs every request as it does against a domain with IAM
/// access; the local node has no security plugin and ignores the signature.
fn signing_config() -> SdkConfig {
    let credentials = Credentials::new("bench", "bench", None, None, "bench");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// Index messages covering seqs `0..events`, `MESSAGE_SEQS` each.
fn messages(tenant: Uuid, events: u64) -> Vec<QueuedMessage> {
    (0..events.div_ceil(MESSAGE_SEQS))
        .map(|i| {
            let first_seq = i * MESSAGE_SEQS;
            let count = (events - first_seq).min(MESSAGE_SEQS) as u32;
            let message = IndexMessage { v: 1, outbox_id: i as i64, tenant_id: tenant, first_seq, count };
            QueuedMessage { id: format!("bench-{i}"), body: message.body() }
        })
        .collect()
}

fn parsed(delivery: &[QueuedMessage]) -> Vec<IndexMessage> {
    delivery.iter().filter_map(|m| IndexMessage::parse(&m.body).ok()).collect()
}

fn delivery_seqs(delivery: &[QueuedMessage]) -> u64 {
    parsed(delivery).iter().map(|m| u64::from(m.count)).sum()
}

/// Every delivery's entries read as the indexer reads them (one `entries_in_ranges` per
/// delivery), and the time the reads took.
async fn read_entries(
    store: &mut Store,
    tenant: Uuid,
    deliveries: &[&[QueuedMessage]],
) -> Result<(Vec<StoredEntry>, Duration)> {
    let mut entries = Vec::new();
    let mut read = Duration::ZERO;
    for delivery in deliveries {
        let ranges: Vec<(u64, u64)> =
            parsed(delivery).iter().map(|m| (m.first_seq, m.first_seq + u64::from(m.count))).collect();
        let started = Instant::now();
        let batch = store.entries_in_ranges(tenant, &ranges).await.context("reading entries")?;
        read += started.elapsed();
        entries.extend(batch);
    }
    Ok((entries, read))
}

/// Refreshes the index and fails unless it holds exactly `events` documents.
async fn check_count(http: &reqwest::Client, url: &str, search: &OpenSearch, events: usize) -> Result<()> {
    search.refresh().await.with_context(|| format!("refreshing {}", search.index()))?;
    let count: Value = http.get(format!("{url}/{}/_count", search.index())).send().await?.json().await?;
    let found = count["count"].as_u64().with_context(|| format!("_count answered {count}"))?;
    if found != events as u64 {
        bail!("{} holds {found} documents, not {events}", search.index());
    }
    Ok(())
}

pub fn print(bench: &IndexBench) {
    println!();
    println!(
        "Indexing one tenant of {} events into OpenSearch (a single node, {} MiB heap, on the same cores); \
         filled in {:.1} s",
        grouped(bench.events as f64),
        bench.heap_mib,
        bench.fill.as_secs_f64()
    );
    // The faster of the two baselines is the one the indexer is held to.
    let raw = bench.raws.iter().map(Load::per_second).fold(0.0, f64::max);
    let rows = [&bench.indexer, &bench.client, &bench.raws[0], &bench.raws[1]]
        .iter()
        .map(|l| {
            let share = l.per_second() / raw;
            let is_indexer = std::ptr::eq(*l, &bench.indexer);
            vec![
                l.label.clone(),
                grouped(l.documents as f64),
                grouped(l.requests as f64),
                format!("{:.2}", l.elapsed.as_secs_f64()),
                grouped(l.per_second()),
                format!("{share:.3}"),
                if is_indexer {
                    verdict(format!(">= {INDEXER_SHARE_OF_RAW:.2}"), share >= INDEXER_SHARE_OF_RAW)
                } else {
                    String::new()
                },
            ]
        })
        .collect::<Vec<_>>();
    print_table(
        "Indexing throughput, one request at a time, 1,000 documents a request",
        &["", "documents", "_bulk requests", "seconds", "events/s", "/ faster raw", "target"],
        &rows,
    );

    let total = bench.indexer.elapsed.as_secs_f64();
    let rest = bench.indexer.elapsed.saturating_sub(bench.read + bench.documents + bench.bodies);
    let split = [
        ("PostgreSQL read (entries_in_ranges, 1 call per delivery)", bench.read),
        ("documents (index_document)", bench.documents),
        ("request bodies (bulk_body)", bench.bodies),
        ("the rest: _bulk on the node, signing, per-item results", rest),
    ]
    .iter()
    .map(|(label, d)| {
        vec![
            (*label).to_owned(),
            format!("{:.2}", d.as_secs_f64()),
            format!("{:.0} %", 100.0 * d.as_secs_f64() / total),
        ]
    })
    .collect::<Vec<_>>();
    print_table(
        "Where the indexer's time goes (each step timed alone over the same batches)",
        &["", "seconds", "share"],
        &split,
    );
}
