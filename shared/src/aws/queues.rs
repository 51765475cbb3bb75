//! SQS: the index queue (outbox rows on their way to the indexer) and the export queue (export
//! jobs and their continuations). Message bodies are small JSON documents that name positions,
//! never event content, so nothing sensitive travels through the queues or their DLQs.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

/// Why an SQS call failed: the operation and the service's error code.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct QueueError {
    operation: &'static str,
    message: String,
}

/// SendMessageBatch takes at most this many entries.
pub const MAX_BATCH: usize = 10;

/// One queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Queue { client: aws_sdk_sqs::Client::new(config), url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one message, visible after `delay_seconds` (0 to 900).
    pub async fn send(&self, body: &str, delay_seconds: i32) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds)
            .send()
            .await
            .map_err(|e| QueueError { operation: "SQS SendMessage", message: super::error_code(&e) })?;
        Ok(())
    }

    /// Sends `bodies` in calls of up to [`MAX_BATCH`] and returns the indexes (into `bodies`) of
    /// those SQS did not accept; the caller leaves them to a later sweep.
    pub async fn send_batch(&self, bodies: &[String]) -> Result<Vec<usize>, QueueError> {
        let mut failed = Vec::new();
        for (chunk_no, chunk) in bodies.chunks(MAX_BATCH).enumerate() {
            let offset = chunk_no * MAX_BATCH;
            let entries =
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, body)| {
                        SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().map_err(
                            |e| QueueError { operation: "SQS SendMessageBatch (entry)", message: e.to_string() },
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError { operation: "SQS SendMessageBatch", message: super::error_code(&e) })?;
            failed.extend(out.failed().iter().filter_map(|f| f.id().parse::<usize>().ok()).map(|i| offset + i));
        }
        Ok(failed)
    }
}
