//! Reads for exports: the rows of a filter in seq order through a server-side cursor (a portal
//! fetched a chunk at a time, so memory stays bounded whatever the export's size), and the
//! hashes of the Merkle nodes that complete the tree between those rows.

use super::query::filter_conditions;
use super::read::{stored_from_row, StoredEntry};
use super::{hash_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::hash::Hash;
use crate::chain::merkle::NodeId;
use crate::service::query::EventFilter;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Portal, Transaction};
use uuid::Uuid;

/// An open scan of an export's rows. Holds a read-only transaction until dropped or finished.
pub struct ExportScan<'a> {
    tx: Transaction<'a>,
    portal: Portal,
    tenant: Uuid,
    chunk: i32,
    done: bool,
}

const NODE_HASHES: &str = "SELECT n.level, n.idx, n.hash
       FROM unnest($2::smallint[], $3::bigint[]) AS w(l, i)
       JOIN merkle_nodes n ON n.tenant_id = $1 AND n.level = w.l AND n.idx = w.i
     UNION ALL
     SELECT 0::smallint, c.seq, c.leaf_hash
       FROM unnest($4::bigint[]) AS w(s)
       JOIN chain_entries c ON c.tenant_id = $1 AND c.seq = w.s";

impl Store {
    /// Opens a scan of the tenant's entries matching `filter` with `after < seq < end` (`after`
    /// None: from seq 0), in seq order, `chunk` rows per fetch.
    pub async fn export_scan(
        &mut self,
        tenant: Uuid,
        filter: &EventFilter,
        after: Option<u64>,
        end: u64,
        chunk: i32,
    ) -> Result<ExportScan<'_>, StoreError> {
        self.recover().await?;
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tenant)];
        let mut conditions = vec!["e.tenant_id = $1".to_owned()];
        let with = filter_conditions(filter, &mut params, &mut conditions);
        if let Some(after) = after {
            params.push(Box::new(to_i64(after)?));
            conditions.push(format!("e.seq > ${}", params.len()));
        }
        params.push(Box::new(to_i64(end)?));
        conditions.push(format!("e.seq < ${}", params.len()));
        let sql = format!(
            "{with}
             SELECT c.tenant_id, c.seq, c.event_id, c.received_at, c.content_digest, c.leaf_hash, c.chain_hash, e.content, e.salt
               FROM events e
               JOIN chain_entries c ON c.tenant_id = e.tenant_id AND c.seq = e.seq
              WHERE {}
              ORDER BY e.seq",
            conditions.join(" AND ")
        );
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        // A long ordered scan gains nothing from JIT compilation (see `scan_entries`).
        tx.batch_execute("SET LOCAL jit = off").await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let statement = tx.prepare(&sql).await?;
        let portal = tx.bind(&statement, &refs).await?;
        Ok(ExportScan { tx, portal, tenant, chunk: chunk.max(1), done: false })
    }
}

impl std::fmt::Debug for ExportScan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportScan").field("tenant", &self.tenant).field("done", &self.done).finish_non_exhaustive()
    }
}

impl ExportScan<'_> {
    /// The next rows; empty once the scan is exhausted.
    pub async fn next_chunk(&mut self) -> Result<Vec<StoredEntry>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let rows = self.tx.query_portal(&self.portal, self.chunk).await?;
        if rows.len() < self.chunk as usize {
            self.done = true;
        }
        rows.iter().map(stored_from_row).collect()
    }

    /// The hashes of `nodes` (level 0: leaf hashes), in the order given, read in the scan's
    /// transaction. Every node must exist: they are complete subtrees of a signed tree.
    pub async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        // Only every eighth level is stored; the others are derived from the level below.
        let sources = crate::chain::merkle::stored_sources(nodes);
        let (leaves, inner): (Vec<&NodeId>, Vec<&NodeId>) = sources.iter().partition(|n| n.level == 0);
        let levels: Vec<i16> = inner.iter().map(|n| i16::from(n.level)).collect();
        let indexes: Vec<i64> = inner.iter().map(|n| to_i64(n.index)).collect::<Result<_, _>>()?;
        let seqs: Vec<i64> = leaves.iter().map(|n| to_i64(n.index)).collect::<Result<_, _>>()?;
        let rows = self.tx.query(NODE_HASHES, &[&self.tenant, &levels, &indexes, &seqs]).await?;
        let mut stored = HashMap::with_capacity(rows.len());
        for row in &rows {
            let level = u8::try_from(row.get::<_, i16>(0)).map_err(|_| StoreError::Corrupt("bad node level".into()))?;
            let index = super::seq_col(row.get(1))?;
            stored.insert(NodeId { level, index }, hash_col(row.get::<_, &[u8]>(2))?);
        }
        let found = crate::chain::merkle::derive_nodes(nodes, &stored);
        nodes
            .iter()
            .map(|n| found.get(n).copied().ok_or_else(|| StoreError::Corrupt(format!("Merkle node {n:?} is missing"))))
            .collect()
    }

    /// Ends the scan's transaction.
    pub async fn finish(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
