//! The SQS edge: Lambda's SQS events mapped to the use cases, and their outcomes mapped back to
//! `SqsBatchResponse` with only the failed messages (the event source mapping runs with
//! `ReportBatchItemFailures`, so the others are deleted and only the failures come back).

use crate::search::OpenSearch;
use crate::service::export::{ExportWorker, RunOutcome};
use crate::service::indexing::{index_messages, QueuedMessage};
use crate::store::pool::StorePool;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use std::time::Instant;

fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The indexer: every record of the batch, in one pass; the failed ones are retried.
pub async fn handle_index_event(pool: &StorePool, search: &OpenSearch, event: &SqsEvent) -> SqsBatchResponse {
    let messages: Vec<QueuedMessage> = event
        .records
        .iter()
        .map(|r| QueuedMessage {
            id: r.message_id.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
        })
        .collect();
    failures(index_messages(pool, search, &messages).await.failed)
}

/// The export function: each record in turn (the mapping's batch size is 1, so there is one).
pub async fn handle_export_event(worker: &ExportWorker, event: &SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut failed = Vec::new();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        match worker.handle(record.body.as_deref().unwrap_or_default(), receive_count, deadline).await {
            Ok(RunOutcome::Busy) => failed.push(id),
            Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "export message handled"),
            Err(error) => {
                tracing::warn!(message_id = %id, %error, "export run failed; the message is retried");
                failed.push(id);
            }
        }
    }
    failures(failed)
}
