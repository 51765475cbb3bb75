//! The receipt signing key: an Ed25519 key whose private half exists in plaintext only in the
//! memory of a running function. It is stored in DynamoDB encrypted under a KMS key (the data key
//! pattern: KMS `GenerateDataKey` makes 32 random bytes and returns them with their ciphertext),
//! decrypted once per cold start, so signing a receipt costs no KMS call.
//!
//! Table `audit-log-receipt-keys`, partition key `pk` (S):
//! - `pk = "current"`: `key_id` S, the key in use;
//! - `pk = "key#<key id>"`: `key_id` S, `public_key` B (32 bytes), `ciphertext` B, `created_at` S.
//!
//! The first function instance that finds no current key creates one; concurrent cold starts race
//! on a conditional write of `current` and all end up with the winner's key.

use crate::chain::receipt::{receipt_key_id, sign_receipt, Receipt, ReceiptPayload};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob as DynamoBlob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

const CURRENT: &str = "current";
/// Bound to every encryption and decryption of a receipt key, so the ciphertext cannot be
/// decrypted for another purpose by a role that holds `kms:Decrypt` on the same key.
const ENCRYPTION_CONTEXT: (&str, &str) = ("purpose", "audit-log-receipt-key");

/// Why the receipt key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptKeyError {
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
    #[error("the stored receipt key is malformed: {0}")]
    Corrupt(String),
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> ReceiptKeyError {
    move |e| ReceiptKeyError::Aws { operation, message: super::error_code(&e) }
}

/// A receipt public key as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicReceiptKey {
    pub key_id: String,
    /// Standard base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
    /// True for the key new receipts are signed with.
    pub current: bool,
}

/// Signs receipts with the decrypted key. Cheap to share by reference.
pub struct ReceiptSigner {
    key: SigningKey,
    public: PublicReceiptKey,
}

impl fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptSigner").field("key_id", &self.public.key_id).finish_non_exhaustive()
    }
}

fn key_pk(key_id: &str) -> String {
    format!("key#{key_id}")
}

fn bytes(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Vec<u8>, ReceiptKeyError> {
    match item.get(name) {
        Some(AttributeValue::B(b)) => Ok(b.as_ref().to_vec()),
        _ => Err(ReceiptKeyError::Corrupt(format!("{name} missing"))),
    }
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, ReceiptKeyError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(ReceiptKeyError::Corrupt(format!("{name} missing"))),
    }
}

fn public_from_item(
    item: &HashMap<String, AttributeValue>,
    current: bool,
) -> Result<PublicReceiptKey, ReceiptKeyError> {
    let created_at = DateTime::parse_from_rfc3339(&string(item, "created_at")?)
        .map_err(|_| ReceiptKeyError::Corrupt("created_at".into()))?
        .with_timezone(&Utc);
    Ok(PublicReceiptKey {
        key_id: string(item, "key_id")?,
        public_key: STANDARD.encode(bytes(item, "public_key")?),
        created_at,
        current,
    })
}

impl ReceiptSigner {
    /// Loads the current key (one DynamoDB read and one KMS `Decrypt`), creating it first if
    /// there is none.
    pub async fn load_or_create(config: &SdkConfig, table: &str, kek_key_id: &str) -> Result<Self, ReceiptKeyError> {
        let dynamodb = aws_sdk_dynamodb::Client::new(config);
        let kms = aws_sdk_kms::Client::new(config);
        // Two rounds at most: if another instance wins the race to create the key, the second
        // round loads the winner's.
        for _ in 0..2 {
            if let Some(signer) = Self::load(&dynamodb, &kms, table).await? {
                return Ok(signer);
            }
            Self::create(&dynamodb, &kms, table, kek_key_id).await?;
        }
        Self::load(&dynamodb, &kms, table)
            .await?
            .ok_or_else(|| ReceiptKeyError::Corrupt("the current receipt key vanished after creation".into()))
    }

    async fn get(
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
        pk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, ReceiptKeyError> {
        let out = dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("DynamoDB GetItem"))?;
        Ok(out.item)
    }

