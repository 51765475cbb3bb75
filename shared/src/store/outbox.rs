//! The outbox: one row per committed append, sent to the index queue after commit and marked
//! sent; the relay finds rows that were never sent. These calls work across tenants through the
//! SECURITY DEFINER functions of migration V9, which reveal positions only.

use super::{seq_col, Store, StoreError};
use std::time::Duration;
use uuid::Uuid;

/// One committed append waiting to be (or already) sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub tenant: Uuid,
    pub first_seq: u64,
    pub count: u32,
}

fn interval(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}

impl Store {
    /// Unsent rows committed at least `min_age` ago, oldest first.
    pub async fn outbox_unsent(&mut self, min_age: Duration, max_rows: u32) -> Result<Vec<OutboxRow>, StoreError> {
        self.recover().await?;
        let max = i32::try_from(max_rows).unwrap_or(i32::MAX);
        let rows = self
            .client
            .query(
                "SELECT id, tenant_id, first_seq, count FROM audit_outbox_unsent($1::text::interval, $2)",
                &[&interval(min_age), &max],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.get(0),
                    tenant: r.get(1),
                    first_seq: seq_col(r.get(2))?,
                    count: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Marks rows sent; returns how many were unsent until now.
    pub async fn outbox_mark_sent(&mut self, ids: &[i64]) -> Result<u32, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.recover().await?;
        let [mark] = self.prepared(["SELECT audit_outbox_mark_sent($1)"]).await?;
        let row = self.client.query_one(&mark, &[&ids]).await?;
        Ok(u32::try_from(row.get::<_, i32>(0)).unwrap_or(0))
    }

    /// Deletes rows sent more than `min_age` ago; returns how many.
    pub async fn outbox_purge(&mut self, min_age: Duration) -> Result<u64, StoreError> {
        self.recover().await?;
        let row = self.client.query_one("SELECT audit_outbox_purge($1::text::interval)", &[&interval(min_age)]).await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }
}
