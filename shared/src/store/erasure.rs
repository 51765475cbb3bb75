//! Erasure of event content, through `audit_erase` (migration V7), on a connection of the
//! maintenance role: the service role cannot call it, and this role can change nothing else.

use super::{tenant_param, Store, StoreError, SET_TENANT};
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// What to erase: exactly one criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureTarget {
    /// One event.
    Event(Uuid),
    /// Every event of one actor id (a data subject).
    Actor(String),
    /// Every event received before this time (a retention window shorter than the partitions').
    ReceivedBefore(DateTime<Utc>),
}

impl Store {
    /// Erases the content of `tenant`'s events matching `target`; returns how many were erased
    /// now. An unknown event id is `NotFound`. Needs a connection of the maintenance role.
    pub async fn erase_content(&mut self, tenant: Uuid, target: &ErasureTarget) -> Result<u64, StoreError> {
        self.recover().await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let (event, actor, before) = match target {
            ErasureTarget::Event(id) => (Some(*id), None, None),
            ErasureTarget::Actor(actor) => (None, Some(actor.as_str()), None),
            ErasureTarget::ReceivedBefore(t) => (None, None, Some(*t)),
        };
        if let Some(id) = event {
            let sql = "SELECT 1 FROM chain_entries WHERE tenant_id = $1 AND event_id = $2";
            if tx.query_opt(sql, &[&tenant, &id]).await?.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        let params: [&(dyn ToSql + Sync); 4] = [&tenant, &event, &actor, &before];
        let row = tx.query_one("SELECT audit_erase($1, $2, $3, $4)", &params).await?;
        tx.commit().await?;
        let erased: i64 = row.get(0);
        Ok(u64::try_from(erased).unwrap_or(0))
    }
}
