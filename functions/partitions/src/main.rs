//! The `partitions` function: once a day, creates the coming months' `events` partitions that are
//! missing, then archives to S3 and drops the months older than the retention (on the maintenance
//! database role). Wiring only; the work is `shared::service::partitions::run_partition_maintenance`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::archives::ArchiveStore;
use shared::config::{DatabaseSettings, Env, PruningSettings};
use shared::runtime::{init_tracing, store_pool};
use shared::service::partitions::{run_partition_maintenance, PartitionRun};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let maintenance = DatabaseSettings::maintenance_from_env(&mut env);
    let pruning = PruningSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let maintenance = store_pool(&maintenance, &sdk).await?;
    let archives = ArchiveStore::new(&sdk, &pruning.archive_bucket);
    let (pool, maintenance, archives, months) = (&pool, &maintenance, &archives, pruning.retention_months);
    run(service_fn(move |_: LambdaEvent<EventBridgeEvent<Value>>| async move {
        Ok::<PartitionRun, Error>(run_partition_maintenance(pool, maintenance, archives, months).await?)
    }))
    .await
}
