//! Tenants and their chain heads.

use super::{tenant_param, Store, StoreError, SET_TENANT};
use uuid::Uuid;

impl Store {
    /// Creates a tenant and its empty chain head in one transaction. The head exists from the
    /// start, so even a tenant's first append locks an existing row.
    pub async fn create_tenant(&mut self, name: &str) -> Result<Uuid, StoreError> {
        self.recover().await?;
        let tenant = Uuid::now_v7();
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        tx.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)", &[&tenant, &name]).await?;
        tx.execute("INSERT INTO chain_heads (tenant_id) VALUES ($1)", &[&tenant]).await?;
        tx.commit().await?;
        Ok(tenant)
    }
}
