//! Reads of stored entries: one by id, and ordered range scans for verification.

use super::{hash_col, seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::entry::Entry;
use crate::chain::hash::Hash;
use futures::{pin_mut, TryStreamExt};
use std::collections::HashMap;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// A stored entry with its hashes and (unless erased) its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub entry: Entry,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
    /// Canonical content JSON; `None` once erased (or when its partition was pruned).
    pub content: Option<String>,
    pub salt: Option<Vec<u8>>,
}

impl StoredEntry {
    /// The entry as an export row (`chain::export`), borrowed.
    pub fn export_row(&self) -> crate::chain::export::ExportRow<'_> {
        crate::chain::export::ExportRow {
            entry: &self.entry,
            leaf_hash: &self.leaf_hash,
            chain_hash: &self.chain_hash,
            content: self.content.as_deref(),
            salt: self.salt.as_deref(),
        }
    }
}

const ENTRY_COLUMNS: &str =
    "c.tenant_id, c.seq, c.event_id, c.received_at, c.content_digest, c.leaf_hash, c.chain_hash, e.content, e.salt
     FROM chain_entries c
     LEFT JOIN events e ON e.tenant_id = c.tenant_id AND e.seq = c.seq AND e.received_at = c.received_at";

pub(super) fn stored_from_row(row: &tokio_postgres::Row) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        entry: Entry {
            tenant_id: row.get(0),
            seq: seq_col(row.get(1))?,
            id: row.get(2),
            received_at: row.get(3),
            content_digest: hash_col(row.get::<_, &[u8]>(4))?,
        },
        leaf_hash: hash_col(row.get::<_, &[u8]>(5))?,
        chain_hash: hash_col(row.get::<_, &[u8]>(6))?,
        content: row.get(7),
        salt: row.get(8),
    })
}

