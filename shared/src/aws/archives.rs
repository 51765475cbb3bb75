//! The archive bucket: pruned content, per tenant and partition, as `archives/<tenant>/<partition>
//! .jsonl.gz` and its manifest `archives/<tenant>/<partition>.manifest.json` (formats in
//! `chain::archive` and docs/FORMATS.md).

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use std::fmt;

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct ArchiveStoreError {
    operation: &'static str,
    message: String,
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> ArchiveStoreError {
    move |e| ArchiveStoreError { operation, message: super::error_code(&e) }
}

/// Where archives are written.
#[derive(Clone, Debug)]
pub struct ArchiveStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl ArchiveStore {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
        ArchiveStore { client: aws_sdk_s3::Client::from_conf(s3), bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The keys of a tenant's archive of one partition: data and manifest.
    pub fn keys(tenant: uuid::Uuid, partition: &str) -> (String, String) {
        let base = format!("archives/{tenant}/{partition}");
        (format!("{base}.jsonl.gz"), format!("{base}.manifest.json"))
    }

    /// Writes one object (with an S3-checked SHA-256 checksum).
    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), ArchiveStoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(aws("S3 PutObject (archive)"))?;
        Ok(())
    }

    /// Reads one object back (the tests and offline checks).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ArchiveStoreError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(aws("S3 GetObject (archive)"))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| ArchiveStoreError { operation: "S3 GetObject (archive body)", message: e.to_string() })?;
        Ok(bytes.to_vec())
    }
}
