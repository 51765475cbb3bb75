//! Exports: a tenant asks for the entries matching a filter as CSV or JSON Lines (optionally
//! gzip'd); the export function writes them to S3 with a proof and a manifest that verify
//! offline (docs/FORMATS.md, "Export bundle"), and the API hands out presigned URLs.
//!
//! Life of an export:
//! 1. `POST /v1/exports` validates the filter, stores the job (DynamoDB, status `queued`) and
//!    sends `{tenant, export, step 0}` to the export queue ([`ExportJobs::create`]).
//! 2. The export function claims the step (a lease in DynamoDB, so a duplicate delivery does not
//!    run twice), fixes the snapshot on its first run (the latest signed checkpoint: every row
//!    has `seq < tree_size` and is covered by that signed tree head), and starts two multipart
//!    uploads: data and proof.
//! 3. Rows stream from PostgreSQL through a server-side cursor, a chunk at a time; each chunk is
//!    encoded, the Merkle nodes covering the gaps before its rows are read in one query, and a
//!    part is uploaded whenever a buffer reaches the part size. Memory stays bounded by the part
//!    size and the chunk, whatever the export's size.
//! 4. A run that nears the Lambda time limit saves its position (last seq, uploads and their part
//!    counts, the SHA-256 states, the unflushed buffers as pending objects) in the job, moves it to
//!    the next step and sends that step's message; the next run continues the same uploads.
//! 5. The last run completes the uploads, writes the manifest and marks the job `done`. Any
//!    failure after the queue's last retry marks it `failed` with a reason and aborts the uploads,
//!    so a failed export is reported, never left running.
//!
//! A step's message can still be lost: a run that stops between moving the job on and sending
//! the next message, a run killed at its time limit whose message then ran out of deliveries, an
//! API instance that stopped between storing the job and queueing it. The sweep
//! ([`sweep_stalled`], run by the relay every minute) sends the current step's message again
//! for every unfinished job that has not moved since its `sweep_at` (a grace period after it was
//! queued or handed on, or after its run's lease ended). The claim makes the duplicate harmless:
//! a step runs under one lease at a time, and a message for a step the job has left is stale. A
//! step resent [`MAX_RESENDS`] times that stalls again is marked `failed`.

use crate::aws::export_jobs::{After, Claim, ExportJobStore, JobStoreError};
use crate::aws::export_objects::{Download, ExportBucket};
use crate::aws::queues::{Queue, QueueError};
use crate::aws::s3::S3Error;
use crate::chain::event::{format_timestamp, ValidationError};
use crate::chain::export::{
    csv_header, encode_proof_node, encode_row, proof_nodes_between, DataFormat, Manifest, ManifestCheckpoint,
    ObjectInfo, ProofInfo, FORMAT, MANIFEST_FILE, PROOF_FILE,
};
use crate::chain::hash::ResumableSha256;
use crate::metrics::{self, Unit};
use crate::service::query::EventFilter;
use crate::store::pool::StorePool;
use crate::store::StoreError;
use chrono::Utc;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long an export (job and objects) is kept; the bucket's lifecycle rule matches it.
pub const EXPORT_LIFETIME_DAYS: i64 = 7;
/// The most parts one object may have here (S3 allows 10,000; the ETags must fit the job item).
const MAX_PARTS: usize = 9000;
/// How many jobs `GET /v1/exports` lists.
pub const LIST_LIMIT: i32 = 100;
/// How long a queued or handed-on step may wait for its run, and how long after a claimed step's
/// lease the queue's own redelivery has, before the sweep sends the step's message again.
pub const SWEEP_GRACE: Duration = Duration::from_secs(5 * 60);
/// How often the sweep sends one step's message again before a stall of that step fails the job.
pub const MAX_RESENDS: u32 = 3;
/// Stalled jobs looked at per sweep run (more wait for the next run).
const SWEEP_LIMIT: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Jobs(#[from] JobStoreError),
    #[error(transparent)]
    Objects(#[from] S3Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("encoding the export: {0}")]
    Encode(String),
    #[error("the export job is malformed: {0}")]
    Corrupt(String),
    /// Nothing to export yet: the tenant has no signed checkpoint.
    #[error("the tenant has no signed checkpoint yet, so nothing can be exported verifiably; retry in a minute")]
    NoCheckpoint,
    #[error("no such export")]
    NotFound,
    /// The step's runs kept stopping before they moved the job on, through every resend.
    #[error("the export's runs stopped {0} times without progress")]
    Stalled(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Queued,
    Running,
    Done,
    Failed,
}

/// Why a job failed, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

/// The object keys of a finished export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFiles {
    pub data: String,
    pub proof: String,
    pub manifest: String,
}

/// One multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub key: String,
    pub upload_id: String,
    /// The ETags of the parts uploaded so far, part 1 first (at most 9,000 fit the job's
    /// DynamoDB item, 144 GB with 16 MiB parts).
    pub etags: Vec<String>,
    /// SHA-256 over the bytes uploaded so far.
    pub sha256: ResumableSha256,
    pub bytes: u64,
    /// Bytes written but not uploaded when the last run handed on, kept in this object.
    pub pending: Option<String>,
}

