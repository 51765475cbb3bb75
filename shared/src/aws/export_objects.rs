//! The export bucket: `exports/<tenant>/<export id>/` holds an export's data, proof and manifest
//! (docs/FORMATS.md, "Export bundle"). Data and proof are written as S3 multipart uploads, part
//! by part, so memory stays bounded whatever the export's size, and an upload can be continued
//! by a later run. Clients download through presigned GET URLs.

use super::s3::{self, aws, S3Error};
use aws_config::SdkConfig;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ExportBucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// A presigned download.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Download {
    pub url: String,
    pub expires_at: String,
}

impl ExportBucket {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        ExportBucket { client: s3::client(config), bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The folder of one export.
    pub fn prefix(tenant: Uuid, export: Uuid) -> String {
        format!("exports/{tenant}/{export}/")
    }

    pub async fn create_upload(&self, key: &str, content_type: &str) -> Result<String, S3Error> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(aws("S3 CreateMultipartUpload"))?;
        out.upload_id().map(str::to_owned).ok_or_else(|| S3Error::new("S3 CreateMultipartUpload", "no upload id"))
    }

    /// Uploads part `number` (1-based) and returns its ETag. Uploading a number again replaces
    /// that part, so a run that repeats a part after a crash leaves the same object.
    pub async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Vec<u8>) -> Result<String, S3Error> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(aws("S3 UploadPart"))?;
        out.e_tag().map(str::to_owned).ok_or_else(|| S3Error::new("S3 UploadPart", "no ETag"))
    }

    /// Completes the upload from its parts' ETags, in part order (part `i + 1` is `etags[i]`).
    pub async fn complete_upload(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), S3Error> {
        let parts = etags
            .iter()
            .enumerate()
            .map(|(i, etag)| CompletedPart::builder().part_number(i as i32 + 1).e_tag(etag).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(aws("S3 CompleteMultipartUpload"))?;
        Ok(())
    }

    /// Abandons an upload (a failed export); its parts are deleted.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(aws("S3 AbortMultipartUpload"))?;
        Ok(())
    }

    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        s3::put(&self.client, &self.bucket, key, body, content_type).await
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        s3::get(&self.client, &self.bucket, key).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(aws("S3 DeleteObject"))?;
        Ok(())
    }

    /// A presigned GET URL for `key`, valid for `ttl`.
    pub async fn presign(&self, key: &str, ttl: Duration) -> Result<Download, S3Error> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| S3Error::new("S3 presign", e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| S3Error::new("S3 presign", e.to_string()))?;
        let expires = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        Ok(Download { url: request.uri().to_owned(), expires_at: crate::chain::event::format_timestamp(&expires) })
    }
}
