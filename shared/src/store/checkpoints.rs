//! Signed checkpoints: stored as signed, read back by size or latest, and the list of tenants
//! whose trees grew past their latest checkpoint.

use super::{hash_col, seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::checkpoint::SignedCheckpoint;
use crate::chain::hash::Hash;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// A checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: Hash,
    /// The signed note, byte for byte as signed.
    pub note: String,
    pub key_name: String,
    pub key_id: [u8; 4],
    pub signed_at: DateTime<Utc>,
}

const COLUMNS: &str = "tree_size, root_hash, note, key_name, key_id, signed_at FROM checkpoints";

fn from_row(row: &tokio_postgres::Row) -> Result<StoredCheckpoint, StoreError> {
    let key_id: &[u8] = row.get(4);
    Ok(StoredCheckpoint {
        tree_size: seq_col(row.get(0))?,
        root: hash_col(row.get::<_, &[u8]>(1))?,
        note: row.get(2),
        key_name: row.get(3),
        key_id: key_id.try_into().map_err(|_| StoreError::Corrupt("a checkpoint key id is not 4 bytes".into()))?,
        signed_at: row.get(5),
    })
}

impl Store {
    /// Runs one read-only query acting for `tenant` and returns at most one row.
    async fn tenant_query_opt(
        &mut self,
        tenant: Uuid,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let (_, row) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query_opt(sql, params))?;
        tx.commit().await?;
        Ok(row)
    }

    /// The tenant's checkpoint with the largest tree size, if any was signed.
    pub async fn latest_checkpoint(&mut self, tenant: Uuid) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!("SELECT {COLUMNS} WHERE tenant_id = $1 ORDER BY tree_size DESC LIMIT 1");
        self.tenant_query_opt(tenant, &sql, &[&tenant]).await?.as_ref().map(from_row).transpose()
    }

    /// The checkpoint signed at exactly `tree_size`.
    pub async fn checkpoint_at(&mut self, tenant: Uuid, tree_size: u64) -> Result<StoredCheckpoint, StoreError> {
        let sql = format!("SELECT {COLUMNS} WHERE tenant_id = $1 AND tree_size = $2");
        let size = to_i64(tree_size)?;
        from_row(&self.tenant_query_opt(tenant, &sql, &[&tenant, &size]).await?.ok_or(StoreError::NotFound)?)
    }

    /// Stores a signed checkpoint. Returns false when one for that size exists already (another
    /// run signed it first); checkpoints are never replaced.
    pub async fn insert_checkpoint(&mut self, tenant: Uuid, signed: &SignedCheckpoint) -> Result<bool, StoreError> {
        self.recover().await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let size = to_i64(signed.checkpoint.size)?;
        let inserted = tx
            .execute(
                "INSERT INTO checkpoints (tenant_id, tree_size, root_hash, note, key_name, key_id)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, tree_size) DO NOTHING",
                &[
                    &tenant,
                    &size,
                    &signed.checkpoint.root.0.as_slice(),
                    &signed.note,
                    &signed.key_name,
                    &signed.key_id.as_slice(),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Tenants whose tree grew past their latest checkpoint, least recently appended first.
    pub async fn tenants_to_checkpoint(&mut self, max_tenants: u32) -> Result<Vec<Uuid>, StoreError> {
        self.recover().await?;
        let limit = i32::try_from(max_tenants).unwrap_or(i32::MAX);
        let rows = self.client.query("SELECT tenant_id FROM audit_tenants_to_checkpoint($1)", &[&limit]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl Store {
    /// Checkpoints signed since `since` whose head is missing from the service-wide log (the
    /// checkpointer stopped between storing and recording them), oldest first.
    pub async fn heads_not_logged(
        &mut self,
        since: DateTime<Utc>,
        max_heads: u32,
    ) -> Result<Vec<(Uuid, u64)>, StoreError> {
        self.recover().await?;
        let limit = i32::try_from(max_heads).unwrap_or(i32::MAX);
        let rows = self
            .client
            .query("SELECT tenant_id, tree_size FROM audit_heads_not_logged($1, $2)", &[&since, &limit])
            .await?;
        rows.iter().map(|r| Ok((r.get(0), seq_col(r.get(1))?))).collect()
    }
}