/// Where an export stands between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub checkpoint: ManifestCheckpoint,
    pub data: UploadState,
    pub proof: UploadState,
    /// The seq of the last row written (None: none yet).
    pub after: Option<u64>,
    pub first_seq: Option<u64>,
    pub rows: u64,
    pub proof_nodes: u64,
}

/// An export job as stored (the API shows all but `progress`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: ExportStatus,
    pub format: DataFormat,
    pub gzip: bool,
    pub filter: Map<String, Value>,
    /// The pin of the viewer token that asked for the export: its rows are `filter` ANDed with
    /// it, and only tokens with the same pin see the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<crate::auth::Pin>,
    pub created_at: String,
    pub updated_at: String,
    pub rows: u64,
    pub tree_size: Option<u64>,
    pub error: Option<JobFailure>,
    pub files: Option<ExportFiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

impl ExportJob {
    fn to_json(&self) -> Result<String, ExportError> {
        serde_json::to_string(self).map_err(|e| ExportError::Encode(e.to_string()))
    }

    fn parse(text: &str) -> Result<Self, ExportError> {
        serde_json::from_str(text).map_err(|e| ExportError::Corrupt(e.to_string()))
    }

    fn touch(&mut self) {
        self.updated_at = format_timestamp(&Utc::now());
    }
}

/// The body of `POST /v1/exports`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub format: DataFormat,
    #[serde(default)]
    pub gzip: bool,
    /// `GET /v1/events`'s filter parameters, as strings.
    #[serde(default)]
    pub filter: Map<String, Value>,
}

/// Parses an export's filter: the names and values `GET /v1/events` accepts, as JSON strings.
pub fn parse_filter(filter: &Map<String, Value>) -> Result<EventFilter, ValidationError> {
    let mut pairs = Vec::with_capacity(filter.len());
    for (name, value) in filter {
        let value = value.as_str().ok_or_else(|| ValidationError::new(format!("filter.{name}"), "must be a string"))?;
        pairs.push((name.as_str(), value));
    }
    EventFilter::from_params(pairs).map_err(|e| ValidationError::new(format!("filter.{}", e.field), e.message))
}

/// The body of an export-queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMessage {
    pub v: u8,
    pub tenant_id: Uuid,
    pub export_id: Uuid,
    pub step: u64,
}

impl ExportMessage {
    pub fn body(&self) -> String {
        json!(self).to_string()
    }
}

fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// The API side: creating, reading and listing a tenant's export jobs, and their downloads.
#[derive(Debug, Clone)]
pub struct ExportJobs {
    pub jobs: ExportJobStore,
    pub queue: Queue,
    pub bucket: ExportBucket,
    /// How long a presigned URL is valid.
    pub url_ttl: Duration,
}

