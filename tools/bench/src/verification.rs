//! Verifying one tenant's whole chain with `service::verify::verify_range`, beside plain reads of
//! the same rows in the same run.
//!
//! Set-up, timed but not the measured figure: the tenant is filled through `Store::append` in
//! batches of `MAX_BATCH` pre-sealed pool events (one writer: the head lock serialises writers of
//! a tenant anyway), then `VACUUM ANALYZE` sets hint bits and statistics the way autovacuum
//! would on a long-lived table, so no read pays for them.
//!
//! Measured, over every entry of the tenant:
//! - `verify_range` from seq 0: the row stream of `Store::scan_entries` plus every content
//!   digest, leaf hash, chain link and the Merkle root.
//! - `scan_entries` alone with a visitor that does nothing: the store's share of verification.
//! - the verifier alone over entries already in memory: the hashing share, on one core.
//! - the baseline: a binary `COPY (SELECT ..) TO STDOUT` of the exact query `scan_entries`
//!   issues (same columns, join, filter and order), every byte consumed. Binary, because that is
//!   the format `scan_entries` receives rows in. Then each table's columns alone, unjoined and
//!   unordered, to show what the join and the order cost.
//!
//! Every read runs as the service's login with the tenant set, so row-level security applies to
//! the baseline exactly as it does to verification.

use crate::db::BenchDb;
use crate::workload::Pool;
use anyhow::{bail, Context, Result};
use futures::{pin_mut, TryStreamExt};
use shared::chain::hash::GENESIS;
use shared::chain::verify::{ChainVerifier, EntryRecord};
use shared::service::verify::verify_range;
use shared::store::read::StoredEntry;
use shared::store::Store;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

/// At most this many entries are held in memory to time the verifier without the database.
const HASH_ONLY_SAMPLE: usize = 200_000;

/// What one read of the chain measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    Verify,
    ScanOnly,
    HashOnly,
    CopyJoin,
    CopyTable,
}

#[derive(Debug)]
pub struct ReadRow {
    pub label: String,
    pub kind: ReadKind,
    pub events: usize,
    pub elapsed: Duration,
}

