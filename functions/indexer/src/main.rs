//! The `indexer` function: the index queue's consumer. Reads the entries each message names from
//! PostgreSQL and writes them to OpenSearch with `_bulk` or, without `OPENSEARCH_URL`, writes
//! their words into PostgreSQL's own full text; reports only the failed messages
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
    let search = SearchSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let pool = store_pool(&database, &sdk).await?;
    let search = search.url.as_deref().map(|url| OpenSearch::new(&sdk, url, &search.index)).transpose()?;
    let (pool, search) = (&pool, search.as_ref());
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_index_event(pool, search, &event.payload).await)
    }))
    .await
}