impl ExportJobs {
    /// Stores a queued job for `request` and sends it to the export queue. A viewer token's
    /// `pin` goes with the job: the export holds only rows the pin selects.
    pub async fn create(
        &self,
        tenant: Uuid,
        request: ExportRequest,
        pin: Option<&crate::auth::Pin>,
    ) -> Result<ExportJob, ExportError> {
        parse_filter(&request.filter)?;
        let now = Utc::now();
        let job = ExportJob {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            status: ExportStatus::Queued,
            format: request.format,
            gzip: request.gzip,
            filter: request.filter,
            pin: pin.cloned(),
            created_at: format_timestamp(&now),
            updated_at: format_timestamp(&now),
            rows: 0,
            tree_size: None,
            error: None,
            files: None,
            progress: None,
        };
        let expires = now.timestamp() + EXPORT_LIFETIME_DAYS * 86_400;
        let sweep_at = now.timestamp() + SWEEP_GRACE.as_secs() as i64;
        self.jobs.create(tenant, job.id, &job.to_json()?, expires, sweep_at).await?;
        let message = ExportMessage { v: 1, tenant_id: tenant, export_id: job.id, step: 0 };
        if let Err(e) = self.queue.send(&message.body(), 0).await {
            // The job would never run: record why instead of leaving it queued.
            let mut failed = job.clone();
            failed.status = ExportStatus::Failed;
            failed.error =
                Some(JobFailure { code: "not_queued".into(), message: "the export could not be queued".into() });
            failed.touch();
            if let Err(write) = self.jobs.advance(tenant, job.id, 0, 0, &failed.to_json()?, After::Finish).await {
                tracing::error!(export_id = %job.id, error = %write, "marking an unqueued export failed also failed");
            }
            return Err(e.into());
        }
        tracing::info!(%tenant, export_id = %job.id, "export queued");
        Ok(job)
    }

    pub async fn get(&self, tenant: Uuid, id: Uuid) -> Result<ExportJob, ExportError> {
        let stored = self.jobs.get(tenant, id, unix_now()).await?.ok_or(ExportError::NotFound)?;
        ExportJob::parse(&stored.job)
    }

    pub async fn list(&self, tenant: Uuid) -> Result<Vec<ExportJob>, ExportError> {
        let stored = self.jobs.list(tenant, LIST_LIMIT, unix_now()).await?;
        stored.iter().map(|s| ExportJob::parse(&s.job)).collect()
    }

    /// Presigned URLs for a finished export's files.
    pub async fn downloads(&self, job: &ExportJob) -> Result<Option<Value>, ExportError> {
        let Some(files) = &job.files else { return Ok(None) };
        let (data, proof, manifest): (Download, Download, Download) = futures::try_join!(
            self.bucket.presign(&files.data, self.url_ttl),
            self.bucket.presign(&files.proof, self.url_ttl),
            self.bucket.presign(&files.manifest, self.url_ttl)
        )?;
        Ok(Some(json!({ "data": data, "proof": proof, "manifest": manifest })))
    }
}

/// The job as `GET /v1/exports/{id}` shows it.
pub fn job_view(job: &ExportJob, download: Option<Value>) -> Value {
    json!({
        "id": job.id,
        "status": job.status,
        "format": job.format,
        "gzip": job.gzip,
        "filter": job.filter,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "rows": job.rows,
        "tree_size": job.tree_size,
        "error": job.error,
        "download": download,
    })
}

/// Tuning of the export function.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// A part is uploaded once this many bytes are buffered (S3 needs at least 5 MiB for every
    /// part but the last; at most 10,000 parts, so 16 MiB parts reach 160 GB).
    pub part_size: usize,
    /// Rows per fetch from the server-side cursor.
    pub chunk_rows: i32,
    /// A run hands on when less than this is left before its deadline.
    pub margin: Duration,
    /// How long a claim holds the job: longer than the function's timeout, shorter than the
    /// queue's visibility timeout.
    pub lease: Duration,
    /// Deliveries of one message before the job is marked failed (the queue's maxReceiveCount).
    pub max_attempts: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            part_size: 16 << 20,
            chunk_rows: 2000,
            margin: Duration::from_secs(60),
            lease: Duration::from_secs(15 * 60 + 30),
            max_attempts: 3,
        }
    }
}

