//! Pruning: monthly content partitions older than the retention are archived to S3, per tenant
//! with rows in them (JSONL.gz plus a manifest with the first and last seq, the chain hashes at
//! both ends and the signed checkpoint that covers them), and then dropped. The hash skeleton
//! stays, so verification and proofs keep passing over pruned entries, which read as erased; each
//! archive verifies offline against the chain (`chain::archive::verify_archive`).
//!
//! A partition with rows of a tenant under legal hold is kept. The database itself refuses to drop
//! a partition unless every tenant with rows in it is listed as archived.

use crate::aws::archives::{ArchiveStore, ArchiveStoreError};
use crate::chain::archive::ArchiveLine;
use crate::chain::event::format_timestamp;
use crate::chain::hash::sha256;
use crate::metrics::{self, Unit};
use crate::store::pool::StorePool;
use crate::store::pruning::{DuePartition, PartitionTenant};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use std::io::Write;

/// Why a pruning run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveStoreError),
    #[error("writing an archive: {0}")]
    Encode(#[from] std::io::Error),
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneRun {
    /// Partitions archived and dropped.
    pub dropped: u32,
    /// Partitions kept for a tenant's legal hold.
    pub held: u32,
    /// Entries archived.
    pub archived: u64,
}

/// The retention cut-off: the start of the month `retention_months` before `now`'s month, so
/// partitions (whole months) older than the retention are due.
pub fn retention_cutoff(now: DateTime<Utc>, retention_months: u32) -> DateTime<Utc> {
    let months = now.year() * 12 + now.month0() as i32 - retention_months as i32;
    Utc.with_ymd_and_hms(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1, 0, 0, 0).single().unwrap_or(now)
}

/// Archives one tenant's rows of a partition and returns the archive's entry for the drop record.
async fn archive_tenant(
    store: &mut Store,
    archives: &ArchiveStore,
    partition: &DuePartition,
    t: &PartitionTenant,
) -> Result<Value, PruneError> {
    let chain_hash_before = store.chain_hash_before(t.tenant, t.first_seq).await?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut last_chain_hash = chain_hash_before;
    let mut count = 0u64;
    let scanned = store
        .scan_entries(t.tenant, t.first_seq, t.last_seq + 1, |e| {
            let line = ArchiveLine::new(&e.entry, e.leaf_hash, e.chain_hash, e.content.as_deref(), e.salt.as_deref());
            serde_json::to_writer(&mut gz, &line).map_err(std::io::Error::from)?;
            gz.write_all(b"\n")?;
            last_chain_hash = e.chain_hash;
            count += 1;
            Ok::<(), std::io::Error>(())
        })
        .await?;
    scanned?;
    let data = gz.finish()?;
    let checkpoint = store.covering_checkpoint(t.tenant, t.last_seq).await?;
    let (data_key, manifest_key) = ArchiveStore::keys(t.tenant, &partition.name);
    let manifest = json!({
        "format": "audit-log-archive/v1",
        "tenant_id": t.tenant,
        "partition": partition.name,
        "range_from": format_timestamp(&partition.range_from),
        "range_to": format_timestamp(&partition.range_to),
        "first_seq": t.first_seq,
        "last_seq": t.last_seq,
        "count": count,
        "chain_hash_before": chain_hash_before,
        "last_chain_hash": last_chain_hash,
        "object": data_key,
        "sha256": sha256(&[&data]),
        "checkpoint": checkpoint.map(|c| json!({ "tree_size": c.tree_size, "root": c.root, "note": c.note })),
    });
    archives.put(&data_key, data, "application/gzip").await?;
    archives
        .put(&manifest_key, serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::from)?, "application/json")
        .await?;
    Ok(json!({ "tenant_id": t.tenant, "object": data_key, "manifest": manifest_key, "count": count }))
}

/// Archives and drops every partition that ended at or before `cutoff`, unless held. `store` is a
/// connection of the maintenance role.
pub async fn prune(store: &mut Store, archives: &ArchiveStore, cutoff: DateTime<Utc>) -> Result<PruneRun, PruneError> {
    let mut run = PruneRun::default();
    for partition in store.partitions_due(cutoff).await? {
        let tenants = store.partition_tenants(&partition.name).await?;
        if tenants.iter().any(|t| t.held) {
            tracing::info!(partition = %partition.name, "partition kept: a tenant with rows in it is under legal hold");
            run.held += 1;
            continue;
        }
        let mut archived = Vec::with_capacity(tenants.len());
        for t in &tenants {
            archived.push(archive_tenant(store, archives, &partition, t).await?);
            run.archived += t.rows;
        }
        store.drop_event_partition(&partition.name, cutoff, &Value::Array(archived)).await?;
        tracing::info!(partition = %partition.name, tenants = tenants.len(), "partition archived and dropped");
        run.dropped += 1;
    }
    Ok(run)
}

/// One scheduled run with the configured retention; emits `PartitionsPruned`.
pub async fn run_scheduled_pruning(
    pool: &StorePool,
    archives: &ArchiveStore,
    retention_months: u32,
) -> Result<PruneRun, PruneError> {
    let mut store = pool.get().await?;
    let run = prune(&mut store, archives, retention_cutoff(Utc::now(), retention_months)).await?;
    metrics::emit(&[("PartitionsPruned", f64::from(run.dropped), Unit::Count)], &[("Function", "partitions")]);
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_start_of_the_month_retention_months_back() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap();
        assert_eq!(retention_cutoff(now, 24), Utc.with_ymd_and_hms(2024, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(retention_cutoff(now, 11), Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(retention_cutoff(now, 1), Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap());
    }
}
