//! The AWS side of the log: the one place that loads the SDK configuration, and thin wrappers
//! around the services the functions use.
//!
//! Nothing here branches on the local endpoint: the SDK reads `AWS_ENDPOINT_URL` (and the region
//! and credentials) from the environment itself, so the local stack only sets variables.

pub mod kms;
pub mod api_keys;
pub mod viewer_tokens;
pub mod console_settings;
pub mod anchors;
pub mod archives;
pub mod s3;
pub mod queues;
pub mod export_jobs;
pub mod export_objects;
pub mod receipt_keys;
pub mod secrets;
pub mod tail_connections;
pub mod connections;

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK configuration from the environment (Lambda's role credentials and region, or the
/// local stack's `AWS_ENDPOINT_URL` and dummy keys). Call once per process, at start-up.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The AWS error code of a failed call (`ThrottlingException`, ...), or its text when it has
/// none (a network failure). Never request contents.
pub(crate) fn error_code<E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    e.code().map(str::to_owned).unwrap_or_else(|| e.to_string())
}