/// What one delivery of an export message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Done,
    HandedOn,
    Failed,
    /// Another run holds the lease: retry the message later.
    Busy,
    /// The message is older than the job's step (a duplicate or a finished job).
    Stale,
}

/// The export function's work.
#[derive(Debug, Clone)]
pub struct ExportWorker {
    pub pool: StorePool,
    pub jobs: ExportJobStore,
    pub bucket: ExportBucket,
    pub queue: Queue,
    pub settings: WorkerSettings,
}

/// An upload being written: bytes buffer until a part's worth is there. With gzip, each part is
/// its own gzip member, so parts written in different runs concatenate into one valid stream.
/// One part uploads in the background while the next is encoded, so the export waits for S3
/// only when it is slower than encoding; memory holds at most two parts.
struct PartWriter {
    state: UploadState,
    gzip: bool,
    part_size: usize,
    done: Vec<u8>,
    member: Option<GzEncoder<Vec<u8>>>,
    in_flight: Option<tokio::task::JoinHandle<Result<String, S3Error>>>,
}

impl PartWriter {
    async fn resume(
        bucket: &ExportBucket,
        state: UploadState,
        gzip: bool,
        part_size: usize,
    ) -> Result<Self, ExportError> {
        let done = match &state.pending {
            Some(key) => bucket.get(key).await?.ok_or_else(|| ExportError::Corrupt(format!("{key} is missing")))?,
            None => Vec::new(),
        };
        Ok(PartWriter { state, gzip, part_size, done, member: None, in_flight: None })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        if self.gzip {
            let member = self.member.get_or_insert_with(|| GzEncoder::new(Vec::new(), Compression::fast()));
            member.write_all(bytes).map_err(|e| ExportError::Encode(e.to_string()))
        } else {
            self.done.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn close_member(&mut self) -> Result<(), ExportError> {
        if let Some(member) = self.member.take() {
            let bytes = member.finish().map_err(|e| ExportError::Encode(e.to_string()))?;
            self.done.extend_from_slice(&bytes);
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.done.len() + self.member.as_ref().map_or(0, |m| m.get_ref().len())
    }

    /// Waits for the part in flight and records its ETag.
    async fn settle(&mut self) -> Result<(), ExportError> {
        if let Some(upload) = self.in_flight.take() {
            let etag = upload.await.map_err(|e| ExportError::Encode(format!("a part upload stopped: {e}")))??;
            self.state.etags.push(etag);
        }
        Ok(())
    }

    /// Starts uploading what is buffered as the next part, once the previous part is up.
    async fn upload(&mut self, bucket: &ExportBucket) -> Result<(), ExportError> {
        self.settle().await?;
        if self.state.etags.len() >= MAX_PARTS {
            return Err(ExportError::Encode(format!("the export needs more than {MAX_PARTS} parts")));
        }
        let body = std::mem::take(&mut self.done);
        self.state.sha256.update(&body);
        self.state.bytes += body.len() as u64;
        let number = self.state.etags.len() as i32 + 1;
        let (bucket, key, upload_id) = (bucket.clone(), self.state.key.clone(), self.state.upload_id.clone());
        self.in_flight = Some(tokio::spawn(async move { bucket.upload_part(&key, &upload_id, number, body).await }));
        Ok(())
    }

    async fn flush_if_full(&mut self, bucket: &ExportBucket) -> Result<bool, ExportError> {
        if self.buffered() < self.part_size {
            return Ok(false);
        }
        self.close_member()?;
        self.upload(bucket).await?;
        Ok(true)
    }

    /// Saves what is buffered as the pending object and returns the state to resume from.
    async fn suspend(mut self, bucket: &ExportBucket) -> Result<UploadState, ExportError> {
        self.settle().await?;
        self.close_member()?;
        let key = format!("{}.pending", self.state.key);
        bucket.put(&key, std::mem::take(&mut self.done), "application/octet-stream").await?;
        self.state.pending = Some(key);
        Ok(self.state)
    }

    /// Uploads the rest as the last part and completes the object.
    async fn finish(mut self, bucket: &ExportBucket) -> Result<(String, ResumableSha256, u64), ExportError> {
        self.settle().await?;
        self.close_member()?;
        if self.state.etags.is_empty() && self.done.is_empty() {
            // An empty object: a multipart upload needs at least one part, S3 objects do not.
            bucket.abort_upload(&self.state.key, &self.state.upload_id).await?;
            bucket.put(&self.state.key, Vec::new(), "application/octet-stream").await?;
        } else {
            if !self.done.is_empty() {
                self.upload(bucket).await?;
                self.settle().await?;
            }
            bucket.complete_upload(&self.state.key, &self.state.upload_id, &self.state.etags).await?;
        }
        if let Some(pending) = &self.state.pending {
            bucket.delete(pending).await?;
        }
        Ok((self.state.key, self.state.sha256, self.state.bytes))
    }
}

impl ExportWorker {
    /// Handles one delivery of an export message. `receive_count` is SQS's
    /// ApproximateReceiveCount; `deadline` is when the function is stopped.
    pub async fn handle(&self, body: &str, receive_count: u32, deadline: Instant) -> Result<RunOutcome, ExportError> {
        let message: ExportMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "malformed export message dropped");
                return Ok(RunOutcome::Stale);
            }
        };
        let (tenant, id) = (message.tenant_id, message.export_id);
        let now = unix_now();
        let lease_until = now + self.settings.lease.as_secs() as i64;
        let grace = SWEEP_GRACE.as_secs() as i64;
        let stored = match self.jobs.claim(tenant, id, message.step, now, lease_until, lease_until + grace).await? {
            Claim::Claimed(stored) => stored,
            Claim::Busy => return Ok(RunOutcome::Busy),
            Claim::Stale => return Ok(RunOutcome::Stale),
        };
        let mut job = ExportJob::parse(&stored.job)?;
        if matches!(job.status, ExportStatus::Done | ExportStatus::Failed) {
            return Ok(RunOutcome::Stale);
        }
        if stored.resends > MAX_RESENDS {
            self.fail(&mut job, message.step, &ExportError::Stalled(stored.resends)).await;
            return Ok(RunOutcome::Failed);
        }
        match self.run(&mut job, message.step, deadline).await {
            Ok(outcome) => Ok(outcome),
            // Another run holds the step (a duplicate delivery claimed it too): this one stops
            // and leaves the job to it, releasing and failing nothing.
            Err(ExportError::Jobs(JobStoreError::LostClaim)) => {
                tracing::warn!(export_id = %id, step = message.step, "another run holds this export step; stopping");
                Ok(RunOutcome::Stale)
            }
            Err(error) => {
                let last_try = receive_count >= self.settings.max_attempts;
                let permanent =
                    matches!(error, ExportError::NoCheckpoint | ExportError::Invalid(_) | ExportError::Corrupt(_));
                if last_try || permanent {
                    self.fail(&mut job, message.step, &error).await;
                    return Ok(RunOutcome::Failed);
                }
                // Release the lease so the retry can claim this step at once; the job keeps the
                // progress it had when this step began, which the retry starts from.
                let sweep_at = unix_now() + self.settings.lease.as_secs() as i64 + grace;
                if let Err(e) = self.jobs.release(tenant, id, message.step, sweep_at).await {
                    tracing::warn!(export_id = %id, error = %e, "releasing the export lease failed");
                }
                Err(error)
            }
        }
    }

