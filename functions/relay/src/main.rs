//! The `relay` function: every minute, sends the outbox rows that were committed but never sent
//! to the index queue (an ingest instance stopped between commit and send), and deletes rows sent
//! a day ago. Wiring only; the work is `shared::service::indexing::run_relay`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::queues::Queue;
use shared::config::{DatabaseSettings, Env, IndexQueueSettings};
use shared::runtime::{init_tracing, store_pool};
use shared::service::indexing::{run_relay, RelayRun, RelaySettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let queue = IndexQueueSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let queue = Queue::new(&sdk, &queue.queue_url);
    let (pool, queue) = (&pool, &queue);
    run(service_fn(move |_: LambdaEvent<EventBridgeEvent<Value>>| async move {
        Ok::<RelayRun, Error>(run_relay(pool, queue, RelaySettings::default()).await?)
    }))
    .await
}
