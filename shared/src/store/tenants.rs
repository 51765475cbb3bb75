//! Tenants and their chain heads.

use super::{tenant_param, Store, StoreError, SET_TENANT};
use uuid::Uuid;

impl Store {
    /// Creates a tenant and its empty chain head in one transaction. The head exists from the
    /// start, so even a tenant's first append locks an existing row.
    pub async fn create_tenant(&mut self, name: &str) -> Result<Uuid, StoreError> {
        let tenant = Uuid::now_v7();
        self.create_tenant_with_id(tenant, name).await?;
        Ok(tenant)
    }

    /// Creates a tenant with an id chosen by the caller (the API picks it first so that the
    /// tenant's first key can name it before the tenant exists).
    pub async fn create_tenant_with_id(&mut self, tenant: Uuid, name: &str) -> Result<(), StoreError> {
        self.recover().await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        tx.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)", &[&tenant, &name]).await?;
        tx.execute("INSERT INTO chain_heads (tenant_id) VALUES ($1)", &[&tenant]).await?;
        tx.commit().await?;
        Ok(())
    }
}