    /// Marks the job failed and abandons its uploads.
    async fn fail(&self, job: &mut ExportJob, step: u64, error: &ExportError) {
        tracing::error!(export_id = %job.id, %error, "export failed");
        if let Some(progress) = &job.progress {
            for upload in [&progress.data, &progress.proof] {
                if let Err(e) = self.bucket.abort_upload(&upload.key, &upload.upload_id).await {
                    tracing::warn!(key = %upload.key, error = %e, "aborting an upload failed");
                }
            }
        }
        let code = match error {
            ExportError::NoCheckpoint => "no_checkpoint",
            ExportError::Invalid(_) => "invalid_filter",
            _ => "export_failed",
        };
        let message = match error {
            ExportError::NoCheckpoint | ExportError::Invalid(_) => error.to_string(),
            _ => "the export could not be completed; request it again".to_owned(),
        };
        job.status = ExportStatus::Failed;
        job.error = Some(JobFailure { code: code.into(), message });
        job.progress = None;
        job.touch();
        metrics::emit(&[("ExportFailures", 1.0, Unit::Count)], &[("Function", "export")]);
        match job.to_json() {
            Ok(text) => {
                if let Err(e) = self.jobs.advance(job.tenant_id, job.id, step, step + 1, &text, After::Finish).await {
                    tracing::error!(export_id = %job.id, error = %e, "recording the export's failure failed");
                }
            }
            Err(e) => tracing::error!(export_id = %job.id, error = %e, "encoding a failed export"),
        }
    }

