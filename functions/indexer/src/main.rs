//! The `indexer` function: the index queue's consumer. Reads the entries each message names from
//! PostgreSQL and writes them to OpenSearch with `_bulk`, reporting only the failed messages
//! (`ReportBatchItemFailures`). Wiring only; the work is `shared::service::indexing`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::{DatabaseSettings, Env, SearchSettings};
use shared::runtime::{init_tracing, store_pool};
use shared::search::OpenSearch;
use shared::sqs::handle_index_event;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let search = SearchSettings::required_from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let search = OpenSearch::new(&sdk, search.url.as_deref().unwrap_or_default(), &search.index)?;
    let (pool, search) = (&pool, &search);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_index_event(pool, search, &event.payload).await)
    }))
    .await
}
