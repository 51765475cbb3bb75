//! API keys in DynamoDB. A key is `alk_<key id>_<secret>`: the key id (24 hex digits) finds the
//! record, the secret (64 hex digits, 256 random bits) proves possession. The secret is never
//! stored: the record holds only its HMAC-SHA-256 under a KMS HMAC key (`GenerateMac`), checked
//! with `VerifyMac`, so neither a table dump nor this code's memory between requests reveals a
//! usable key.
//!
//! Item layout (table `audit-log-api-keys`, partition key `key_id`; GSI `by-tenant` on
//! `tenant_id` + `created_at`, sparse: platform keys have no `tenant_id`):
//! `key_id` S, `tenant_id` S, `name` S, `scopes` L of S, `mac` B, `created_at` S (RFC 3339),
//! `expires_at` S?, `revoked_at` S?.
//!
//! The same table holds the revocations of viewer tokens (which are otherwise stateless): one
//! item per revoked token, `key_id` `viewer#<tenant id>#<token id>`, `revoked_tenant_id` S,
//! `revoked_at` S and `ttl` N (Unix seconds, a day past the longest a token can live, after which
//! no token with that id can still be valid). They carry no `tenant_id`, so the tenant index,
//! and with it the key listing, never sees them.

use crate::auth::{Caller, Scope};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob as DynamoBlob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use rand::RngCore;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use uuid::Uuid;

/// The prefix of every API key, so leaked keys are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "alk_";
/// The tenant index of the keys table.
pub const TENANT_INDEX: &str = "by-tenant";
const KEY_ID_HEX: usize = 24;
const SECRET_HEX: usize = 64;

/// Why a key operation failed. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("not an API key")]
    Malformed,
    #[error("no such key")]
    Unknown,
    #[error("the key was revoked")]
    Revoked,
    #[error("the key has expired")]
    Expired,
    #[error("the secret does not match the key")]
    BadSecret,
    #[error("API key not found")]
    NotFound,
    #[error("an API key with this id exists")]
    Exists,
    #[error("{0}")]
    InvalidInput(String),
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
    #[error("the stored key record is malformed: {0}")]
    Corrupt(String),
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> ApiKeyError {
    move |e| ApiKeyError::Aws { operation, message: super::error_code(&e) }
}

/// A key as listed: never the secret or its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub tenant_id: Option<Uuid>,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the only time its secret exists outside the client.
#[derive(Clone)]
pub struct NewApiKey {
    /// The full bearer token.
    pub secret: String,
    pub record: ApiKeyRecord,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey").field("secret", &"<redacted>").field("record", &self.record).finish()
    }
}

/// A key made by [`ApiKeyStore::new_key`] and not stored yet: the key and its secret's MAC.
#[derive(Debug, Clone)]
pub struct UnstoredKey {
    pub key: NewApiKey,
    mac: Vec<u8>,
}

/// The keys table and the MAC key.
#[derive(Debug, Clone)]
pub struct ApiKeyStore {
    dynamodb: aws_sdk_dynamodb::Client,
    kms: aws_sdk_kms::Client,
    table: String,
    mac_key_id: String,
}

/// Splits a token into key id and secret, checking the shape only.
fn parse_token(token: &str) -> Result<(&str, &str), ApiKeyError> {
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(ApiKeyError::Malformed)?;
    let (key_id, secret) = rest.split_once('_').ok_or(ApiKeyError::Malformed)?;
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex(key_id, KEY_ID_HEX) && hex(secret, SECRET_HEX) {
        Ok((key_id, secret))
    } else {
        Err(ApiKeyError::Malformed)
    }
}

fn time(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn read_time(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Option<DateTime<Utc>>, ApiKeyError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ApiKeyError::Corrupt(format!("{name} is not a time"))),
        Some(_) => Err(ApiKeyError::Corrupt(format!("{name} is not a string"))),
    }
}