impl Store {
    /// The entry with event id `id`, if it belongs to `tenant` (another tenant's id is simply
    /// not found: row-level security hides it).
    pub async fn get_entry(&mut self, tenant: Uuid, id: Uuid) -> Result<StoredEntry, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} WHERE c.tenant_id = $1 AND c.event_id = $2");
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &id];
        let (_, row) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query_opt(&sql, &params))?;
        tx.commit().await?;
        stored_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    /// The seqs of the tenant's events with these ids, in one query; ids of no event of the
    /// tenant (another tenant's included: row-level security hides them) are absent.
    pub async fn seqs_of_events(&mut self, tenant: Uuid, ids: &[Uuid]) -> Result<HashMap<Uuid, u64>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let sql = "SELECT event_id, seq FROM chain_entries WHERE tenant_id = $1 AND event_id = ANY($2)";
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &ids];
        let (_, rows) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query(sql, &params))?;
        tx.commit().await?;
        rows.iter().map(|r| Ok((r.get::<_, Uuid>(0), seq_col(r.get(1))?))).collect()
    }

    /// The tenant's entry at `seq`.
    pub async fn entry_at(&mut self, tenant: Uuid, seq: u64) -> Result<StoredEntry, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} WHERE c.tenant_id = $1 AND c.seq = $2");
        let tenant_text = tenant_param(tenant);
        let seq = to_i64(seq)?;
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &seq];
        let (_, row) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query_opt(&sql, &params))?;
        tx.commit().await?;
        stored_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    /// The seq of the first entry appended under an idempotency key, if the key was used.
    pub async fn idempotent_seq(&mut self, tenant: Uuid, key: &str) -> Result<Option<u64>, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &key];
        let sql = "SELECT first_seq FROM idempotency_keys WHERE tenant_id = $1 AND key = $2";
        let (_, row) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query_opt(sql, &params))?;
        tx.commit().await?;
        row.map(|r| seq_col(r.get(0))).transpose()
    }

    /// The tenant's entries with seq in any of `ranges` (`[first, end)` each), in seq order.
    /// One statement whatever the number of ranges (the indexer reads a batch of messages).
    pub async fn entries_in_ranges(
        &mut self,
        tenant: Uuid,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let firsts: Vec<i64> = ranges.iter().map(|r| to_i64(r.0)).collect::<Result<_, _>>()?;
        let ends: Vec<i64> = ranges.iter().map(|r| to_i64(r.1)).collect::<Result<_, _>>()?;
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}
               JOIN (SELECT DISTINCT s FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi), generate_series(lo, hi - 1) AS s) wanted
                 ON c.seq = wanted.s
              WHERE c.tenant_id = $1
              ORDER BY c.seq"
        );
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 3] = [&tenant, &firsts, &ends];
        let (_, rows) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query(&sql, &params))?;
        tx.commit().await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// The tenant's entries with these seqs, in the order given; seqs that do not exist are
    /// left out.
    pub async fn entries_by_seqs(&mut self, tenant: Uuid, seqs: &[u64]) -> Result<Vec<StoredEntry>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = seqs.iter().map(|s| to_i64(*s)).collect::<Result<_, _>>()?;
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}
               JOIN unnest($2::bigint[]) WITH ORDINALITY AS w(s, n) ON c.seq = w.s
              WHERE c.tenant_id = $1
              ORDER BY w.n"
        );
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &wanted];
        let (_, rows) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query(&sql, &params))?;
        tx.commit().await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// Of the tenant's entries with these seqs, those that hold no content now (erased, or their
    /// partition pruned), in seq order. The indexer asks after writing content documents, to catch
    /// an erasure that committed between its read and its write.
    pub async fn erased_among(&mut self, tenant: Uuid, seqs: &[u64]) -> Result<Vec<StoredEntry>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = seqs.iter().map(|s| to_i64(*s)).collect::<Result<_, _>>()?;
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}
               JOIN unnest($2::bigint[]) AS w(s) ON c.seq = w.s
              WHERE c.tenant_id = $1 AND e.content IS NULL
              ORDER BY c.seq"
        );
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &wanted];
        let (_, rows) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query(&sql, &params))?;
        tx.commit().await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// Streams entries with `from <= seq < to` in seq order into `visit`, without holding the
    /// range in memory. Stops at the first error `visit` returns.
    pub async fn scan_entries<E>(
        &mut self,
        tenant: Uuid,
        from: u64,
        to: u64,
        mut visit: impl FnMut(StoredEntry) -> Result<(), E>,
    ) -> Result<Result<(), E>, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        // A long ordered scan gains nothing from JIT compilation (1.5 s of it measured over five
        // million rows, about a fifth of the scan), which the planner's cost estimate triggers.
        tx.batch_execute("SET LOCAL jit = off").await?;
        let sql =
            format!("SELECT {ENTRY_COLUMNS} WHERE c.tenant_id = $1 AND c.seq >= $2 AND c.seq < $3 ORDER BY c.seq");
        let (from_i, to_i) = (to_i64(from)?, to_i64(to)?);
        let params: [&(dyn ToSql + Sync); 3] = [&tenant, &from_i, &to_i];
        let rows = tx.query_raw(&sql, params).await?;
        pin_mut!(rows);
        while let Some(row) = rows.try_next().await? {
            if let Err(e) = visit(stored_from_row(&row)?) {
                return Ok(Err(e));
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The chain hash just before `seq` (GENESIS for seq 0).
    pub async fn chain_hash_before(&mut self, tenant: Uuid, seq: u64) -> Result<Hash, StoreError> {
        if seq == 0 {
            return Ok(crate::chain::hash::GENESIS);
        }
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let tenant_text = tenant_param(tenant);
        let prev = to_i64(seq - 1)?;
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let params: [&(dyn ToSql + Sync); 2] = [&tenant, &prev];
        let (_, row) = futures::try_join!(
            tx.execute(SET_TENANT, &set_params),
            tx.query_opt("SELECT chain_hash FROM chain_entries WHERE tenant_id = $1 AND seq = $2", &params)
        )?;
        tx.commit().await?;
        hash_col(row.ok_or(StoreError::NotFound)?.get::<_, &[u8]>(0))
    }
}