    async fn load(
        dynamodb: &aws_sdk_dynamodb::Client,
        kms: &aws_sdk_kms::Client,
        table: &str,
    ) -> Result<Option<Self>, ReceiptKeyError> {
        let Some(current) = Self::get(dynamodb, table, CURRENT).await? else { return Ok(None) };
        let key_id = string(&current, "key_id")?;
        let item = Self::get(dynamodb, table, &key_pk(&key_id))
            .await?
            .ok_or_else(|| ReceiptKeyError::Corrupt(format!("current key {key_id} has no record")))?;
        let plaintext = kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(bytes(&item, "ciphertext")?))
            .encryption_context(ENCRYPTION_CONTEXT.0, ENCRYPTION_CONTEXT.1)
            .send()
            .await
            .map_err(aws("KMS Decrypt"))?;
        let seed: [u8; 32] = plaintext
            .plaintext()
            .map(|p| p.as_ref())
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| ReceiptKeyError::Corrupt("the decrypted key is not 32 bytes".into()))?;
        let key = SigningKey::from_bytes(&seed);
        let public = public_from_item(&item, true)?;
        if public.public_key != STANDARD.encode(key.verifying_key().as_bytes()) || public.key_id != key_id {
            return Err(ReceiptKeyError::Corrupt(format!("key {key_id}: the stored public key does not match")));
        }
        Ok(Some(ReceiptSigner { key, public }))
    }

    async fn create(
        dynamodb: &aws_sdk_dynamodb::Client,
        kms: &aws_sdk_kms::Client,
        table: &str,
        kek_key_id: &str,
    ) -> Result<(), ReceiptKeyError> {
        let data_key = kms
            .generate_data_key()
            .key_id(kek_key_id)
            .number_of_bytes(32)
            .encryption_context(ENCRYPTION_CONTEXT.0, ENCRYPTION_CONTEXT.1)
            .send()
            .await
            .map_err(aws("KMS GenerateDataKey"))?;
        let seed: [u8; 32] = data_key
            .plaintext()
            .map(|p| p.as_ref())
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| ReceiptKeyError::Corrupt("GenerateDataKey returned no 32-byte key".into()))?;
        let ciphertext = data_key
            .ciphertext_blob()
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| ReceiptKeyError::Corrupt("GenerateDataKey returned no ciphertext".into()))?;
        let public: VerifyingKey = SigningKey::from_bytes(&seed).verifying_key();
        let key_id = receipt_key_id(&public);
        dynamodb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(key_pk(&key_id)))
            .item("key_id", AttributeValue::S(key_id.clone()))
            .item("public_key", AttributeValue::B(DynamoBlob::new(public.as_bytes().to_vec())))
            .item("ciphertext", AttributeValue::B(DynamoBlob::new(ciphertext)))
            .item("created_at", AttributeValue::S(Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)))
            .send()
            .await
            .map_err(aws("DynamoDB PutItem"))?;
        let made_current = dynamodb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(CURRENT.into()))
            .item("key_id", AttributeValue::S(key_id.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match made_current {
            Ok(_) => {
                tracing::info!(%key_id, "created the receipt signing key");
                Ok(())
            }
            // Another instance made its key current first; ours stays unused.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(aws("DynamoDB PutItem")(e)),
        }
    }

    /// Signs a receipt for an accepted entry.
    pub fn sign(&self, payload: &ReceiptPayload) -> Receipt {
        sign_receipt(payload, &self.key)
    }

    pub fn public_key(&self) -> &PublicReceiptKey {
        &self.public
    }
}

/// Every receipt key in the table, the current one first, then newest first. Keys are never
/// deleted, so receipts signed before a rotation stay verifiable.
pub async fn list_receipt_keys(config: &SdkConfig, table: &str) -> Result<Vec<PublicReceiptKey>, ReceiptKeyError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let items: Vec<HashMap<String, AttributeValue>> = dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws("DynamoDB Scan"))?;
    let current = items
        .iter()
        .find(|i| matches!(i.get("pk"), Some(AttributeValue::S(pk)) if pk == CURRENT))
        .map(|i| string(i, "key_id"))
        .transpose()?;
    let mut keys = items
        .iter()
        .filter(|i| matches!(i.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("key#")))
        .map(|i| {
            let key_id = string(i, "key_id")?;
            public_from_item(i, current.as_deref() == Some(key_id.as_str()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    keys.sort_by(|a, b| b.current.cmp(&a.current).then(b.created_at.cmp(&a.created_at)));
    Ok(keys)
}
