//! What Lambda's SQS event source mapping does, on the local AWS endpoint: long-poll a queue,
//! hand each batch to the function as the `SqsEvent` AWS sends (message id, receipt handle, body,
//! attributes such as ApproximateReceiveCount, event source ARN), then delete the messages the
//! function did not report in `batchItemFailures`. Failed messages stay in the queue, come back
//! after its visibility timeout, and after its maxReceiveCount move to its dead-letter queue,
//! all done by the queue itself, as in AWS.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use std::future::Future;

/// How many batches of one queue are in flight at once. Lambda starts a standard queue's mapping
/// with five pollers and scales up; three keep a local run ahead of its producers (one consumer
/// alone fell behind 50 single events a second, and the local endpoint slows down as a queue's
/// backlog grows) without crowding two cores.
pub const POLLERS: usize = 3;

/// One queue and the function that consumes it.
#[derive(Debug, Clone)]
pub struct EventSourceMapping {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    batch_size: i32,
}

impl EventSourceMapping {
    pub async fn new(sdk: &SdkConfig, queue_url: &str, batch_size: i32) -> Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .context("SQS GetQueueAttributes")?;
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .context("the queue has no ARN")?;
        Ok(EventSourceMapping { sqs, queue_url: queue_url.to_owned(), queue_arn, batch_size: batch_size.clamp(1, 10) })
    }

    /// Receives one batch (waiting up to `wait_seconds` for it), runs `function` on it and
    /// deletes what succeeded. Returns how many messages were received.
    pub async fn poll_once<F, Fut>(&self, wait_seconds: i32, function: &F) -> Result<usize>
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .context("SQS ReceiveMessage")?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(0);
        }
        let region = self.queue_arn.split(':').nth(3).unwrap_or("us-east-1").to_owned();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect())
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": region,
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).context("building the SqsEvent")?;
        let response = function(event).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        // One DeleteMessageBatch for what succeeded, as the mapping does.
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(&m.message_id().unwrap_or_default()))
            .filter_map(|(i, m)| {
                let handle = m.receipt_handle()?;
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build().ok()
            })
            .collect();
        if !done.is_empty() {
            let deleted = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .context("SQS DeleteMessageBatch")?;
            if let Some(f) = deleted.failed().first() {
                // Left in the queue, the message comes back after its visibility timeout.
                tracing::warn!(queue = %self.queue_url, error = ?f.message(), "deleting a processed message failed");
            }
        }
        Ok(messages.len())
    }

    /// Polls until the task is aborted, as the mapping does for as long as it is enabled: with
    /// [`POLLERS`] pollers at once, each handing its batches to the function in turn, as Lambda
    /// runs concurrent batches of one queue in separate instances.
    pub async fn run<F, Fut>(self, function: F) -> Result<()>
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let poller = || async {
            loop {
                if let Err(e) = self.poll_once(1, &function).await {
                    tracing::warn!(queue = %self.queue_url, error = %format!("{e:#}"), "polling the queue failed");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        };
        futures::future::join_all((0..POLLERS).map(|_| poller())).await;
        Ok(())
    }
}
