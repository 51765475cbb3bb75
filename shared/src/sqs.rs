//! The SQS edge: Lambda's SQS events mapped to the use cases, and their outcomes mapped back to
//! `SqsBatchResponse` with only the failed messages (the event source mapping runs with
//! `ReportBatchItemFailures`, so the others are deleted and only the failures come back).

use crate::search::OpenSearch;
use crate::service::export::{ExportWorker, RunOutcome};
use crate::service::indexing::{index_messages, index_messages_in_postgres, IndexMessage, QueuedMessage};
use crate::service::tail::TailService;
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

/// The indexer: every record of the batch, in one pass, into OpenSearch or (`None`) PostgreSQL's
/// own full text; the failed ones are retried.
pub async fn handle_index_event(pool: &StorePool, search: Option<&OpenSearch>, event: &SqsEvent) -> SqsBatchResponse {
    let messages: Vec<QueuedMessage> = event
        .records
        .iter()
        .map(|r| QueuedMessage {
            id: r.message_id.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
        })
        .collect();
    let run = match search {
        Some(search) => index_messages(pool, search, &messages).await,
        None => index_messages_in_postgres(pool, &messages).await,
    };
    failures(run.failed)
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

/// The tail fan-out: the tenants the messages name each get a pass for every connection; the
/// messages of a tenant whose passes failed are retried, and a malformed message fails alone.
pub async fn handle_tail_event(tail: &TailService, event: &SqsEvent) -> SqsBatchResponse {
    let mut failed = Vec::new();
    let mut by_tenant: std::collections::BTreeMap<uuid::Uuid, Vec<String>> = Default::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        match IndexMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(message) => by_tenant.entry(message.tenant_id).or_default().push(id),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "malformed tail message; it goes to the DLQ after its retries");
                failed.push(id);
            }
        }
    }
    let tenants = by_tenant.keys().copied().collect();
    for tenant in tail.wake(&tenants).await {
        failed.extend(by_tenant.remove(&tenant).unwrap_or_default());
    }
    failures(failed)
}