impl ReadRow {
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// The scenario's set-up times, reads and the scan query's plan.
#[derive(Debug)]
pub struct Verification {
    pub events: usize,
    pub fill: Duration,
    pub vacuum: Duration,
    pub reads: Vec<ReadRow>,
    /// `EXPLAIN (ANALYZE, BUFFERS)` of the scan query, one line per plan line.
    pub plan: Vec<String>,
}

/// Fills a tenant of `db` with `events` events, then times each read of its chain.
pub async fn run(db: &BenchDb, pool: &Pool, events: usize) -> Result<Verification> {
    let mut store = Store::connect(db.app_url()).await.context("connecting as the service")?;
    let tenant = store.create_tenant("bench-verify").await.context("creating a tenant")?;
    let fill = fill(&mut store, tenant, pool, events).await?;

    let started = Instant::now();
    db.superuser().batch_execute("VACUUM ANALYZE chain_entries, events").await.context("vacuuming")?;
    let vacuum = started.elapsed();

    let reader = connect_reader(db, tenant).await?;
    let scan = scan_query(tenant, events);
    let mut reads = Vec::new();

    eprintln!("  COPY of the scan query");
    reads.push(copy_row(&reader, "COPY of the scan query (join, binary)", ReadKind::CopyJoin, &scan, events).await?);

    eprintln!("  verify_range");
    let started = Instant::now();
    let report = verify_range(&mut store, tenant, 0, None, None).await.context("verifying")?;
    let elapsed = started.elapsed();
    if !report.ok || report.verified != events as u64 {
        bail!("verification of an untampered chain failed: {report:?}");
    }
    reads.push(ReadRow { label: "verify_range from seq 0".into(), kind: ReadKind::Verify, events, elapsed });

    eprintln!("  scan_entries alone");
    let started = Instant::now();
    let mut seen = 0usize;
    store
        .scan_entries(tenant, 0, events as u64, |e| {
            std::hint::black_box(e);
            seen += 1;
            Ok::<(), Infallible>(())
        })
        .await
        .context("scanning")?
        .unwrap_or_else(|never| match never {});
    let elapsed = started.elapsed();
    reads.push(ReadRow {
        label: "scan_entries alone, no hashing".into(),
        kind: ReadKind::ScanOnly,
        events: seen,
        elapsed,
    });

    eprintln!("  verifier alone");
    reads.push(hash_only_row(&mut store, tenant, events).await?);

    eprintln!("  COPY of each table");
    let entries = format!(
        "SELECT tenant_id, seq, event_id, received_at, content_digest, leaf_hash, chain_hash
           FROM chain_entries WHERE tenant_id = '{tenant}'"
    );
    reads.push(copy_row(&reader, "COPY chain_entries columns alone", ReadKind::CopyTable, &entries, events).await?);
    let contents = format!("SELECT content, salt FROM events WHERE tenant_id = '{tenant}'");
    reads.push(copy_row(&reader, "COPY events columns alone", ReadKind::CopyTable, &contents, events).await?);

    eprintln!("  EXPLAIN ANALYZE of the scan query");
    let plan = reader
        .simple_query(&format!("EXPLAIN (ANALYZE, BUFFERS) {scan}"))
        .await
        .context("explaining the scan query")?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    reader.batch_execute("COMMIT").await?;

    Ok(Verification { events, fill, vacuum, reads, plan })
}

/// Appends `events` events in full batches (and one short last batch); returns the time taken.
pub(crate) async fn fill(store: &mut Store, tenant: Uuid, pool: &Pool, events: usize) -> Result<Duration> {
    let sealed = pool.sealed()?;
    let started = Instant::now();
    let mut appended = 0;
    while appended < events {
        let n = (events - appended).min(sealed.len());
        store.append(tenant, &sealed[..n], None).await.with_context(|| format!("appending at seq {appended}"))?;
        appended += n;
        if appended % 500_000 < n {
            eprintln!("  filled {appended} of {events} in {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(started.elapsed())
}

/// The query `Store::scan_entries` runs for the whole chain, with its parameters written in.
/// It must stay the same as `ENTRY_COLUMNS` and the scan's filter in `shared/src/store/read.rs`.
fn scan_query(tenant: Uuid, events: usize) -> String {
    format!(
        "SELECT c.tenant_id, c.seq, c.event_id, c.received_at, c.content_digest, c.leaf_hash, c.chain_hash,
                e.content, e.salt
           FROM chain_entries c
           LEFT JOIN events e ON e.tenant_id = c.tenant_id AND e.seq = c.seq AND e.received_at = c.received_at
          WHERE c.tenant_id = '{tenant}' AND c.seq >= 0 AND c.seq < {events} ORDER BY c.seq"
    )
}

/// A connection as the service's login inside a read-only transaction with the tenant set and
/// JIT off, exactly as `scan_entries` reads, so the baseline runs under the same settings.
pub(crate) async fn connect_reader(db: &BenchDb, tenant: Uuid) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(db.app_url(), NoTls).await.context("connecting a reader")?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "BEGIN READ ONLY; SELECT set_config('app.tenant_id', '{tenant}', true); SET LOCAL jit = off"
        ))
        .await
        .context("setting the tenant")?;
    Ok(client)
}

/// Times a binary `COPY (query) TO STDOUT`, consuming every byte.
pub(crate) async fn copy_row(
    client: &Client,
    label: &str,
    kind: ReadKind,
    query: &str,
    events: usize,
) -> Result<ReadRow> {
    let started = Instant::now();
    let stream =
        client.copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)")).await.context(label.to_owned())?;
    pin_mut!(stream);
    let mut bytes = 0usize;
    while let Some(chunk) = stream.try_next().await.context(label.to_owned())? {
        bytes += std::hint::black_box(chunk).len();
    }
    let elapsed = started.elapsed();
    if bytes == 0 {
        bail!("{label}: no bytes copied");
    }
    Ok(ReadRow { label: label.to_owned(), kind, events, elapsed })
}

/// Times the verifier over the first entries of the chain, already read into memory: hashing
/// and checking alone, on one core.
async fn hash_only_row(store: &mut Store, tenant: Uuid, events: usize) -> Result<ReadRow> {
    let sample = events.min(HASH_ONLY_SAMPLE);
    let mut entries: Vec<StoredEntry> = Vec::with_capacity(sample);
    store
        .scan_entries(tenant, 0, sample as u64, |e| {
            entries.push(e);
            Ok::<(), Infallible>(())
        })
        .await
        .context("reading the sample")?
        .unwrap_or_else(|never| match never {});

    let started = Instant::now();
    let mut verifier = ChainVerifier::new(tenant, 0, GENESIS);
    for e in &entries {
        verifier
            .check(EntryRecord {
                entry: &e.entry,
                leaf_hash: &e.leaf_hash,
                chain_hash: &e.chain_hash,
                content: e.content.as_deref().map(str::as_bytes),
                salt: e.salt.as_deref(),
            })
            .context("the sample does not verify")?;
    }
    std::hint::black_box(verifier.finish(Some(sample as u64), None).context("the sample does not verify")?);
    let elapsed = started.elapsed();
    let label = format!("verifier alone, first {sample} entries in memory");
    Ok(ReadRow { label, kind: ReadKind::HashOnly, events: sample, elapsed })
}
