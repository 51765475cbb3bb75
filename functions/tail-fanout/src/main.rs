//! The `tail-fanout` function: the tail queue's consumer. Each message (an outbox row's
//! position) wakes a pass for every connection of its tenant, which posts what the connection
//! has not been sent yet through the Management API, reporting only the failed messages
//! (`ReportBatchItemFailures`). Wiring only; the work is `shared::service::tail`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::runtime::{init_tracing, tail_service_from_env};
use shared::sqs::handle_tail_event;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let service = &tail_service_from_env().await?;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_tail_event(service, &event.payload).await)
    }))
    .await
}
