//! Exporting one tenant's whole log through the export function (`service::export::ExportWorker`)
//! to S3 on the local AWS endpoint, beside a `COPY` of the rows the export scan reads.
//!
//! Set-up, timed but not the measured figure: the tenant is filled as in `verification`, then
//! `VACUUM ANALYZE`; the local AWS endpoint is bootstrapped (exports table, export queue, bucket,
//! checkpoint key) and the checkpointer signs the tenant's checkpoint once, as it would on its
//! schedule, so the export's snapshot covers every event.
//!
//! Measured, each export on its own, from `ExportJobs::create` (the job and its queue message) to
//! the job's last step: the export queue's messages received and handed to `ExportWorker::handle`
//! with a deadline far away, continuations followed if there are any, each message deleted once
//! handled. Once as JSON Lines, once as gzip'd CSV. Rows/s, and the process's peak resident set
//! during the export (`VmHWM` after resetting it through `/proc/self/clear_refs`) against its
//! resident set just before.
//!
//! The baseline: a binary `COPY (SELECT ..) TO STDOUT` of the export scan's query (same columns,
//! join, filter and order as `Store::export_scan` with no filter), every byte read, over one
//! connection as the service login with the tenant set.
//!
//! Where the time goes: the export scan alone (`Store::export_scan` read to the end in the
//! worker's chunks) and the scan with every row encoded, nothing uploaded; the rest of an export's
//! time is the uploads to the local S3 and the job's bookkeeping.
//!
//! Both bundles are downloaded afterwards and checked with `chain::export::verify_export` against
//! the checkpoint key; the scenario fails if either does not verify or misses a row.

use crate::db::BenchDb;
use crate::report::{grouped, print_table, verdict};
use crate::verification::{connect_reader, copy_row, fill, ReadKind};
use crate::workload::Pool;
use anyhow::{bail, ensure, Context, Result};
use localstack::moto::Moto;
use serde_json::Map;
use shared::aws::export_jobs::ExportJobStore;
use shared::aws::export_objects::ExportBucket;
use shared::aws::kms::KmsSigner;
use shared::aws::queues::Queue;
use shared::chain::export::{encode_row, verify_export, DataFormat, TrustedKey};
use shared::service::export::{ExportJob, ExportJobs, ExportRequest, ExportWorker, RunOutcome, WorkerSettings};
use shared::service::query::EventFilter;
use shared::signer::CheckpointSigner;
use shared::store::Store;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The export should keep this share of the COPY baseline's rows/s...
const EXPORT_SHARE_OF_COPY: f64 = 0.5;
/// ...and stay under this peak resident set for a million rows.
const PEAK_RSS_MIB: f64 = 128.0;
/// A run's deadline: far enough away that no run hands on for time.
const RUN_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// One timed export.
#[derive(Debug)]
pub struct ExportRun {
    pub label: String,
    pub rows: u64,
    pub elapsed: Duration,
    /// Deliveries it took (1 unless a run handed on).
    pub deliveries: usize,
    pub data_bytes: u64,
    pub proof_bytes: u64,
    pub rss_before_kib: u64,
    pub peak_kib: u64,
}

#[derive(Debug)]
pub struct ExportBench {
    pub events: usize,
    pub fill: Duration,
    pub runs: Vec<ExportRun>,
    pub copy: Duration,
    /// `Store::export_scan` read to the end in the worker's chunks, rows dropped.
    pub scan: Duration,
    /// The same with every row encoded as JSON Lines into a buffer that is then dropped.
    pub encoded: Duration,
}

/// Times `Store::export_scan` over the whole tenant in chunks of 2,000 rows (the worker's default),
/// encoding each row in `format` when given.
async fn scan_only(store: &mut Store, tenant: Uuid, events: usize, format: Option<DataFormat>) -> Result<Duration> {
    let started = Instant::now();
    let mut scan = store
        .export_scan(tenant, &EventFilter::default(), None, events as u64, WorkerSettings::default().chunk_rows)
        .await
        .context("opening the export scan")?;
    let mut line = Vec::with_capacity(4096);
    let mut rows = 0;
    loop {
        let chunk = scan.next_chunk().await.context("scanning")?;
        if chunk.is_empty() {
            break;
        }
        rows += chunk.len();
        if let Some(format) = format {
            for stored in &chunk {
                line.clear();
                let row = stored.export_row();
                encode_row(format, &row, &mut line).context("encoding a row")?;
                std::hint::black_box(&line);
            }
        }
    }
    scan.finish().await.context("ending the scan")?;
    ensure!(rows == events, "the export scan read {rows} rows, not {events}");
    Ok(started.elapsed())
}

