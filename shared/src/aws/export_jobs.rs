//! Export jobs in DynamoDB (table `audit-log-exports`): partition key `tenant_id`, sort key
//! `export_id` (a UUIDv7, so a tenant's jobs sort by creation time). A tenant's job is only ever
//! addressed with the tenant's id as partition key, so one tenant cannot read, list or change
//! another's jobs whatever id it names.
//!
//! Item: `tenant_id` S, `export_id` S, `job` S (the job as JSON, see `service::export`), `step` N
//! (the run the job is at; a run claims its step and hands on the next), `lease_until` N (unix
//! seconds while a run holds the job), `expires_at` N (unix seconds; the table's TTL attribute,
//! also checked on read because TTL deletes lazily).

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
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> JobStoreError {
    move |e| JobStoreError::Aws { operation, message: super::error_code(&e) }
}

/// A stored job: its JSON document and the run bookkeeping beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    pub job: String,
    pub step: u64,
    pub lease_until: Option<i64>,
    pub expires_at: i64,
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
    })
}

impl ExportJobStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        ExportJobStore { client: aws_sdk_dynamodb::Client::new(config), table: table.into() }
    }

    /// Stores a new job at step 0; fails if the id exists.
    pub async fn create(&self, tenant: Uuid, id: Uuid, job: &str, expires_at: i64) -> Result<(), JobStoreError> {
        let mut item = key(tenant, id);
        item.insert("job".into(), s(job));
        item.insert("step".into(), n(0));
        item.insert("expires_at".into(), n(expires_at));
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

    /// Takes the lease of `step` until `lease_until`. Succeeds only while the job is at `step`
    /// and no other run holds an unexpired lease.
    pub async fn claim(
        &self,
        tenant: Uuid,
        id: Uuid,
        step: u64,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, JobStoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .update_expression("SET lease_until = :lease")
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

    /// Gives up the lease of `step` and leaves the job as it is.
    pub async fn release(&self, tenant: Uuid, id: Uuid, step: u64) -> Result<(), JobStoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .update_expression("REMOVE lease_until")
            .condition_expression("attribute_exists(export_id) AND step = :step")
            .expression_attribute_values(":step", n(step))
            .send()
            .await
            .map_err(aws("DynamoDB UpdateItem (release export)"))?;
        Ok(())
    }

    /// Writes `job` for the run holding `step` and moves the job to `next_step` (the same step
    /// for an update that keeps the lease), releasing the lease when `release` is set.
    pub async fn advance(
        &self,
        tenant: Uuid,
        id: Uuid,
        step: u64,
        next_step: u64,
        job: &str,
        release: bool,
    ) -> Result<(), JobStoreError> {
        let update =
            if release { "SET job = :job, step = :next REMOVE lease_until" } else { "SET job = :job, step = :next" };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, id)))
            .update_expression(update)
            .condition_expression("attribute_exists(export_id) AND step = :step")
            .expression_attribute_values(":job", s(job))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":next", n(next_step))
            .send()
            .await
            .map_err(aws("DynamoDB UpdateItem (export job)"))?;
        Ok(())
    }
}
