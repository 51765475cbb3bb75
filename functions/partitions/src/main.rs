//! The `partitions` function: once a day, creates the coming months' `events` partitions that are
//! missing. Wiring only; the work is `shared::service::partitions::run_partition_maintenance`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::{DatabaseSettings, Env};
use shared::runtime::{init_tracing, store_pool};
use shared::service::partitions::{run_partition_maintenance, PartitionRun};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let pool = &pool;
    run(service_fn(move |_: LambdaEvent<EventBridgeEvent<Value>>| async move {
        Ok::<PartitionRun, Error>(run_partition_maintenance(pool).await?)
    }))
    .await
}
