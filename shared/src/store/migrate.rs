//! Schema migrations from `infra/migrations`, embedded at build time and applied in order by
//! refinery, which records what ran in its history table; running again applies nothing.

use super::StoreError;
use tokio_postgres::Client;

mod embedded {
    refinery::embed_migrations!("../infra/migrations");
}

/// How many months of `events` partitions are kept ahead of the current month.
pub const PARTITION_MONTHS_AHEAD: i32 = 3;

/// Applies pending migrations (as the schema owner) and makes sure the current and the next
/// months' partitions exist. Returns the names of the migrations applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<String>, StoreError> {
    let report =
        embedded::migrations::runner().run_async(client).await.map_err(|e| StoreError::Migration(e.to_string()))?;
    ensure_partitions(client).await?;
    Ok(report.applied_migrations().iter().map(|m| m.to_string()).collect())
}

/// Applies pending migrations up to and including `version` only, and the partitions: a schema as
/// an earlier release left it, for upgrade tests and for staging an upgrade step by step.
pub async fn migrate_to(client: &mut Client, version: u32) -> Result<Vec<String>, StoreError> {
    let report = embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run_async(client)
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    ensure_partitions(client).await?;
    Ok(report.applied_migrations().iter().map(|m| m.to_string()).collect())
}

/// Creates any missing monthly partitions from this month to [`PARTITION_MONTHS_AHEAD`] ahead.
/// The owner and the service role may both call it (see migration V5).
pub async fn ensure_partitions(client: &Client) -> Result<i32, StoreError> {
    let row = client
        .query_one(
            "SELECT audit_ensure_event_partitions((now() AT TIME ZONE 'UTC')::date, $1)",
            &[&(PARTITION_MONTHS_AHEAD + 1)],
        )
        .await?;
    Ok(row.get(0))
}

/// Makes `user` a login role that acts with the service role's privileges (and no more). Used by
/// the local run and tests; in AWS the deploy notes create the same role with a password.
pub async fn ensure_service_login(client: &Client, user: &str) -> Result<(), StoreError> {
    ensure_login(client, user, "audit_service").await
}

/// Makes `user` a login role with the maintenance role's privileges: erasure (and nothing the
/// service role can do). Used by the local run and tests, like [`ensure_service_login`].
pub async fn ensure_maintenance_login(client: &Client, user: &str) -> Result<(), StoreError> {
    ensure_login(client, user, "audit_maintainer").await
}

async fn ensure_login(client: &Client, user: &str, role: &str) -> Result<(), StoreError> {
    if !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Migration(format!("invalid role name {user:?}")));
    }
    client
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {user} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             GRANT {role} TO {user};"
        ))
        .await?;
    Ok(())
}
