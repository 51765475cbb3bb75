//! The scheduled verifier's progress per tenant (table `verification_state`).

use super::{hash_col, seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::hash::Hash;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How far a tenant's chain has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPosition {
    pub verified_size: u64,
    /// The chain hash of entry `verified_size - 1` (GENESIS for 0) when it was verified.
    pub chain_hash: Hash,
    pub verified_at: DateTime<Utc>,
    pub last_fault: Option<String>,
}

impl Store {
    pub async fn verified_position(&mut self, tenant: Uuid) -> Result<Option<VerifiedPosition>, StoreError> {
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let row = tx
            .query_opt(
                "SELECT verified_size, chain_hash, verified_at, last_fault FROM verification_state WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(VerifiedPosition {
                verified_size: seq_col(r.get(0))?,
                chain_hash: hash_col(r.get::<_, &[u8]>(1))?,
                verified_at: r.get(2),
                last_fault: r.get(3),
            })
        })
        .transpose()
    }

    /// Records a run: the new verified position when it passed, or the fault (keeping the last
    /// good position) when it did not.
    pub async fn record_verification(
        &mut self,
        tenant: Uuid,
        verified_size: u64,
        chain_hash: &Hash,
        fault: Option<&str>,
    ) -> Result<(), StoreError> {
        self.recover().await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let size = to_i64(verified_size)?;
        let hash = chain_hash.0.to_vec();
        tx.execute(
            "INSERT INTO verification_state (tenant_id, verified_size, chain_hash, last_fault) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE
               SET verified_size = EXCLUDED.verified_size, chain_hash = EXCLUDED.chain_hash,
                   last_fault = EXCLUDED.last_fault, verified_at = now()",
            &[&tenant, &size, &hash, &fault],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tenants with entries not verified yet, longest-waiting first.
    pub async fn tenants_to_verify(&mut self, max_tenants: u32) -> Result<Vec<Uuid>, StoreError> {
        self.recover().await?;
        let limit = i32::try_from(max_tenants).unwrap_or(i32::MAX);
        let rows = self.client.query("SELECT tenant_id FROM audit_tenants_to_verify($1)", &[&limit]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
