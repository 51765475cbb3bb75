//! `bench`: how fast the audit log appends and verifies, beside baselines measured in the same run.
//!
//! Measured, each scenario in a fresh database of one throwaway PostgreSQL cluster:
//! - single-event appends through `service::ingest` from concurrent writers (8 by default) on one
//!   tenant, each with its own connection: events/s and latency per request. Writers of one
//!   tenant queue on its chain-head lock, so this is the worst case for latency.
//! - batches of 100 and 1000 events through `service::ingest`, from one writer and from one
//!   writer on each of two tenants: events/s. This is how high-volume producers should send.
//! - the baseline: a binary `COPY` of the same per-event columns into one bare table. The ratio
//!   of append to COPY throughput is the figure that carries over between machines; absolute
//!   rates on a shared two-core box do not.
//! - the client-side share alone (validate, seal, hash; no database), to split a batched append's
//!   time between the service's code and the database.
//! - storage growth per event, table by table: an audit log keeps everything, so bytes per event
//!   are a cost as real as time.
//! - verification of one tenant's whole chain (`service::verify::verify_range`) after filling it
//!   with five million events, beside a `COPY` of the same rows by the same query: how close
//!   verification comes to reading the bytes (see `verification`).
//!
//! - the HTTP API through the local gateway on a tenant of ten million events: latency of each
//!   filtered page, of a proof and of appends, beside the same page read by SQL alone (see `api`).
//! - the indexer (`service::indexing::index_messages`) on a tenant of 200,000 events, in
//!   deliveries of ten 1,000-seq messages, into a real OpenSearch node with a 1 GiB heap, beside
//!   raw `_bulk` requests of the same documents: events/s, the ratio, and where the indexer's
//!   time goes (see `indexing`).
//! - an export (`service::export::ExportWorker`) of a tenant of one million events to S3 on the
//!   local AWS endpoint, as JSON Lines and as gzip'd CSV, beside a `COPY` of the export scan's
//!   query: rows/s, the ratio and the peak resident set; each bundle must verify (see `export`).
//!
//! Targets are printed beside the figures, never asserted. Sizes come from flags or `BENCH_*`
//! variables (`bench --help`); `scripts/bench` runs a release build.

mod api;
mod appends;
mod client_side;
mod config;
mod copy_baseline;
mod db;
mod export;
mod indexing;
mod report;
mod verification;
mod workload;

use anyhow::{Context, Result};
use appends::{Measured, Plan};
use config::{Config, USAGE};
use db::{BenchDb, TableSizes};
use localstack::postgres::Postgres;
use report::{Kind, Row, Setting};
use std::sync::Arc;
use std::time::Instant;
use verification::Verification;
use workload::{ContentSize, Pool};

fn main() -> Result<()> {
    let Some(config) = Config::from_args_and_env()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let started = Instant::now();
    let pg = Postgres::start_throwaway().context("starting a throwaway PostgreSQL (run scripts/setup first)")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let ran = runtime.block_on(run(&config, &pg))?;
    report::print(&ran.setting, &ran.rows, ran.verification.as_ref(), started.elapsed());
    if let Some(api) = &ran.api {
        api::print(api);
    }
    if let Some(index) = &ran.index {
        indexing::print(index);
    }
    if let Some(export) = &ran.export {
        export::print(export);
    }
    Ok(())
}

/// What the chosen scenarios measured.
struct Ran {
    setting: Setting,
    rows: Vec<Row>,
    verification: Option<Verification>,
    api: Option<api::ApiBench>,
    index: Option<indexing::IndexBench>,
    export: Option<export::ExportBench>,
}

