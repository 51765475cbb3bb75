//! Administrative changes and the chain records that account for them, in one transaction.
//!
//! Every change an administrator makes in PostgreSQL (a tenant, a publisher signing key, a
//! setting, an erasure) commits in the same transaction as the audit event that records it, so
//! a failure at any statement leaves neither: there is no window in which the change exists
//! without its record, or the record without the change. The transaction is the append's own
//! (see `append`): the tenant's head is locked, the idempotency key looked up, and only then is
//! the change applied, its record sealed from what the change did (an erasure's count, say) and
//! appended.
//!
//! Changes made outside PostgreSQL (API keys live in DynamoDB) use [`AdminChange::RecordOnly`];
//! how those stay consistent is the service's concern (`service::admin`).

use super::append::{
    replay, write_and_commit, AppendResult, ChainHead, Idempotency, PreparedBatch, APPEND_ROWS, FIND_IDEMPOTENCY,
    LOCK_HEAD, READ_APPENDED,
};
use super::erasure::ErasureTarget;
use super::publishers::{key_from_row, PublisherKey, TenantSettings, KEY_COLUMNS};
use super::{tenant_param, Store, StoreError, SET_TENANT};
use crate::chain::entry::SealedEvent;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use uuid::Uuid;

/// A change to a tenant's configuration or content, committed with its record.
#[derive(Debug, Clone, Copy)]
pub enum AdminChange<'a> {
    /// Creates the tenant and its empty chain head (the records are its first entries).
    CreateTenant {
        name: &'a str,
    },
    /// Registers a publisher key; an id already registered is a conflict.
    RegisterPublisherKey {
        key_id: &'a str,
        name: &'a str,
        public_key: &'a [u8; 32],
    },
    /// Revokes a publisher key (unknown: not found).
    RevokePublisherKey {
        key_id: &'a str,
    },
    UpdateSettings(TenantSettings),
    /// Erases content through `audit_erase`; needs a connection of the maintenance role.
    Erase(&'a ErasureTarget),
    /// Nothing in PostgreSQL changes: the change was made elsewhere and is only recorded.
    RecordOnly,
}

/// What a change did, for its record and the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    PublisherKey(PublisherKey),
    Settings(TenantSettings),
    /// How many events had their content erased now.
    Erased(u64),
}

/// A committed change: what it did (`None` when the idempotency key replayed an earlier request,
/// which changed nothing now) and the records appended for it.
#[derive(Debug, Clone)]
pub struct CommittedChange {
    pub outcome: Option<ChangeOutcome>,
    pub recorded: AppendResult,
}

impl Store {
    /// Applies `change` for `tenant` and appends the records `record` seals from its outcome, in
    /// one transaction. With an idempotency key used before (same request hash), nothing is
    /// changed or appended and the earlier records are returned; a different request under the
    /// key is a conflict.
    pub async fn commit_change<F>(
        &mut self,
        tenant: Uuid,
        change: AdminChange<'_>,
        idempotency: Option<&Idempotency<'_>>,
        record: F,
    ) -> Result<CommittedChange, StoreError>
    where
        F: FnOnce(&ChangeOutcome) -> Result<Vec<SealedEvent>, StoreError>,
    {
        self.recover().await?;
        let [set_tenant, lock_head, find_idem, append_rows, read_appended] =
            self.prepared([SET_TENANT, LOCK_HEAD, FIND_IDEMPOTENCY, APPEND_ROWS, READ_APPENDED]).await?;
        self.open_transaction = true;
        let result = async {
            self.client.batch_execute("BEGIN").await?;
            self.client.execute(&set_tenant, &[&tenant_param(tenant)]).await?;
            let mut tenant_existed = false;
            if let AdminChange::CreateTenant { name } = change {
                // An existing tenant is only acceptable as the replay of the request that
                // created it, which the idempotency lookup below decides.
                let inserted = self
                    .client
                    .execute(
                        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING",
                        &[&tenant, &name],
                    )
                    .await?;
                if inserted == 1 {
                    self.client.execute("INSERT INTO chain_heads (tenant_id) VALUES ($1)", &[&tenant]).await?;
                } else {
                    tenant_existed = true;
                }
            }
            let head = self.client.query_opt(&lock_head, &[&tenant]).await?.ok_or(StoreError::UnknownTenant)?;
            let head = ChainHead::from_row(&head)?;
            if let Some(idem) = idempotency {
                if let Some(previous) = self.client.query_opt(&find_idem, &[&tenant, &idem.key]).await? {
                    let recorded = replay(&self.client, &read_appended, tenant, idem, &previous).await?;
                    self.client.batch_execute("COMMIT").await?;
                    return Ok(CommittedChange { outcome: None, recorded });
                }
            }
            if tenant_existed {
                return Err(StoreError::Conflict("the tenant exists".into()));
            }
            let outcome = apply(&self.client, tenant, change).await?;
            let events = record(&outcome)?;
            let batch = PreparedBatch::new(tenant, &head, &events)?;
            let recorded = write_and_commit(&self.client, &append_rows, tenant, &events, &batch, idempotency).await?;
            Ok(CommittedChange { outcome: Some(outcome), recorded })
        }
        .await;
        self.end_transaction(result.is_ok()).await;
        if matches!(
            change,
            AdminChange::RegisterPublisherKey { .. }
                | AdminChange::RevokePublisherKey { .. }
                | AdminChange::UpdateSettings(_)
        ) {
            self.policy_cache.remove(&tenant);
        }
        result
    }

