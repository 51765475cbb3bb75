//! Export jobs in DynamoDB (table `audit-log-exports`): partition key `tenant_id`, sort key
//! `export_id` (a UUIDv7, so a tenant's jobs sort by creation time). A tenant's job is only ever
//! addressed with the tenant's id as partition key, so one tenant cannot read, list or change
//! another's jobs whatever id it names.
//!
//! Item: `tenant_id` S, `export_id` S, `job` S (the job as JSON, see `service::export`), `step` N
//! (the run the job is at; a run claims its step and hands on the next), `lease_until` N (unix
//! seconds while a run holds the job), `expires_at` N (unix seconds; the table's TTL attribute,
//! also checked on read because TTL deletes lazily).
//!
//! While a job is unfinished (queued or running) it also has `sweep` S (always `open`) and
//! `sweep_at` N (unix seconds): when the sweep should send its step's message again if no run
//! has moved it on by then (the lease's end for a claimed step, a grace period after the job
//! was queued or handed on), and `resends` N, how often the sweep did so for this step. The
//! sparse index [`SWEEP_INDEX`] (hash `sweep`, range `sweep_at`) holds only unfinished jobs, so
//! finding the stalled ones across tenants is one query over the few that are open; finishing a
//! job removes both attributes and so its index entry.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::fmt;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
    #[error("the stored export job is malformed: {0}")]
    Corrupt(String),
    /// The job moved past the step this run holds (another run claimed it): the run stops.
    #[error("another run holds the export's step")]
    LostClaim,
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> JobStoreError {
    move |e| JobStoreError::Aws { operation, message: super::error_code(&e) }
}

/// The sparse global secondary index of unfinished jobs by `sweep_at`.
pub const SWEEP_INDEX: &str = "by-sweep-at";
/// The value of `sweep` while a job is unfinished.
const OPEN: &str = "open";

/// A stored job: its JSON document and the run bookkeeping beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    pub job: String,
    pub step: u64,
    pub lease_until: Option<i64>,
    pub expires_at: i64,
    /// How often the sweep sent this step's message again.
    pub resends: u32,
}

/// An unfinished job whose `sweep_at` has passed, as the sweep index shows it (eventually
/// consistent: [`ExportJobStore::mark_resent`] checks it against the item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StalledJob {
    pub tenant: Uuid,
    pub id: Uuid,
    pub step: u64,
    pub sweep_at: i64,
}

/// What a write does to the run's lease and the job's place in the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The run goes on under its lease (progress within its step).
    Keep,
    /// The run hands on to the next step: its lease ends, and the sweep sends the step's message
    /// again if no run has claimed it by `sweep_at`.
    HandOn { sweep_at: i64 },
    /// The job is finished (done or failed): out of the sweep index.
    Finish,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This run holds the job until the lease ends.
    Claimed(StoredJob),
    /// Another run holds the lease of this step.
    Busy,
    /// The job moved past this step, finished, or is gone: the message is stale.
    Stale,
}

#[derive(Debug, Clone)]
pub struct ExportJobStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(tenant: Uuid, id: Uuid) -> HashMap<String, AttributeValue> {
    HashMap::from([("tenant_id".to_owned(), s(tenant.to_string())), ("export_id".to_owned(), s(id.to_string()))])
}

fn stored_from_item(item: &HashMap<String, AttributeValue>) -> Result<StoredJob, JobStoreError> {
    let num = |name: &str| -> Result<Option<i64>, JobStoreError> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| JobStoreError::Corrupt(name.into())),
            Some(_) => Err(JobStoreError::Corrupt(name.into())),
        }
    };
    let job = match item.get("job") {
        Some(AttributeValue::S(j)) => j.clone(),
        _ => return Err(JobStoreError::Corrupt("job".into())),
    };
    Ok(StoredJob {
        job,
        step: u64::try_from(num("step")?.unwrap_or(0)).map_err(|_| JobStoreError::Corrupt("step".into()))?,
        lease_until: num("lease_until")?,
        expires_at: num("expires_at")?.unwrap_or(i64::MAX),
        resends: u32::try_from(num("resends")?.unwrap_or(0)).map_err(|_| JobStoreError::Corrupt("resends".into()))?,
    })
}