fn record_from_item(item: &HashMap<String, AttributeValue>) -> Result<ApiKeyRecord, ApiKeyError> {
    let string = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(ApiKeyError::Corrupt(format!("{name} missing"))),
    };
    let tenant_id = match item.get("tenant_id") {
        Some(AttributeValue::S(s)) => Some(Uuid::parse_str(s).map_err(|_| ApiKeyError::Corrupt("tenant_id".into()))?),
        _ => None,
    };
    let scopes = match item.get("scopes") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| v.as_s().ok().and_then(|s| s.parse().ok()).ok_or_else(|| ApiKeyError::Corrupt("scopes".into())))
            .collect::<Result<Vec<Scope>, _>>()?,
        _ => return Err(ApiKeyError::Corrupt("scopes missing".into())),
    };
    Ok(ApiKeyRecord {
        key_id: string("key_id")?,
        tenant_id,
        name: string("name")?,
        scopes,
        created_at: read_time(item, "created_at")?.ok_or_else(|| ApiKeyError::Corrupt("created_at missing".into()))?,
        expires_at: read_time(item, "expires_at")?,
        revoked_at: read_time(item, "revoked_at")?,
    })
}

impl ApiKeyStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>, mac_key_id: impl Into<String>) -> Self {
        ApiKeyStore {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            table: table.into(),
            mac_key_id: mac_key_id.into(),
        }
    }

    /// Creates a key. `tenant` is `None` only for platform keys, which must have exactly the
    /// platform scope.
    pub async fn create(
        &self,
        tenant: Option<Uuid>,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewApiKey, ApiKeyError> {
        let key = self.new_key(tenant, None, name, scopes, expires_at).await?;
        self.store(&key).await?;
        Ok(key.key)
    }

    /// A new key with a fresh secret and its MAC, not stored yet (see [`ApiKeyStore::store`]).
    /// `key_id` is new unless given: a retried creation issues a fresh secret for the key id
    /// it recorded the first time.
    pub async fn new_key(
        &self,
        tenant: Option<Uuid>,
        key_id: Option<&str>,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<UnstoredKey, ApiKeyError> {
        let platform = scopes.contains(&Scope::Platform);
        if scopes.is_empty() || tenant.is_none() != platform || (platform && scopes.len() != 1) {
            return Err(ApiKeyError::InvalidInput(
                "a key has scopes; only a platform key has no tenant, and it has only the platform scope".into(),
            ));
        }
        let mut rng = rand::rngs::OsRng;
        let key_id = match key_id {
            Some(id) if id.len() == KEY_ID_HEX && id.bytes().all(|b| b.is_ascii_hexdigit()) => id.to_owned(),
            Some(_) => return Err(ApiKeyError::InvalidInput("not a key id".into())),
            None => {
                let mut id = [0u8; KEY_ID_HEX / 2];
                rng.fill_bytes(&mut id);
                hex::encode(id)
            }
        };
        let mut secret = [0u8; SECRET_HEX / 2];
        rng.fill_bytes(&mut secret);
        let secret_hex = hex::encode(secret);
        let mac = self.mac(&secret_hex).await?;
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let record = ApiKeyRecord {
            key_id: key_id.clone(),
            tenant_id: tenant,
            name: name.to_owned(),
            scopes,
            // Stored with microseconds, so a record read back equals the one returned here.
            created_at: Utc::now().trunc_subsecs(6),
            expires_at: expires_at.map(|t| t.trunc_subsecs(6)),
            revoked_at: None,
        };
        Ok(UnstoredKey { key: NewApiKey { secret: format!("{TOKEN_PREFIX}{key_id}_{secret_hex}"), record }, mac })
    }

    /// Stores a new key; a key id that exists already is [`ApiKeyError::Exists`].
    pub async fn store(&self, key: &UnstoredKey) -> Result<(), ApiKeyError> {
        let record = &key.key.record;
        let mut item = HashMap::from([
            ("key_id".to_owned(), AttributeValue::S(record.key_id.clone())),
            ("name".to_owned(), AttributeValue::S(record.name.clone())),
            (
                "scopes".to_owned(),
                AttributeValue::L(record.scopes.iter().map(|s| AttributeValue::S(s.as_str().into())).collect()),
            ),
            ("mac".to_owned(), AttributeValue::B(DynamoBlob::new(key.mac.clone()))),
            ("created_at".to_owned(), time(record.created_at)),
        ]);
        if let Some(tenant) = record.tenant_id {
            item.insert("tenant_id".into(), AttributeValue::S(tenant.to_string()));
        }
        if let Some(t) = record.expires_at {
            item.insert("expires_at".into(), time(t));
        }
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(key_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(ApiKeyError::Exists)
            }
            Err(e) => Err(aws("DynamoDB PutItem")(e)),
        }
    }

    /// Gives an existing key of `tenant` the secret of `key` (same key id), if the key is not
    /// revoked and was created after `created_after`: the retry of a creation whose answer was
    /// lost, so the secret the client never received stops working and the new one starts.
    /// Otherwise `NotFound`.
    pub async fn replace_secret(&self, key: &UnstoredKey, created_after: DateTime<Utc>) -> Result<(), ApiKeyError> {
        let record = &key.key.record;
        let tenant = record.tenant_id.ok_or(ApiKeyError::NotFound)?;
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("key_id", AttributeValue::S(record.key_id.clone()))
            .condition_expression(
                "attribute_exists(key_id) AND tenant_id = :t AND attribute_not_exists(revoked_at) AND created_at > :after",
            )
            .update_expression("SET mac = :mac")
            .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
            .expression_attribute_values(":after", time(created_after))
            .expression_attribute_values(":mac", AttributeValue::B(DynamoBlob::new(key.mac.clone())))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(ApiKeyError::NotFound)
            }
            Err(e) => Err(aws("DynamoDB UpdateItem")(e)),
        }
    }

    async fn mac(&self, secret: &str) -> Result<Vec<u8>, ApiKeyError> {
        let out = self
            .kms
            .generate_mac()
            .key_id(&self.mac_key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(secret.as_bytes()))
            .send()
            .await
            .map_err(aws("KMS GenerateMac"))?;
        Ok(out.mac().map(|m| m.as_ref().to_vec()).unwrap_or_default())
    }

    /// The tenant's keys, oldest first.
    pub async fn list(&self, tenant: Uuid) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .dynamodb
            .query()
            .table_name(&self.table)
            .index_name(TENANT_INDEX)
            .key_condition_expression("tenant_id = :t")
            .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws("DynamoDB Query"))?;
        items.iter().map(record_from_item).collect()
    }

    /// Revokes a key of `tenant`. Revoking twice keeps the first time; another tenant's key, or
    /// an unknown one, is `NotFound`.
    pub async fn revoke(&self, tenant: Uuid, key_id: &str) -> Result<ApiKeyRecord, ApiKeyError> {
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("key_id", AttributeValue::S(key_id.to_owned()))
            .condition_expression("attribute_exists(key_id) AND tenant_id = :t")
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
            .expression_attribute_values(":now", time(Utc::now()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => record_from_item(out.attributes().ok_or(ApiKeyError::NotFound)?),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(ApiKeyError::NotFound)
            }
            Err(e) => Err(aws("DynamoDB UpdateItem")(e)),
        }
    }

    /// Revokes viewer token `token_id` of `tenant` and returns when it was first revoked: the id
    /// is the token's own (any id is accepted, since nothing records the tokens issued).
    pub async fn revoke_viewer_token(&self, tenant: Uuid, token_id: &str) -> Result<DateTime<Utc>, ApiKeyError> {
        let now = Utc::now();
        let forget_at = now.timestamp() + 2 * crate::aws::viewer_tokens::MAX_LIFETIME_SECONDS;
        let out = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("key_id", AttributeValue::S(viewer_revocation_key(tenant, token_id)))
            .update_expression(
                "SET revoked_at = if_not_exists(revoked_at, :now), revoked_tenant_id = :t, #ttl = if_not_exists(#ttl, :ttl)",
            )
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", time(now))
            .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(forget_at.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(aws("DynamoDB UpdateItem"))?;
        match out.attributes().and_then(|a| a.get("revoked_at")) {
            Some(AttributeValue::S(t)) => DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiKeyError::Corrupt("revoked_at".into())),
            _ => Err(ApiKeyError::Corrupt("revoked_at missing".into())),
        }
    }

    /// Whether viewer token `token_id` of `tenant` was revoked.
    pub async fn viewer_token_revoked(&self, tenant: Uuid, token_id: &str) -> Result<bool, ApiKeyError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("key_id", AttributeValue::S(viewer_revocation_key(tenant, token_id)))
            .consistent_read(true)
            .projection_expression("key_id")
            .send()
            .await
            .map_err(aws("DynamoDB GetItem"))?;
        Ok(out.item().is_some())
    }

    /// Checks a bearer token: a well-formed key that exists, is neither revoked nor expired, and
    /// whose secret KMS confirms.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiKeyError> {
        let (key_id, secret) = parse_token(token)?;
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("key_id", AttributeValue::S(key_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("DynamoDB GetItem"))?;
        let item = out.item().ok_or(ApiKeyError::Unknown)?;
        let mac = match item.get("mac") {
            Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
            _ => return Err(ApiKeyError::Corrupt("mac missing".into())),
        };
        let verified = self
            .kms
            .verify_mac()
            .key_id(&self.mac_key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(secret.as_bytes()))
            .mac(Blob::new(mac))
            .send()
            .await;
        match verified {
            Ok(out) if out.mac_valid() => {}
            Ok(_) => return Err(ApiKeyError::BadSecret),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_kms_invalid_mac_exception()) => {
                return Err(ApiKeyError::BadSecret)
            }
            Err(e) => return Err(aws("KMS VerifyMac")(e)),
        }
        let record = record_from_item(item)?;
        if record.revoked_at.is_some() {
            return Err(ApiKeyError::Revoked);
        }
        if record.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(ApiKeyError::Expired);
        }
        Ok(Caller::api_key(record.key_id, record.tenant_id, record.scopes))
    }
}

