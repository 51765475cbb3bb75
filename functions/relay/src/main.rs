//! The `relay` function: every minute, sends what should have been sent and was not. The outbox
//! rows that were committed but never sent to the index queue (an ingest instance stopped between
//! commit and send) to the index and tail queues, deleting rows sent a day ago; and the current step's message of every export
//! that stalled (its message lost, see `shared::service::export`). Wiring only; the work is
//! `shared::service::indexing::run_relay` and `shared::service::export::sweep_stalled`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::aws::export_jobs::ExportJobStore;
use shared::aws::queues::Queue;
use shared::config::{DatabaseSettings, Env, ExportSweepSettings, IndexQueueSettings};
use shared::runtime::{init_tracing, store_pool};
use shared::service::export::sweep_stalled;
use shared::service::indexing::{run_relay, RelaySettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let queue = IndexQueueSettings::from_env(&mut env);
    let sweep = ExportSweepSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let queue = shared::runtime::outbox_queues(&queue, &sdk);
    let jobs = ExportJobStore::new(&sdk, &sweep.table);
    let export_queue = Queue::new(&sdk, &sweep.queue_url);
    let (pool, queue, jobs, export_queue) = (&pool, &queue, &jobs, &export_queue);
    run(service_fn(move |_: LambdaEvent<EventBridgeEvent<Value>>| async move {
        // Each half runs whatever the other did; the run fails if either failed.
        let outbox = run_relay(pool, queue, RelaySettings::default()).await;
        let exports = sweep_stalled(jobs, export_queue, chrono::Utc::now().timestamp()).await;
        let mut response = json!(outbox?);
        response["exports"] = json!(exports?);
        Ok::<Value, Error>(response)
    }))
    .await
}
