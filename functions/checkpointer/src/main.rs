//! The `checkpointer` function: on an EventBridge schedule, signs a checkpoint (KMS Sign) for every
//! tenant whose tree grew, records the heads in the service-wide log, and signs and anchors (S3
//! Object Lock) that log's checkpoint. Wiring only; the work is `shared::service::checkpoint::run_scheduled`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::anchors::AnchorStore;
use shared::aws::kms::KmsSigner;
use shared::config::{AnchorSettings, CheckpointSettings, DatabaseSettings, Env};
use shared::runtime::{init_tracing, store_pool};
use shared::service::checkpoint::{run_scheduled, ScheduledRun};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let checkpoint = CheckpointSettings::from_env(&mut env);
    let anchor = AnchorSettings::from_env(&mut env);
    let max_tenants: u32 = env.parsed("CHECKPOINT_MAX_TENANTS", 1000);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let anchors = AnchorStore::new(&sdk, &anchor.bucket, anchor.retention_days);
    let signer = KmsSigner::from_config(&sdk, &checkpoint.key_id, &checkpoint.origin)
        .await?
        .with_retired_keys(checkpoint.retired_public_keys.clone());
    let (pool, signer, origin, anchors) = (&pool, &signer, checkpoint.origin.as_str(), &anchors);
    run(service_fn(move |_: LambdaEvent<EventBridgeEvent<Value>>| async move {
        Ok::<ScheduledRun, Error>(run_scheduled(pool, signer, origin, anchors, max_tenants).await?)
    }))
    .await
}
