//! The `tail` function: the live tail's WebSocket routes (`$connect`, `$disconnect`, `subscribe`,
//! `ping`, `$default`). Wiring only; the event mapping is `shared::api::tail` and the work
//! `shared::service::tail`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::api::tail::{handle_tail_event, tail_service};
use shared::aws::connections::ConnectionPoster;
use shared::aws::tail_connections::ConnectionStore;
use shared::config::{DatabaseSettings, Env, TailSettings};
use shared::runtime::{init_tracing, store_pool};

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
    run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        Ok::<ApiGatewayProxyResponse, Error>(handle_tail_event(service, &event.payload).await)
    }))
    .await
}
