//! One fresh database per scenario in the throwaway cluster, set up the way the tests set theirs
//! up (production migrations as the owner, then the service login), and the on-disk size of its
//! tables so a scenario can report how much storage each event costs.

use anyhow::{Context, Result};
use localstack::postgres::Postgres;
use shared::store::migrate::{ensure_maintenance_login, ensure_service_login, migrate};
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// The login role the service connects as: row-level security and grants apply to it.
pub const APP_USER: &str = "audit_app";
/// The maintenance login (erasure).
pub const MAINTENANCE_USER: &str = "audit_maint";

/// Bytes per table: heap, TOAST and indexes, with a partitioned table's partitions added up under
/// the partitioned table's name.
const TABLE_SIZES: &str = "
    SELECT coalesce(pg_partition_root(c.oid::regclass), c.oid::regclass)::text,
           sum(pg_total_relation_size(c.oid))::bigint
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind = 'r'
     GROUP BY 1";

/// A database of the throwaway cluster, with a superuser connection to it.
#[derive(Debug)]
pub struct BenchDb {
    app_url: String,
    maintenance_url: String,
    superuser: Client,
}

impl BenchDb {
    /// Creates database `name` with the service's schema and login role.
    pub async fn migrated(pg: &Postgres, name: &str) -> Result<Self> {
        let db = Self::empty(pg, name).await?;
        let mut owner = pg.connect_superuser(name).await?;
        migrate(&mut owner).await.with_context(|| format!("migrating {name}"))?;
        ensure_service_login(&owner, APP_USER).await.context("creating the service login")?;
        ensure_maintenance_login(&owner, MAINTENANCE_USER).await.context("creating the maintenance login")?;
        Ok(db)
    }

    /// Creates database `name` with nothing in it.
    pub async fn empty(pg: &Postgres, name: &str) -> Result<Self> {
        let admin = pg.connect_superuser("postgres").await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        let superuser = pg.connect_superuser(name).await?;
        Ok(BenchDb { app_url: pg.url(APP_USER, name), maintenance_url: pg.url(MAINTENANCE_USER, name), superuser })
    }

    /// Connection string for the service's login role.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    pub fn maintenance_url(&self) -> &str {
        &self.maintenance_url
    }

    pub fn superuser(&self) -> &Client {
        &self.superuser
    }

    /// The current size of every table.
    pub async fn table_sizes(&self) -> Result<TableSizes> {
        let rows = self.superuser.query(TABLE_SIZES, &[]).await.context("reading table sizes")?;
        Ok(TableSizes(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
    }
}

/// Bytes per table name.
#[derive(Debug, Clone, Default)]
pub struct TableSizes(BTreeMap<String, i64>);

impl TableSizes {
    /// How much each table grew between `before` and `self`.
    pub fn growth_since(&self, before: &TableSizes) -> TableSizes {
        TableSizes(self.0.iter().map(|(t, after)| (t.clone(), after - before.bytes(t))).collect())
    }

    pub fn bytes(&self, table: &str) -> i64 {
        self.0.get(table).copied().unwrap_or(0)
    }

    pub fn total(&self) -> i64 {
        self.0.values().sum()
    }
}