impl ExportJobStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        ExportJobStore { client: aws_sdk_dynamodb::Client::new(config), table: table.into() }
    }

    /// Stores a new job at step 0, for the sweep to send again at `sweep_at` if no run has
    /// claimed it by then; fails if the id exists.
    pub async fn create(
        &self,
        tenant: Uuid,
        id: Uuid,
        job: &str,
        expires_at: i64,
        sweep_at: i64,
    ) -> Result<(), JobStoreError> {
        let mut item = key(tenant, id);
        item.insert("job".into(), s(job));
        item.insert("step".into(), n(0));
        item.insert("expires_at".into(), n(expires_at));
        item.insert("sweep".into(), s(OPEN));
        item.insert("sweep_at".into(), n(sweep_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(export_id)")
            .send()
            .await
            .map_err(aws("DynamoDB PutItem (export job)"))?;
        Ok(())
    }

    /// The job, if it exists and has not expired.
    pub async fn get(&self, tenant: Uuid, id: Uuid, now: i64) -> Result<Option<StoredJob>, JobStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("DynamoDB GetItem (export job)"))?;
        match out.item() {
            Some(item) => Ok(Some(stored_from_item(item)?).filter(|j| j.expires_at > now)),
            None => Ok(None),
        }
    }

    /// The tenant's jobs that have not expired, newest first, at most `limit`.
    pub async fn list(&self, tenant: Uuid, limit: i32, now: i64) -> Result<Vec<StoredJob>, JobStoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("tenant_id = :t")
            .expression_attribute_values(":t", s(tenant.to_string()))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(aws("DynamoDB Query (export jobs)"))?;
        let jobs = out.items().iter().map(stored_from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(jobs.into_iter().filter(|j| j.expires_at > now).collect())
    }

    /// Takes the lease of `step` until `lease_until`, and moves the sweep's look at the job to
    /// `sweep_at` (after the lease). Succeeds only while the job is at `step` and no other run
    /// holds an unexpired lease.
    pub async fn claim(
        &self,
        tenant: Uuid,
        id: Uuid,
        step: u64,
        now: i64,
        lease_until: i64,
        sweep_at: i64,
    ) -> Result<Claim, JobStoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .update_expression("SET lease_until = :lease, sweep_at = :sweep_at")
            .expression_attribute_values(":sweep_at", n(sweep_at))
            .condition_expression(
                "attribute_exists(export_id) AND step = :step AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes().ok_or_else(|| JobStoreError::Corrupt("claim returned nothing".into()))?;
                Ok(Claim::Claimed(stored_from_item(item)?))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                match self.get(tenant, id, now).await? {
                    Some(current) if current.step == step => Ok(Claim::Busy),
                    _ => Ok(Claim::Stale),
                }
            }
            Err(e) => Err(aws("DynamoDB UpdateItem (claim export)")(e)),
        }
    }

    /// Gives up the lease of `step` and leaves the job as it is, for the queue's redelivery to
    /// retry; the sweep looks at it again at `sweep_at` (after that redelivery is due).
    pub async fn release(&self, tenant: Uuid, id: Uuid, step: u64, sweep_at: i64) -> Result<(), JobStoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .update_expression("SET sweep_at = :sweep_at REMOVE lease_until")
            .condition_expression("attribute_exists(export_id) AND step = :step")
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":sweep_at", n(sweep_at))
            .send()
            .await
            .map_err(aws("DynamoDB UpdateItem (release export)"))?;
        Ok(())
    }

    /// Writes `job` for the run holding `step` and moves the job to `next_step` (the same step
    /// for an update that keeps the lease); `after` says what becomes of the lease and the
    /// job's place in the sweep.
    pub async fn advance(
        &self,
        tenant: Uuid,
        id: Uuid,
        step: u64,
        next_step: u64,
        job: &str,
        after: After,
    ) -> Result<(), JobStoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .condition_expression("attribute_exists(export_id) AND step = :step")
            .expression_attribute_values(":job", s(job))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":next", n(next_step));
        update = match after {
            After::Keep => update.update_expression("SET job = :job, step = :next"),
            After::HandOn { sweep_at } => update
                .update_expression("SET job = :job, step = :next, sweep_at = :sweep_at REMOVE lease_until, resends")
                .expression_attribute_values(":sweep_at", n(sweep_at)),
            After::Finish => {
                update.update_expression("SET job = :job, step = :next REMOVE lease_until, sweep, sweep_at, resends")
            }
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(JobStoreError::LostClaim)
            }
            Err(e) => Err(aws("DynamoDB UpdateItem (export job)")(e)),
        }
    }

    /// Unfinished jobs whose `sweep_at` is at or before `now`, oldest first, at most `limit`:
    /// one query of the sparse sweep index, across tenants.
    pub async fn stalled(&self, now: i64, limit: i32) -> Result<Vec<StalledJob>, JobStoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SWEEP_INDEX)
            .key_condition_expression("sweep = :open AND sweep_at <= :now")
            .expression_attribute_values(":open", s(OPEN))
            .expression_attribute_values(":now", n(now))
            .limit(limit)
            .send()
            .await
            .map_err(aws("DynamoDB Query (stalled export jobs)"))?;
        out.items()
            .iter()
            .map(|item| {
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(v)) => v.parse::<Uuid>().map_err(|_| JobStoreError::Corrupt(name.into())),
                    _ => Err(JobStoreError::Corrupt(name.into())),
                };
                let num = |name: &str| match item.get(name) {
                    Some(AttributeValue::N(v)) => v.parse::<i64>().map_err(|_| JobStoreError::Corrupt(name.into())),
                    _ => Err(JobStoreError::Corrupt(name.into())),
                };
                Ok(StalledJob {
                    tenant: text("tenant_id")?,
                    id: text("export_id")?,
                    step: u64::try_from(num("step")?).map_err(|_| JobStoreError::Corrupt("step".into()))?,
                    sweep_at: num("sweep_at")?,
                })
            })
            .collect()
    }

    /// Records that the sweep sends `job`'s step again, and moves its next look to `next_sweep_at`.
    /// Only one sweep wins for a given `sweep_at`, and only while the job is still at that step
    /// with no unexpired lease; `false` means the job moved on meanwhile (or another sweep won),
    /// and nothing is to be sent.
    pub async fn mark_resent(&self, job: &StalledJob, now: i64, next_sweep_at: i64) -> Result<bool, JobStoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job.tenant, job.id)))
            .update_expression("SET sweep_at = :next ADD resends :one")
            .condition_expression(
                "sweep = :open AND step = :step AND sweep_at = :seen \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_values(":next", n(next_sweep_at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":open", s(OPEN))
            .expression_attribute_values(":step", n(job.step))
            .expression_attribute_values(":seen", n(job.sweep_at))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(aws("DynamoDB UpdateItem (resend export)")(e)),
        }
    }
}