/// Runs the chosen scenarios in turn, each in a database of its own.
async fn run(config: &Config, pg: &Postgres) -> Result<Ran> {
    let pool = Arc::new(Pool::new());
    let setting = setting(pg, &pool).await?;
    let rows = if config.scenarios.appends() { append_rows(config, pg, &pool).await? } else { Vec::new() };
    let verification = if config.scenarios.verify() {
        eprintln!("running: verification of one tenant ({} events)", config.verify_events);
        let db = BenchDb::migrated(pg, "bench_verify").await?;
        Some(verification::run(&db, &pool, config.verify_events).await.context("running the verification")?)
    } else {
        None
    };
    let api = if config.scenarios.api() {
        eprintln!("running: the HTTP API on one tenant ({} events)", config.api_events);
        let db = BenchDb::migrated(pg, "bench_api").await?;
        Some(api::run(&db, &pool, config.api_events, config.api_requests).await.context("running the API benchmark")?)
    } else {
        None
    };
    let index = if config.scenarios.index() {
        eprintln!("running: indexing one tenant ({} events)", config.index_events);
        let db = BenchDb::migrated(pg, "bench_index").await?;
        Some(
            indexing::run(&db, &pool, config.index_events, config.index_heap_mib)
                .await
                .context("running the indexing benchmark")?,
        )
    } else {
        None
    };
    let export = if config.scenarios.export() {
        eprintln!("running: exporting one tenant ({} events)", config.export_events);
        let db = BenchDb::migrated(pg, "bench_export").await?;
        Some(export::run(&db, &pool, config.export_events).await.context("running the export benchmark")?)
    } else {
        None
    };
    Ok(Ran { setting, rows, verification, api, index, export })
}

/// The append scenarios, their COPY baseline and the client-side share.
async fn append_rows(config: &Config, pg: &Postgres, pool: &Arc<Pool>) -> Result<Vec<Row>> {
    let mut rows = Vec::new();

    let single = Plan::single(config.writers, config.single_per_writer);
    let label = format!("single event, {}, 1 tenant", count(config.writers, "writer"));
    rows.push(append_row(pg, pool, "bench_single", label, Kind::Single, single).await?);

    for &size in &config.batch_sizes {
        let mut layouts = vec![1];
        if config.tenants > 1 {
            layouts.push(config.tenants);
        }
        for tenants in layouts {
            let plan = Plan::batches(size, tenants, config.batched_events);
            let label = match tenants {
                1 => format!("batch {size}, 1 writer"),
                n => format!("batch {size}, {n} writers on {n} tenants"),
            };
            let db = format!("bench_batch_{size}_{tenants}");
            rows.push(append_row(pg, pool, &db, label, Kind::Batched, plan).await?);
        }
    }

    rows.push(copy_row(pg, pool, config.copy_events).await?);
    rows.push(client_side_row(pool, config)?);
    Ok(rows)
}

/// "1 writer", "8 writers".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

async fn setting(pg: &Postgres, pool: &Pool) -> Result<Setting> {
    let client = pg.connect_superuser("postgres").await?;
    let server_version: String = client.query_one("SHOW server_version", &[]).await?.get(0);
    Ok(Setting {
        server_version,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        content: ContentSize::of(&pool.sealed()?),
    })
}

async fn append_row(pg: &Postgres, pool: &Arc<Pool>, db: &str, label: String, kind: Kind, plan: Plan) -> Result<Row> {
    eprintln!("running: {label} ({} events)", plan.events());
    let db = BenchDb::migrated(pg, db).await?;
    let measured = appends::run(&db, pool, plan).await.with_context(|| format!("running {label}"))?;
    Ok(Row { label, kind, measured })
}

async fn copy_row(pg: &Postgres, pool: &Pool, rows: usize) -> Result<Row> {
    let label = "COPY baseline, 1 connection".to_owned();
    eprintln!("running: {label} ({rows} rows)");
    let db = BenchDb::empty(pg, "bench_copy").await?;
    let measured = copy_baseline::run(&db, pool, rows).await.context("running the COPY baseline")?;
    Ok(Row { label, kind: Kind::Copy, measured })
}

/// The client-side share at the largest batch size, on one core.
fn client_side_row(pool: &Pool, config: &Config) -> Result<Row> {
    let size = config.batch_sizes.iter().copied().max().unwrap_or(1);
    let events = (config.batched_events / size).max(1) * size;
    let label = format!("validate + seal + hash only, batch {size}");
    eprintln!("running: {label} ({events} events)");
    let elapsed = client_side::seal_and_link(pool, events, size)?;
    let measured = Measured { events, elapsed, latencies: Vec::new(), growth: TableSizes::default() };
    Ok(Row { label, kind: Kind::ClientOnly, measured })
}
