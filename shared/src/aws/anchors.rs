//! The S3 anchor of the global log: every signed checkpoint of the service-wide log of tenant
//! heads is written to a bucket with Object Lock in compliance mode, where nobody, the account's
//! root and a database administrator included, can change or delete it before its retention
//! ends. The verifier compares the database's global checkpoints with these copies.
//!
//! One object per checkpoint, `global/<tree size, 20 digits>.note`, holding the signed note
//! byte for byte. The zero-padded size makes the keys sort by size, so "anchors after size N"
//! is one `ListObjectsV2` with `StartAfter`.

use super::s3::{self, aws};
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime as S3DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use std::time::{Duration, SystemTime};

/// Where the anchor of the global checkpoint at `tree_size` is stored in the anchor bucket.
pub fn anchor_key(tree_size: u64) -> String {
    format!("{ANCHOR_PREFIX}{tree_size:020}.note")
}

const ANCHOR_PREFIX: &str = "global/";

pub use super::s3::S3Error as AnchorError;

/// The anchor bucket and the retention each new anchor gets.
#[derive(Clone, Debug)]
pub struct AnchorStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    retention: Duration,
}

impl AnchorStore {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>, retention_days: u32) -> Self {
        AnchorStore {
            client: s3::client(config),
            bucket: bucket.into(),
            retention: Duration::from_secs(u64::from(retention_days) * 86_400),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of the anchor of the checkpoint at `tree_size`.
    pub fn key(&self, tree_size: u64) -> String {
        anchor_key(tree_size)
    }

    fn size_of(key: &str) -> Option<u64> {
        key.strip_prefix(ANCHOR_PREFIX)?.strip_suffix(".note")?.parse().ok()
    }

    /// Writes the anchor of a signed note under compliance-mode retention. Writing the same
    /// checkpoint again is harmless: the bucket is versioned and the first version stays locked.
    pub async fn put(&self, tree_size: u64, note: &str) -> Result<(), AnchorError> {
        let until = SystemTime::now() + self.retention;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(tree_size))
            .content_type("text/plain; charset=utf-8")
            .body(ByteStream::from(note.as_bytes().to_vec()))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(S3DateTime::from(until))
            .send()
            .await
            .map_err(aws("S3 PutObject (anchor)"))?;
        Ok(())
    }

    /// The anchored note at `tree_size`, if one was written.
    pub async fn get(&self, tree_size: u64) -> Result<Option<String>, AnchorError> {
        let Some(bytes) = s3::get(&self.client, &self.bucket, &self.key(tree_size)).await? else { return Ok(None) };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| AnchorError::new("S3 GetObject (anchor)", "the note is not UTF-8"))
    }

    /// The largest anchored tree size above `tree_size`, if any: an anchor the database has no
    /// checkpoint for means the database lost signed history.
    pub async fn latest_after(&self, tree_size: Option<u64>) -> Result<Option<u64>, AnchorError> {
        let mut start_after = tree_size.map(|size| self.key(size));
        let mut latest = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(ANCHOR_PREFIX)
                .set_start_after(start_after.clone())
                .send()
                .await
                .map_err(aws("S3 ListObjectsV2 (anchors)"))?;
            let keys: Vec<String> = page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
            latest = keys.iter().filter_map(|k| Self::size_of(k)).max().or(latest);
            match (page.is_truncated(), keys.last()) {
                (Some(true), Some(last)) => start_after = Some(last.clone()),
                _ => return Ok(latest),
            }
        }
    }
}
