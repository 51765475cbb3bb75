//! Partition maintenance: `events` is partitioned by month of receipt, and an append into a month
//! without a partition fails. A daily schedule keeps the coming months created (the migrations
//! create the first ones; creating is idempotent, so a missed day costs nothing) and, on the
//! maintenance role's connection, archives and drops the months older than the retention
//! (`service::pruning`).

use crate::aws::archives::ArchiveStore;
use crate::metrics::{self, Unit};
use crate::service::pruning::{run_scheduled_pruning, PruneError, PruneRun};
use crate::store::pool::StorePool;

/// What a run did, as the partitions function returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionRun {
    pub created: i32,
    #[serde(flatten)]
    pub pruned: PruneRun,
}

/// One scheduled run. Emits `PartitionsCreated` (and `PartitionsPruned`); a failure is an error
/// the function reports (and the Lambda `Errors` metric counts), since months without a partition
/// stop ingest. Creating comes first, so a pruning failure never keeps next month's partition
/// from being made.
pub async fn run_partition_maintenance(
    pool: &StorePool,
    maintenance: &StorePool,
    archives: &ArchiveStore,
    retention_months: u32,
) -> Result<PartitionRun, PruneError> {
    let created = pool.get().await?.ensure_partitions().await?;
    if created > 0 {
        tracing::info!(created, "created event partitions");
    }
    metrics::emit(&[("PartitionsCreated", f64::from(created), Unit::Count)], &[("Function", "partitions")]);
    let pruned = run_scheduled_pruning(maintenance, archives, retention_months).await?;
    Ok(PartitionRun { created, pruned })
}
