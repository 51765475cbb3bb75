//! What the S3 wrappers (anchors, archives) share: the client, path-style so that the local
//! endpoint's buckets need no DNS, and one error type naming the operation.

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use std::fmt;

/// Why an S3 call failed: the operation and the service's error code (never object contents).
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct S3Error {
    operation: &'static str,
    message: String,
}

impl S3Error {
    pub(crate) fn new(operation: &'static str, message: impl Into<String>) -> Self {
        S3Error { operation, message: message.into() }
    }
}

pub(crate) fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> S3Error {
    move |e| S3Error { operation, message: super::error_code(&e) }
}

pub(crate) fn client(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

/// The object's bytes, or `None` if there is no such key.
pub(crate) async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
    let object = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => object,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(aws("S3 GetObject")(e)),
    };
    let bytes = object.body.collect().await.map_err(|e| S3Error::new("S3 GetObject (body)", e.to_string()))?;
    Ok(Some(bytes.to_vec()))
}

/// Writes one object, with an S3-checked SHA-256 checksum of the body.
pub(crate) async fn put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), S3Error> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .map_err(aws("S3 PutObject"))?;
    Ok(())
}
