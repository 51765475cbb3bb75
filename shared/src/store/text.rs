//! PostgreSQL full text, written after commit (migration V11): the index queue's consumer puts
//! the words of committed entries into `event_text` when no OpenSearch is configured, and
//! `GET /v1/events?q=` searches them (`store::query`). An append never writes here.

use super::{seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// The words of the tenant's entries in the ranges; see `audit_index_text` in V11 (a redelivered
/// range writes nothing twice, and an erasure running at the same time never leaves its words).
const FILL: &str = "SELECT audit_index_text($1::bigint[], $2::bigint[])";

/// Per range, how many of its entries exist.
const PRESENT: &str = "SELECT count(c.seq)
       FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS r(lo, hi, n)
       LEFT JOIN chain_entries c ON c.tenant_id = $1 AND c.seq >= r.lo AND c.seq < r.hi
      GROUP BY r.n ORDER BY r.n";

/// What [`Store::index_text`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRun {
    /// Rows written now (entries indexed before, and entries without content, are not counted).
    pub written: u64,
    /// Per range, in order: how many of its entries exist.
    pub present: Vec<u64>,
}

impl Store {
    /// Writes the words of the tenant's entries in `ranges` (`[first, end)` seqs, each the entries
    /// of one index message) and returns, per range, how many of its entries exist. The caller
    /// acknowledges a range only when that count is its length: a committed entry always exists,
    /// so a shorter count means the message named entries that are not there.
    pub async fn index_text(&mut self, tenant: Uuid, ranges: &[(u64, u64)]) -> Result<TextRun, StoreError> {
        if ranges.is_empty() {
            return Ok(TextRun::default());
        }
        let firsts: Vec<i64> = ranges.iter().map(|r| to_i64(r.0)).collect::<Result<_, _>>()?;
        let ends: Vec<i64> = ranges.iter().map(|r| to_i64(r.1)).collect::<Result<_, _>>()?;
        self.recover().await?;
        let [fill, present] = self.prepared([FILL, PRESENT]).await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let written: i64 = tx.query_one(&fill, &[&firsts, &ends]).await?.get(0);
        let params: [&(dyn ToSql + Sync); 3] = [&tenant, &firsts, &ends];
        let counts = tx.query(&present, &params).await?;
        tx.commit().await?;
        let present = counts.iter().map(|r| seq_col(r.get(0))).collect::<Result<_, _>>()?;
        Ok(TextRun { written: seq_col(written)?, present })
    }
}