    /// The first run's set-up: the snapshot (latest signed checkpoint) and the two uploads.
    async fn start(&self, job: &ExportJob) -> Result<Progress, ExportError> {
        let checkpoint = {
            let mut store = self.pool.get().await?;
            store.latest_checkpoint(job.tenant_id).await?.ok_or(ExportError::NoCheckpoint)?
        };
        let prefix = ExportBucket::prefix(job.tenant_id, job.id);
        let data_key = format!("{prefix}{}", job.format.file_name(job.gzip));
        let proof_key = format!("{prefix}{PROOF_FILE}");
        let data_type = if job.gzip { "application/gzip" } else { job.format.content_type() };
        let data_upload = self.bucket.create_upload(&data_key, data_type).await?;
        let proof_upload = self.bucket.create_upload(&proof_key, "application/x-ndjson").await?;
        let upload = |key: String, upload_id: String| UploadState {
            key,
            upload_id,
            etags: Vec::new(),
            sha256: ResumableSha256::default(),
            bytes: 0,
            pending: None,
        };
        Ok(Progress {
            checkpoint: ManifestCheckpoint {
                tree_size: checkpoint.tree_size,
                root: checkpoint.root,
                note: checkpoint.note,
            },
            data: upload(data_key, data_upload),
            proof: upload(proof_key, proof_upload),
            after: None,
            first_seq: None,
            rows: 0,
            proof_nodes: 0,
        })
    }

