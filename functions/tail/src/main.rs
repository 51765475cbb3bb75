//! The `tail` function: the live tail's WebSocket routes (`$connect`, `$disconnect`, `subscribe`,
//! `ping`, `$default`). Wiring only; the event mapping is `shared::api::tail` and the work
//! `shared::service::tail`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::api::tail::handle_tail_event;
use shared::runtime::{init_tracing, tail_service_from_env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let service = &tail_service_from_env().await?;
    run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        Ok::<ApiGatewayProxyResponse, Error>(handle_tail_event(service, &event.payload).await)
    }))
    .await
}
