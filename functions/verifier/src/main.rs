//! The `verifier` function: on an EventBridge schedule, verifies the entries each tenant appended
//! since the last run, checks the global log against its S3 anchors, and alarms (log + `VerificationFailures` metric) on a fault. Wiring only;
//! the work is `shared::service::verify::run_scheduled_verifier`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::anchors::AnchorStore;
use shared::aws::kms::KmsSigner;
use shared::config::{AnchorSettings, CheckpointSettings, DatabaseSettings, Env};
use shared::runtime::{init_tracing, store_pool};
use shared::service::verify::{run_scheduled_verifier, CheckpointKey, VerifierRun};
use shared::signer::CheckpointSigner;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let checkpoint = CheckpointSettings::from_env(&mut env);
    let anchor = AnchorSettings::from_env(&mut env);
    let max_tenants: u32 = env.parsed("VERIFIER_MAX_TENANTS", 1000);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let anchors = AnchorStore::new(&sdk, &anchor.bucket, anchor.retention_days);
    // Only the public key is used (GetPublicKey), to check checkpoint signatures.
    let key = KmsSigner::from_config(&sdk, &checkpoint.key_id, &checkpoint.origin).await?;
    let (pool, key, anchors, retired) = (&pool, &key, &anchors, &checkpoint.retired_public_keys);
    run(service_fn(move |_: LambdaEvent<EventBridgeEvent<Value>>| async move {
        let key = CheckpointKey { name: key.key_name(), spki_der: key.public_key_der(), retired };
        Ok::<VerifierRun, Error>(run_scheduled_verifier(pool, Some(key), Some(anchors), max_tenants).await?)
    }))
    .await
}