    async fn run(&self, job: &mut ExportJob, step: u64, deadline: Instant) -> Result<RunOutcome, ExportError> {
        let requested = parse_filter(&job.filter)?;
        // A pinned export holds the rows of its filter ANDed with the pin; when the two
        // contradict each other it holds none (and its proof still completes the tree).
        let filter = match &job.pin {
            Some(pin) => requested.and(&EventFilter::from_pin(pin)?),
            None => Some(requested.clone()),
        };
        let mut progress = match job.progress.take() {
            Some(p) => p,
            None => self.start(job).await?,
        };
        job.status = ExportStatus::Running;
        job.tree_size = Some(progress.checkpoint.tree_size);
        job.progress = Some(progress.clone());
        job.touch();
        self.jobs.advance(job.tenant_id, job.id, step, step, &job.to_json()?, After::Keep).await?;

        let size = self.settings.part_size;
        let mut data = PartWriter::resume(&self.bucket, progress.data.clone(), job.gzip, size).await?;
        let mut proof = PartWriter::resume(&self.bucket, progress.proof.clone(), false, size).await?;
        let mut line = Vec::with_capacity(4096);
        // Nothing of the data is kept yet (the first run, or its retry): the CSV starts with its
        // header.
        let nothing_kept = progress.data.etags.is_empty() && progress.data.pending.is_none();
        if nothing_kept && job.format == DataFormat::Csv {
            csv_header(&mut line);
            data.write(&line)?;
        }
        let tree_size = progress.checkpoint.tree_size;
        let mut store = self.pool.get().await?;
        // Matching nothing, the scan starts after the tree's last seq, so it reads no rows.
        let (filter, after) = match &filter {
            Some(f) => (f, progress.after),
            None => (&requested, Some(tree_size.saturating_sub(1))),
        };
        let mut scan = store.export_scan(job.tenant_id, filter, after, tree_size, self.settings.chunk_rows).await?;
        let mut handed_on = false;
        loop {
            let rows = scan.next_chunk().await?;
            if rows.is_empty() {
                break;
            }
            let mut nodes = Vec::new();
            for stored in &rows {
                nodes.extend(proof_nodes_between(progress.after, stored.entry.seq));
                line.clear();
                let row = stored.export_row();
                encode_row(job.format, &row, &mut line).map_err(|e| ExportError::Encode(e.to_string()))?;
                data.write(&line)?;
                progress.after = Some(stored.entry.seq);
                progress.first_seq.get_or_insert(stored.entry.seq);
                progress.rows += 1;
            }
            write_nodes(&mut proof, &nodes, &scan.node_hashes(&nodes).await?, &mut line)?;
            progress.proof_nodes += nodes.len() as u64;
            data.flush_if_full(&self.bucket).await?;
            proof.flush_if_full(&self.bucket).await?;
            if Instant::now() + self.settings.margin >= deadline {
                handed_on = true;
                break;
            }
        }
        if handed_on {
            scan.finish().await?;
            drop(store);
            progress.data = data.suspend(&self.bucket).await?;
            progress.proof = proof.suspend(&self.bucket).await?;
            return self.hand_on(job, progress, step).await;
        }
        let nodes = proof_nodes_between(progress.after, tree_size);
        write_nodes(&mut proof, &nodes, &scan.node_hashes(&nodes).await?, &mut line)?;
        progress.proof_nodes += nodes.len() as u64;
        scan.finish().await?;
        drop(store);

        job.rows = progress.rows;
        let (data_key, data_sha, data_bytes) = data.finish(&self.bucket).await?;
        let (proof_key, proof_sha, proof_bytes) = proof.finish(&self.bucket).await?;
        let manifest_key = format!("{}{MANIFEST_FILE}", ExportBucket::prefix(job.tenant_id, job.id));
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            export_id: job.id,
            tenant_id: job.tenant_id,
            created_at: job.created_at.clone(),
            completed_at: format_timestamp(&Utc::now()),
            filter: job.filter.clone(),
            pin: job.pin.as_ref().map(|pin| pin.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            data_format: job.format,
            gzip: job.gzip,
            rows: job.rows,
            first_seq: progress.first_seq,
            last_seq: progress.after,
            data: ObjectInfo { key: data_key.clone(), sha256: data_sha.finish(), bytes: data_bytes },
            proof: ProofInfo {
                key: proof_key.clone(),
                sha256: proof_sha.finish(),
                bytes: proof_bytes,
                nodes: progress.proof_nodes,
            },
            checkpoint: progress.checkpoint.clone(),
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::Encode(e.to_string()))?;
        self.bucket.put(&manifest_key, manifest_bytes, "application/json").await?;
        job.status = ExportStatus::Done;
        job.files = Some(ExportFiles { data: data_key, proof: proof_key, manifest: manifest_key });
        job.progress = None;
        job.touch();
        self.jobs.advance(job.tenant_id, job.id, step, step + 1, &job.to_json()?, After::Finish).await?;
        metrics::emit(
            &[("ExportsCompleted", 1.0, Unit::Count), ("ExportRows", job.rows as f64, Unit::Count)],
            &[("Function", "export")],
        );
        tracing::info!(export_id = %job.id, rows = job.rows, "export done");
        Ok(RunOutcome::Done)
    }

