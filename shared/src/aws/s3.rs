//! The bucket on S3.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::{sdk_error, transient_error};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::manifest::sha256_hex;
use crate::ports::{ObjectInfo, ObjectStore};

/// Objects above this size are uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Size of one part (S3: at least 5 MiB, but for the last part; at most 10 000 parts).
pub const DEFAULT_PART_SIZE: usize = 16 * 1024 * 1024;

/// How [`S3Store::put`] uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadSettings {
    /// Objects larger than this go through a multipart upload.
    pub multipart_threshold: u64,
    /// Bytes per part of a multipart upload (at least 5 MiB).
    pub part_size: usize,
    /// Keys per `ListObjectsV2` page (`None`: the service's 1000).
    pub list_page_size: Option<i32>,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            list_page_size: None,
        }
    }
}

impl UploadSettings {
    /// Defaults, overridden by [`crate::config::S3_MULTIPART_THRESHOLD_ENV`] and
    /// [`crate::config::S3_PART_SIZE_ENV`].
    pub fn from_settings(settings: &Settings) -> Self {
        let d = Self::default();
        Self {
            multipart_threshold: settings
                .s3_multipart_threshold
                .unwrap_or(d.multipart_threshold),
            part_size: settings.s3_part_size.unwrap_or(d.part_size),
            ..d
        }
    }
}

/// The bucket of design.md §2 on S3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    upload: UploadSettings,
}

impl S3Store {
    /// The store over `bucket` with a client built by the caller.
    pub fn new(client: Client, bucket: impl Into<String>, upload: UploadSettings) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            upload,
        }
    }

    /// The store over `bucket`, its client built from the shared SDK configuration
    /// (path-style addressing when an endpoint is set).
    pub fn from_conf(
        sdk: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        upload: UploadSettings,
    ) -> Self {
        // Path-style addressing works with every endpoint (local servers have no DNS per bucket).
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self::new(Client::from_conf(conf), bucket, upload)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client, for calls the port does not offer.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the bucket (tests and local servers; on AWS the template owns it).
    pub async fn create_bucket(&self) -> Result<()> {
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        // Outside us-east-1 the region must be named.
        if let Some(region) = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            && region != "us-east-1"
        {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        region.as_str(),
                    ))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("s3", "CreateBucket", e)),
        }
    }

    async fn put_multipart(&self, key: &str, bytes: Bytes) -> Result<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .metadata(SHA256_METADATA, sha256_hex(&bytes))
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Error::Invariant("CreateMultipartUpload answered no upload id".into()))?
            .to_string();
        match self.upload_parts(key, &upload_id, bytes).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave no orphaned parts behind (the bucket's lifecycle rule is the backstop).
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(&self, key: &str, upload_id: &str, bytes: Bytes) -> Result<()> {
        let size = self.upload.part_size.max(1);
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1i32;
        while offset < bytes.len() {
            let end = (offset + size).min(bytes.len());
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(bytes.slice(offset..end)))
                .send()
                .await
                .map_err(|e| s3_error("UploadPart", key, e))?;
            let mut done = CompletedPart::builder().part_number(number);
            if let Some(tag) = part.e_tag() {
                done = done.e_tag(tag);
            }
            parts.push(done.build());
            offset = end;
            number += 1;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", key, e))?;
        Ok(())
    }
}

/// An S3 call's error, told apart on purpose: `NoSuchKey` (or a bare 404) is an absent
/// object, `AccessDenied` (or a bare 403) a permission the role lacks on this key, which is
/// neither absent nor retryable; anything else is classified as every AWS error is
/// ([`super::classify`]: `NoSuchBucket` is a configuration error, `SlowDown` transient, …).
fn s3_error<E>(operation: &'static str, resource: &str, e: aws_sdk_s3::error::SdkError<E>) -> Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e
        .as_service_error()
        .and_then(aws_sdk_s3::error::ProvideErrorMetadata::code);
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (code, status) {
        // A HEAD has no body: its 404 and 403 come as `NotFound` and `Forbidden`.
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => Error::NotFound {
            key: resource.to_string(),
        },
        (Some("AccessDenied" | "Forbidden"), _) | (None, Some(403)) => Error::AccessDenied {
            service: "s3",
            operation,
            resource: resource.to_string(),
            message: e
                .as_service_error()
                .and_then(aws_sdk_s3::error::ProvideErrorMetadata::message)
                .unwrap_or("403 Forbidden")
                .to_string(),
        },
        _ => sdk_error("s3", operation, e),
    }
}

/// The user metadata every object the store puts carries: the hex SHA-256 of its bytes, so a
/// fingerprint needs a HEAD, not a download ([`ObjectStore::sha256`]). A copy keeps it.
pub const SHA256_METADATA: &str = "sha256";

/// A key as the `CopySource` header wants it: `/`-separated segments, percent-encoded.
pub fn encode_copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", crate::percent::encode_key(key))
}

impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Bytes> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return Err(s3_error("GetObject", key, e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| transient_error("s3", "GetObject", &e))?;
        Ok(body.into_bytes())
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        if bytes.len() as u64 > self.upload.multipart_threshold {
            return self.put_multipart(key, bytes).await;
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .metadata(SHA256_METADATA, sha256_hex(&bytes))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", key, e))?;
        Ok(())
    }

    async fn sha256(&self, key: &str) -> Result<String> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", key, e))?;
        match head.metadata().and_then(|m| m.get(SHA256_METADATA)) {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(h.to_ascii_lowercase())
            }
            // Put by someone else (a bank's upload, a copy from before): read it.
            _ => Ok(sha256_hex(&self.get(key).await?)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix);
        if let Some(n) = self.upload.list_page_size {
            req = req.max_keys(n);
        }
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("ListObjectsV2", prefix, e))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        match self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(encode_copy_source(&self.bucket, from))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A missing source is `NoSuchKey`; a 403 may be the source or the target.
            Err(e) => Err(s3_error("CopyObject", from, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", key, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_percent_encoded_but_for_slashes() {
        assert_eq!(
            encode_copy_source("b", "landing/bank a/2026-11-20/x+y.csv"),
            "b/landing/bank%20a/2026-11-20/x%2By.csv"
        );
        assert_eq!(
            encode_copy_source("b", "curated/statements/business_date=2026-11-20/p.parquet"),
            "b/curated/statements/business_date%3D2026-11-20/p.parquet"
        );
    }
}