pub async fn run(db: &BenchDb, pool: &Pool, events: usize) -> Result<ExportBench> {
    let moto = Moto::start().context("starting the local AWS endpoint")?;
    let sdk = moto.sdk_config();
    let resources = localstack::bootstrap::bootstrap(&sdk).await.context("bootstrapping the local AWS endpoint")?;
    let env = local_run::function_env(db.app_url(), db.maintenance_url(), &resources);

    let mut store = Store::connect(db.app_url()).await.context("connecting as the service")?;
    let tenant = store.create_tenant("bench-export").await.context("creating a tenant")?;
    let fill = fill(&mut store, tenant, pool, events).await?;
    eprintln!("  filled {events} events in {:.1} s", fill.as_secs_f64());
    db.superuser().batch_execute("VACUUM ANALYZE chain_entries, events").await.context("vacuuming")?;

    let signed = local_run::checkpoint_once(&env, &sdk).await.context("signing the checkpoint")?;
    ensure!(signed.signed >= 1, "the checkpointer signed nothing: {signed:?}");
    let signer = KmsSigner::from_config(&sdk, &resources.checkpoint_key_id, local_run::LOCAL_ORIGIN)
        .await
        .context("loading the checkpoint key")?;
    let keys = vec![TrustedKey { key_name: signer.key_name().to_owned(), spki_der: signer.public_key_der().to_vec() }];

    let worker = local_run::export_worker(&env, &sdk).await.context("configuring the export worker")?;
    let jobs = ExportJobs {
        jobs: ExportJobStore::new(&sdk, &resources.exports_table),
        queue: Queue::new(&sdk, &resources.export_queue.url),
        bucket: ExportBucket::new(&sdk, &resources.export_bucket),
        url_ttl: Duration::from_secs(900),
    };
    let exporter =
        Exporter { jobs, worker, sqs: aws_sdk_sqs::Client::new(&sdk), queue_url: resources.export_queue.url.clone() };

    eprintln!("  COPY of the export scan's query");
    let reader = connect_reader(db, tenant).await?;
    let label = "COPY of the export scan's query (binary)";
    let copy = copy_row(&reader, label, ReadKind::CopyJoin, &scan_query(tenant, events), events).await?.elapsed;
    reader.batch_execute("COMMIT").await?;

    eprintln!("  the export scan alone, and with rows encoded");
    let scan = scan_only(&mut store, tenant, events, None).await?;
    let encoded = scan_only(&mut store, tenant, events, Some(DataFormat::Jsonl)).await?;

    let mut runs = Vec::new();
    let mut finished = Vec::new();
    for (label, format, gzip) in
        [("export, JSON Lines", DataFormat::Jsonl, false), ("export, CSV gzip", DataFormat::Csv, true)]
    {
        eprintln!("  {label}");
        let (run, job) = exporter.export_once(tenant, label, format, gzip).await?;
        runs.push(run);
        finished.push(job);
    }

    eprintln!("  verifying the bundles");
    for (run, job) in runs.iter_mut().zip(&finished) {
        let files = job.files.as_ref().context("a finished job without files")?;
        let get = |key: String| {
            let bucket = &exporter.worker.bucket;
            async move { bucket.get(&key).await?.with_context(|| format!("{key} is missing")) }
        };
        let manifest = get(files.manifest.clone()).await?;
        let data = get(files.data.clone()).await?;
        let proof = get(files.proof.clone()).await?;
        run.data_bytes = data.len() as u64;
        run.proof_bytes = proof.len() as u64;
        let summary = verify_export(&manifest, data.as_slice(), proof.as_slice(), &keys)
            .map_err(|fault| anyhow::anyhow!("{}: the bundle does not verify: {fault:?}", run.label))?;
        if summary.rows != events as u64 {
            bail!("{}: the bundle verifies but holds {} rows, not {events}", run.label, summary.rows);
        }
    }
    Ok(ExportBench { events, fill, runs, copy, scan, encoded })
}

