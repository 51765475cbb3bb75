//! Partition maintenance: `events` is partitioned by month of receipt, and an append into a month
//! without a partition fails. A daily schedule keeps the coming months created (the migrations
//! create the first ones); creating is idempotent, so a missed day costs nothing.

use crate::metrics::{self, Unit};
use crate::store::pool::StorePool;
use crate::store::StoreError;

/// What a run did, as the partitions function returns it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionRun {
    pub created: i32,
}

/// One scheduled run. Emits `PartitionsCreated`; a failure is an error the function reports
/// (and the Lambda `Errors` metric counts), since months without a partition stop ingest.
pub async fn run_partition_maintenance(pool: &StorePool) -> Result<PartitionRun, StoreError> {
    let created = pool.get().await?.ensure_partitions().await?;
    if created > 0 {
        tracing::info!(created, "created event partitions");
    }
    metrics::emit(&[("PartitionsCreated", f64::from(created), Unit::Count)], &[("Function", "partitions")]);
    Ok(PartitionRun { created })
}