/// The item of a viewer token's revocation; the tenant is part of it, so one tenant's admin can
/// never revoke (or learn anything of) another's tokens.
fn viewer_revocation_key(tenant: Uuid, token_id: &str) -> String {
    format!("viewer#{tenant}#{token_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_tokens() {
        let id = "0123456789abcdef01234567";
        let secret = "ab".repeat(32);
        assert_eq!(parse_token(&format!("alk_{id}_{secret}")).unwrap(), (id, secret.as_str()));
        for bad in [
            String::new(),
            "alk_".into(),
            format!("{id}_{secret}"),
            format!("alk_{id}{secret}"),
            format!("alk_{id}_{}", &secret[1..]),
            format!("alk_{}_{secret}", id.to_uppercase()),
            format!("alk_{id}_{secret}x"),
            format!("alk_{id}_{}é", &secret[2..]),
        ] {
            assert!(matches!(parse_token(&bad), Err(ApiKeyError::Malformed)), "{bad:?}");
        }
    }

    #[test]
    fn debug_of_a_new_key_redacts_the_secret() {
        let key = NewApiKey {
            secret: "alk_supersecret".into(),
            record: ApiKeyRecord {
                key_id: "k".into(),
                tenant_id: None,
                name: "n".into(),
                scopes: vec![Scope::Platform],
                created_at: Utc::now(),
                expires_at: None,
                revoked_at: None,
            },
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
