//! Partition maintenance as the service role, on real PostgreSQL: it creates missing future
//! partitions and nothing more.

mod support;

use shared::service::partitions::run_partition_maintenance;
use shared::store::connect::DbConfig;
use shared::store::pool::StorePool;
use support::TestDb;

#[tokio::test]
async fn the_service_role_recreates_missing_future_partitions_but_cannot_drop_one() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    let future: String = su
        .query_one(
            "SELECT format('events_%s', to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months', 'YYYY_MM'))",
            &[],
        )
        .await?
        .get(0);
    su.batch_execute(&format!("DROP TABLE {future}")).await?;

    let pool = StorePool::new(DbConfig::plain(db.app_url()), 1);
    let run = run_partition_maintenance(&pool).await?;
    assert_eq!(run.created, 1);
    let exists: bool = su.query_one("SELECT to_regclass($1) IS NOT NULL", &[&future]).await?.get(0);
    assert!(exists, "{future} was not recreated");
    // Nothing missing: nothing created.
    assert_eq!(run_partition_maintenance(&pool).await?.created, 0);

    let app = db.app_client().await?;
    assert!(app.batch_execute(&format!("DROP TABLE {future}")).await.is_err(), "the service role dropped a partition");
    assert!(
        app.batch_execute("SELECT audit_ensure_event_partitions('2000-01-01', 1)").await.is_ok(),
        "creating partitions is the one schema change the service role may make"
    );
    Ok(())
}
