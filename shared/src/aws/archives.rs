//! The archive bucket: pruned content, per tenant and partition, as `archives/<tenant>/<partition>
//! .jsonl.gz` and its manifest `archives/<tenant>/<partition>.manifest.json` (formats in
//! `chain::archive` and docs/FORMATS.md).

use super::s3;
use aws_config::SdkConfig;

pub use super::s3::S3Error as ArchiveStoreError;

/// Where archives are written.
#[derive(Clone, Debug)]
pub struct ArchiveStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl ArchiveStore {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        ArchiveStore { client: s3::client(config), bucket: bucket.into() }
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
        s3::put(&self.client, &self.bucket, key, body, content_type).await
    }

    /// Reads one object back (the tests and offline checks).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ArchiveStoreError> {
        s3::get(&self.client, &self.bucket, key)
            .await?
            .ok_or_else(|| ArchiveStoreError::new("S3 GetObject (archive)", "NoSuchKey"))
    }
}
