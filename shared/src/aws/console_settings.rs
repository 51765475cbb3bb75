//! Tenant console settings in DynamoDB (table `audit-log-console-settings`, partition key `pk`),
//! read by the authorizer (an OIDC token's registration), the admin function and the console
//! function. Two kinds of item:
//!
//! - `tenant#<tenant id>`: `settings` S (the settings as JSON, as `service::console_settings`
//!   writes them), `version` N (1 for the first settings, +1 on every change),
//!   `recorded_version` N (the last version whose change is recorded in the tenant's chain) and
//!   `oidc_key` S? (the registration item this tenant holds).
//! - `oidc#<hex SHA-256 of issuer, NUL, client id>`: the tenant that registered this (issuer,
//!   client id) pair and the registration as JSON (`registration` S). The authorizer finds a
//!   token's tenant with one `GetItem` on it, and the pair is unique across tenants: a tenant
//!   takes the item only if it is free or already its own, in the same transaction that changes
//!   its settings.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleSettingsError {
    /// The settings changed since they were read (a concurrent change): read and retry.
    #[error("the console settings changed concurrently")]
    Changed,
    /// Another tenant registered this issuer and client id.
    #[error("this issuer and client_id are registered by another tenant")]
    RegisteredElsewhere,
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
    #[error("the stored console settings are malformed: {0}")]
    Corrupt(String),
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> ConsoleSettingsError {
    move |e| ConsoleSettingsError::Aws { operation, message: super::error_code(&e) }
}

/// A tenant's settings item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSettings {
    pub settings: String,
    pub version: u64,
    pub recorded_version: u64,
    pub oidc_key: Option<String>,
}

/// An OIDC registration as the authorizer finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistration {
    pub tenant_id: Uuid,
    pub registration: String,
}

/// The change of a tenant's settings from `expected_version` to the next.
#[derive(Debug, Clone)]
pub struct SettingsWrite<'a> {
    pub settings: &'a str,
    pub expected_version: u64,
    /// The registration item the tenant holds now (released if not kept).
    pub old_oidc_key: Option<&'a str>,
    /// The registration the new settings hold: its key and JSON.
    pub oidc: Option<(String, &'a str)>,
}

/// The console settings table.
#[derive(Debug, Clone)]
pub struct ConsoleSettingsStore {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

fn tenant_key(tenant: Uuid) -> AttributeValue {
    AttributeValue::S(format!("tenant#{tenant}"))
}

/// The key of the registration item of (issuer, client id).
pub fn registration_key(issuer: &str, client_id: &str) -> String {
    let digest = Sha256::new().chain_update(issuer).chain_update([0u8]).chain_update(client_id).finalize();
    format!("oidc#{}", hex::encode(digest))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, ConsoleSettingsError> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| ConsoleSettingsError::Corrupt(name.to_owned())),
        Some(_) => Err(ConsoleSettingsError::Corrupt(format!("{name} is not a number"))),
    }
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, ConsoleSettingsError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(ConsoleSettingsError::Corrupt(format!("{name} missing"))),
    }
}

impl ConsoleSettingsStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        ConsoleSettingsStore { dynamodb: aws_sdk_dynamodb::Client::new(config), table: table.into() }
    }

    /// The tenant's settings item, if it has one.
    pub async fn get(&self, tenant: Uuid) -> Result<Option<StoredSettings>, ConsoleSettingsError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", tenant_key(tenant))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("DynamoDB GetItem"))?;
        let Some(item) = out.item() else { return Ok(None) };
        Ok(Some(StoredSettings {
            settings: string(item, "settings")?,
            version: number(item, "version")?,
            recorded_version: number(item, "recorded_version")?,
            oidc_key: string(item, "oidc_key").ok(),
        }))
    }

    /// The registration of (issuer, client id), if a tenant made one.
    pub async fn registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Option<StoredRegistration>, ConsoleSettingsError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(registration_key(issuer, client_id)))
            .send()
            .await
            .map_err(aws("DynamoDB GetItem"))?;
        let Some(item) = out.item() else { return Ok(None) };
        let tenant_id = Uuid::parse_str(&string(item, "tenant_id")?)
            .map_err(|_| ConsoleSettingsError::Corrupt("tenant_id".into()))?;
        Ok(Some(StoredRegistration { tenant_id, registration: string(item, "registration")? }))
    }

    /// Writes the tenant's next settings version in one transaction: the settings item (only
    /// if still at `expected_version`), the registration item (only if free or the tenant's
    /// own) and the release of a registration the tenant no longer holds.
    pub async fn put(&self, tenant: Uuid, write: &SettingsWrite<'_>) -> Result<(), ConsoleSettingsError> {
        let tenant_text = AttributeValue::S(tenant.to_string());
        let next = write.expected_version + 1;
        let mut settings_item = HashMap::from([
            ("pk".to_owned(), tenant_key(tenant)),
            ("settings".to_owned(), AttributeValue::S(write.settings.to_owned())),
            ("version".to_owned(), AttributeValue::N(next.to_string())),
            ("recorded_version".to_owned(), AttributeValue::N(write.expected_version.to_string())),
        ]);
        if let Some((key, _)) = &write.oidc {
            settings_item.insert("oidc_key".into(), AttributeValue::S(key.clone()));
        }
        let (condition, values) = if write.expected_version == 0 {
            ("attribute_not_exists(pk)", HashMap::new())
        } else {
            ("version = :v", HashMap::from([(":v".to_owned(), AttributeValue::N(write.expected_version.to_string()))]))
        };
        let put_settings = Put::builder()
            .table_name(&self.table)
            .set_item(Some(settings_item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(|e| ConsoleSettingsError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(put_settings).build()];
        if let Some((key, registration)) = &write.oidc {
            let put = Put::builder()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(key.clone()))
                .item("tenant_id", tenant_text.clone())
                .item("registration", AttributeValue::S((*registration).to_owned()))
                .condition_expression("attribute_not_exists(pk) OR tenant_id = :t")
                .expression_attribute_values(":t", tenant_text.clone())
                .build()
                .map_err(|e| ConsoleSettingsError::Corrupt(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let kept = write.oidc.as_ref().map(|(k, _)| k.as_str());
        if let Some(old) = write.old_oidc_key.filter(|old| Some(*old) != kept) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(old.to_owned()))
                .condition_expression("attribute_not_exists(pk) OR tenant_id = :t")
                .expression_attribute_values(":t", tenant_text.clone())
                .build()
                .map_err(|e| ConsoleSettingsError::Corrupt(e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        let result = self.dynamodb.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                let reasons: Vec<Option<String>> = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                        c.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
                    }
                    _ => Vec::new(),
                };
                let failed =
                    |i: usize| reasons.get(i).cloned().flatten().is_some_and(|c| c == "ConditionalCheckFailed");
                if failed(0) {
                    Err(ConsoleSettingsError::Changed)
                } else if write.oidc.is_some() && failed(1) {
                    Err(ConsoleSettingsError::RegisteredElsewhere)
                } else {
                    Err(aws("DynamoDB TransactWriteItems")(e))
                }
            }
        }
    }

    /// Notes that `version`'s change is recorded in the chain (a later version's note stays).
    pub async fn mark_recorded(&self, tenant: Uuid, version: u64) -> Result<(), ConsoleSettingsError> {
        let update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("pk", tenant_key(tenant))
            .update_expression("SET recorded_version = :v")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(recorded_version) OR recorded_version < :v)",
            )
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(aws("DynamoDB UpdateItem")(e)),
        }
    }
}