/// The API side that queues an export, the function that runs it, and the queue between them.
struct Exporter {
    jobs: ExportJobs,
    worker: ExportWorker,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Exporter {
    /// Creates one export job of the whole tenant and runs it to the end; returns the figures and
    /// the finished job.
    async fn export_once(
        &self,
        tenant: Uuid,
        label: &str,
        format: DataFormat,
        gzip: bool,
    ) -> Result<(ExportRun, ExportJob)> {
        let Exporter { jobs, worker, sqs, queue_url } = self;
        let rss_before_kib = status_kib("VmRSS")?;
        reset_peak_rss()?;
        let started = Instant::now();
        let job = jobs
            .create(tenant, ExportRequest { format, gzip, filter: Map::new() }, None)
            .await
            .context("creating the job")?;
        let mut deliveries = 0;
        loop {
            let received = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(1)
                .wait_time_seconds(2)
                .send()
                .await
                .context("SQS ReceiveMessage")?;
            let Some(message) = received.messages().first() else {
                bail!("{label}: the export queue is empty before the job is done");
            };
            let body = message.body().context("a message without a body")?;
            let outcome = worker.handle(body, 1, Instant::now() + RUN_LIMIT).await.context("running the export")?;
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await?;
            }
            deliveries += 1;
            match outcome {
                RunOutcome::Done => break,
                RunOutcome::HandedOn => continue,
                other => bail!("{label}: a run ended {other:?}"),
            }
        }
        let elapsed = started.elapsed();
        let peak_kib = status_kib("VmHWM")?;
        let job = jobs.get(tenant, job.id).await.context("reading the finished job")?;
        let run = ExportRun {
            label: label.to_owned(),
            rows: job.rows,
            elapsed,
            deliveries,
            data_bytes: 0,
            proof_bytes: 0,
            rss_before_kib,
            peak_kib,
        };
        Ok((run, job))
    }
}

/// The query `Store::export_scan` runs with no filter, its parameters written in. It must stay
/// the same as the scan's SQL in `shared/src/store/export.rs`.
fn scan_query(tenant: Uuid, tree_size: usize) -> String {
    format!(
        "SELECT c.tenant_id, c.seq, c.event_id, c.received_at, c.content_digest, c.leaf_hash, c.chain_hash, e.content, e.salt
           FROM events e
           JOIN chain_entries c ON c.tenant_id = e.tenant_id AND c.seq = e.seq
          WHERE e.tenant_id = '{tenant}' AND e.seq < {tree_size}
          ORDER BY e.seq"
    )
}

/// Resets the process's peak resident set (`VmHWM`) to its current size (Linux 4.0 and later).
fn reset_peak_rss() -> Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak resident set")
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn print(bench: &ExportBench) {
    println!();
    println!(
        "Export of one tenant's whole log ({} events, filled in {:.1} s) to S3 on the local AWS endpoint \
         (moto, on the same cores)",
        grouped(bench.events as f64),
        bench.fill.as_secs_f64()
    );
    let copy = bench.events as f64 / bench.copy.as_secs_f64();
    let mut rows: Vec<Vec<String>> = bench
        .runs
        .iter()
        .map(|r| {
            let rate = r.rows as f64 / r.elapsed.as_secs_f64();
            let share = rate / copy;
            let peak = mib(r.peak_kib);
            vec![
                r.label.clone(),
                grouped(r.rows as f64),
                format!("{:.2}", r.elapsed.as_secs_f64()),
                grouped(rate),
                format!("{share:.3}"),
                verdict(format!(">= {EXPORT_SHARE_OF_COPY:.2}"), share >= EXPORT_SHARE_OF_COPY),
                r.deliveries.to_string(),
                format!("{:.0}", r.data_bytes as f64 / 1e6),
                format!("{:.1}", mib(r.rss_before_kib)),
                format!("{peak:.1}"),
                format!("{:.1}", peak - mib(r.rss_before_kib)),
                verdict(format!("peak < {PEAK_RSS_MIB:.0}"), peak < PEAK_RSS_MIB),
            ]
        })
        .collect();
    rows.push(vec![
        "baseline: COPY of the scan query, 1 connection".to_owned(),
        grouped(bench.events as f64),
        format!("{:.2}", bench.copy.as_secs_f64()),
        grouped(copy),
    ]);
    for (label, elapsed) in [
        ("export scan alone (Store::export_scan, 2,000-row chunks)", bench.scan),
        ("export scan + JSON Lines encoding, nothing uploaded", bench.encoded),
    ] {
        let rate = bench.events as f64 / elapsed.as_secs_f64();
        rows.push(vec![
            label.to_owned(),
            grouped(bench.events as f64),
            format!("{:.2}", elapsed.as_secs_f64()),
            grouped(rate),
            format!("{:.3}", rate / copy),
        ]);
    }
    print_table(
        "Export throughput and memory (bundles verified with verify_export afterwards)",
        &[
            "",
            "rows",
            "seconds",
            "rows/s",
            "/ COPY",
            "target",
            "runs",
            "data MB",
            "RSS before MiB",
            "peak MiB",
            "growth MiB",
            "target",
        ],
        &rows,
    );
    println!("  (peak: the whole process's VmHWM during the export alone, reset just before it)");
}
