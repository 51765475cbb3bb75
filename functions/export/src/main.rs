//! The `export` function: the export queue's consumer. Streams an export's rows from PostgreSQL
//! into S3 multipart uploads and, near its time limit, hands the rest on to a later run. Wiring
//! only; the work is `shared::service::export::ExportWorker`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::aws::export_jobs::ExportJobStore;
use shared::aws::export_objects::ExportBucket;
use shared::aws::queues::Queue;
use shared::config::{DatabaseSettings, Env, ExportSettings};
use shared::runtime::{init_tracing, run_deadline, store_pool, worker_settings};
use shared::service::export::ExportWorker;
use shared::sqs::handle_export_event;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let exports = ExportSettings::from_env(&mut env);
    let settings = worker_settings(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let worker = ExportWorker {
        pool: store_pool(&database, &sdk).await?,
        jobs: ExportJobStore::new(&sdk, &exports.table),
        bucket: ExportBucket::new(&sdk, &exports.bucket),
        queue: Queue::new(&sdk, &exports.queue_url),
        settings,
    };
    let worker = &worker;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = run_deadline(event.context.deadline, None);
        Ok::<SqsBatchResponse, Error>(handle_export_event(worker, &event.payload, deadline).await)
    }))
    .await
}