    /// One publisher key of the tenant.
    pub async fn publisher_key(&mut self, tenant: Uuid, key_id: &str) -> Result<PublisherKey, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM publisher_keys WHERE tenant_id = $1 AND key_id = $2");
        self.recover().await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let row = tx.query_opt(&sql, &[&tenant, &key_id]).await?;
        tx.commit().await?;
        key_from_row(&row.ok_or(StoreError::NotFound)?)
    }
}

/// The change's own statements, inside the open transaction.
async fn apply(client: &Client, tenant: Uuid, change: AdminChange<'_>) -> Result<ChangeOutcome, StoreError> {
    match change {
        AdminChange::CreateTenant { .. } | AdminChange::RecordOnly => Ok(ChangeOutcome::Done),
        AdminChange::RegisterPublisherKey { key_id, name, public_key } => {
            let sql = format!(
                "INSERT INTO publisher_keys (tenant_id, key_id, name, public_key) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING RETURNING {KEY_COLUMNS}"
            );
            let bytes = public_key.to_vec();
            match client.query_opt(&sql, &[&tenant, &key_id, &name, &bytes]).await? {
                Some(row) => Ok(ChangeOutcome::PublisherKey(key_from_row(&row)?)),
                None => Err(StoreError::Conflict(format!("a signing key with id {key_id:?} is already registered"))),
            }
        }
        AdminChange::RevokePublisherKey { key_id } => {
            let update = format!(
                "UPDATE publisher_keys SET revoked_at = now() WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL
                 RETURNING {KEY_COLUMNS}"
            );
            let select = format!("SELECT {KEY_COLUMNS} FROM publisher_keys WHERE tenant_id = $1 AND key_id = $2");
            let row = match client.query_opt(&update, &[&tenant, &key_id]).await? {
                Some(row) => row,
                None => client.query_opt(&select, &[&tenant, &key_id]).await?.ok_or(StoreError::NotFound)?,
            };
            Ok(ChangeOutcome::PublisherKey(key_from_row(&row)?))
        }
        AdminChange::UpdateSettings(settings) => {
            let row = client
                .query_opt(
                    "UPDATE tenants SET require_signatures = $2 WHERE tenant_id = $1 RETURNING require_signatures",
                    &[&tenant, &settings.require_signatures],
                )
                .await?
                .ok_or(StoreError::UnknownTenant)?;
            Ok(ChangeOutcome::Settings(TenantSettings { require_signatures: row.get(0) }))
        }
        AdminChange::Erase(target) => {
            let (event, actor, before) = match target {
                ErasureTarget::Event(id) => (Some(*id), None, None),
                ErasureTarget::Actor(actor) => (None, Some(actor.as_str()), None),
                ErasureTarget::ReceivedBefore(t) => (None, None, Some(*t)),
            };
            if let Some(id) = event {
                let sql = "SELECT 1 FROM chain_entries WHERE tenant_id = $1 AND event_id = $2";
                if client.query_opt(sql, &[&tenant, &id]).await?.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            let params: [&(dyn ToSql + Sync); 4] = [&tenant, &event, &actor, &before];
            let row = client.query_one("SELECT audit_erase($1, $2, $3, $4)", &params).await?;
            let erased: i64 = row.get(0);
            Ok(ChangeOutcome::Erased(u64::try_from(erased).unwrap_or(0)))
        }
    }
}
