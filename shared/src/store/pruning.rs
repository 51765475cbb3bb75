//! Pruning old content partitions (migration V8), on a connection of the maintenance role: which
//! partitions are due, who has rows in them, and the drop itself, which the database allows only
//! for a partition every tenant of which was archived and none of which is under legal hold.

use super::checkpoints::StoredCheckpoint;
use super::{seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// A monthly `events` partition whose range ended before the retention cut-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePartition {
    pub name: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
}

/// A tenant's rows in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTenant {
    pub tenant: Uuid,
    pub first_seq: u64,
    pub last_seq: u64,
    pub rows: u64,
    /// The tenant is under a legal hold: the partition is kept.
    pub held: bool,
}

impl Store {
    /// Partitions whose whole month ended at or before `cutoff`, oldest first.
    pub async fn partitions_due(&mut self, cutoff: DateTime<Utc>) -> Result<Vec<DuePartition>, StoreError> {
        self.recover().await?;
        let rows =
            self.client.query("SELECT name, range_from, range_to FROM audit_partitions_due($1)", &[&cutoff]).await?;
        Ok(rows.iter().map(|r| DuePartition { name: r.get(0), range_from: r.get(1), range_to: r.get(2) }).collect())
    }

    /// The tenants with rows in partition `name`.
    pub async fn partition_tenants(&mut self, name: &str) -> Result<Vec<PartitionTenant>, StoreError> {
        self.recover().await?;
        let rows = self.client.query("SELECT * FROM audit_partition_tenants($1)", &[&name]).await?;
        rows.iter()
            .map(|r| {
                Ok(PartitionTenant {
                    tenant: r.get(0),
                    first_seq: seq_col(r.get(1))?,
                    last_seq: seq_col(r.get(2))?,
                    rows: seq_col(r.get(3))?,
                    held: r.get(4),
                })
            })
            .collect()
    }

    /// The earliest signed checkpoint whose tree contains `seq`, if one was signed yet.
    pub async fn covering_checkpoint(
        &mut self,
        tenant: Uuid,
        seq: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let row = tx
            .query_opt(
                "SELECT tree_size FROM checkpoints WHERE tenant_id = $1 AND tree_size > $2 ORDER BY tree_size LIMIT 1",
                &[&tenant, &to_i64(seq)?],
            )
            .await?;
        tx.commit().await?;
        match row {
            Some(r) => Ok(Some(self.checkpoint_at(tenant, seq_col(r.get(0))?).await?)),
            None => Ok(None),
        }
    }

    /// Drops partition `name` (due by `cutoff`), recording `archives` (one object per tenant with
    /// rows in it, each with at least `tenant_id`). The database refuses unless every such tenant
    /// is listed and none is under legal hold.
    pub async fn drop_event_partition(
        &mut self,
        name: &str,
        cutoff: DateTime<Utc>,
        archives: &Value,
    ) -> Result<(), StoreError> {
        self.recover().await?;
        self.client.execute("SELECT audit_drop_event_partition($1, $2, $3)", &[&name, &cutoff, archives]).await?;
        Ok(())
    }
}
