//! The `tail-fanout` function: the tail queue's consumer. Each message (an outbox row's
//! position) wakes a pass for every connection of its tenant, which posts what the connection
//! has not been sent yet through the Management API, reporting only the failed messages
//! (`ReportBatchItemFailures`). Wiring only; the work is `shared::service::tail`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::api::tail::tail_service;
use shared::aws::connections::ConnectionPoster;
use shared::aws::tail_connections::ConnectionStore;
use shared::config::{DatabaseSettings, Env, TailSettings};
use shared::runtime::{init_tracing, store_pool};
use shared::sqs::handle_tail_event;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let tail = TailSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let service = tail_service(
        store_pool(&database, &sdk).await?,
        ConnectionStore::new(&sdk, &tail.connections_table),
        ConnectionPoster::new(&sdk, &tail.management_url),
    );
    let service = &service;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_tail_event(service, &event.payload).await)
    }))
    .await
}