    /// Saves the progress, moves the job to the next step and sends that step's message. If the
    /// message cannot be sent, the sweep sends it once the step's grace period has passed.
    async fn hand_on(&self, job: &mut ExportJob, progress: Progress, step: u64) -> Result<RunOutcome, ExportError> {
        job.rows = progress.rows;
        job.progress = Some(progress);
        job.touch();
        let sweep_at = unix_now() + SWEEP_GRACE.as_secs() as i64;
        self.jobs.advance(job.tenant_id, job.id, step, step + 1, &job.to_json()?, After::HandOn { sweep_at }).await?;
        let next = ExportMessage { v: 1, tenant_id: job.tenant_id, export_id: job.id, step: step + 1 };
        for attempt in 0..3u64 {
            match self.queue.send(&next.body(), 0).await {
                Ok(()) => {
                    tracing::info!(export_id = %job.id, rows = job.rows, step = step + 1, "export handed on");
                    return Ok(RunOutcome::HandedOn);
                }
                Err(e) if attempt == 2 => {
                    tracing::warn!(export_id = %job.id, step = step + 1, error = %e, "the next step's message was not sent; the sweep sends it");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await,
            }
        }
        Ok(RunOutcome::HandedOn)
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepRun {
    /// Unfinished jobs found past their `sweep_at`.
    pub stalled: u32,
    /// Of those, the ones whose step's message was sent again.
    pub resent: u32,
    /// Jobs whose resend failed (they are due again at the next run).
    pub failed: u32,
}

/// Sends the current step's message again for every unfinished export that has not moved since
/// its `sweep_at` (`now` is unix seconds), and moves its next look one [`SWEEP_GRACE`] ahead.
/// Runs on the relay's schedule. Concurrent sweeps send a job's message once (the conditional
/// write of [`ExportJobStore::mark_resent`]), and a job that moved on meanwhile is left alone.
/// Emits `ExportsResent` (a steady non-zero value means runs keep stopping or losing messages).
pub async fn sweep_stalled(jobs: &ExportJobStore, queue: &Queue, now: i64) -> Result<SweepRun, ExportError> {
    let stalled = jobs.stalled(now, SWEEP_LIMIT).await?;
    let mut run = SweepRun { stalled: stalled.len() as u32, ..Default::default() };
    let next = now + SWEEP_GRACE.as_secs() as i64;
    for job in &stalled {
        let resend = async {
            if !jobs.mark_resent(job, now, next).await? {
                return Ok(false);
            }
            let message = ExportMessage { v: 1, tenant_id: job.tenant, export_id: job.id, step: job.step };
            queue.send(&message.body(), 0).await?;
            Ok::<_, ExportError>(true)
        };
        match resend.await {
            Ok(true) => {
                tracing::warn!(tenant = %job.tenant, export_id = %job.id, step = job.step, "stalled export: its step's message is sent again");
                run.resent += 1;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(export_id = %job.id, %error, "sending a stalled export's message again failed");
                run.failed += 1;
            }
        }
    }
    metrics::emit(&[("ExportsResent", f64::from(run.resent), Unit::Count)], &[("Function", "relay")]);
    Ok(run)
}

fn write_nodes(
    proof: &mut PartWriter,
    nodes: &[crate::chain::merkle::NodeId],
    hashes: &[crate::chain::hash::Hash],
    line: &mut Vec<u8>,
) -> Result<(), ExportError> {
    for (node, hash) in nodes.iter().zip(hashes) {
        line.clear();
        encode_proof_node(*node, hash, line);
        proof.write(line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_the_listing_filters_as_strings() {
        let ok: Map<String, Value> = serde_json::from_value(json!({"action": "user.*", "outcome": "denied"})).unwrap();
        assert!(parse_filter(&ok).is_ok());
        for (filter, field) in [
            (json!({"limit": "10"}), "filter.limit"),
            (json!({"cursor": "x"}), "filter.cursor"),
            (json!({"tenant_id": "x"}), "filter.tenant_id"),
            (json!({"outcome": "meh"}), "filter.outcome"),
            (json!({"actor_id": 7}), "filter.actor_id"),
            (json!({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}), "filter.from"),
        ] {
            let map: Map<String, Value> = serde_json::from_value(filter.clone()).unwrap();
            assert_eq!(parse_filter(&map).unwrap_err().field, field, "{filter}");
        }
    }
}
