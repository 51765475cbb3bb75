//! The live tail's connections table in DynamoDB: one item per open WebSocket connection, keyed
//! by `connection_id`, with the GSI `by-tenant` (`tenant_id`, `connection_id`) through which a
//! tenant's wake-up finds its connections.
//!
//! An item holds what the authorizer vouched for at `$connect` (the caller context, as the
//! authorizer answered it), and once the client subscribed, the filter it may see and its cursor:
//! the last seq it has been sent up to. Passes advance the cursor with a conditional write, so
//! of two passes that raced, the one that read an older cursor cannot move it back.
//!
//! Items expire after API Gateway's connection limit (2 hours): `expires_at` is the table's TTL
//! attribute, and because TTL deletes lazily (and the local endpoint never does) every read
//! checks it too and treats an expired item as gone.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::fmt;
use uuid::Uuid;

/// The GSI of connections by tenant.
pub const TENANT_INDEX: &str = "by-tenant";
/// How long an item lives: API Gateway closes a WebSocket connection after 2 hours.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionStoreError {
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
    #[error("a stored connection is malformed: {0}")]
    Corrupt(String),
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> ConnectionStoreError {
    move |e| ConnectionStoreError::Aws { operation, message: super::error_code(&e) }
}

/// A stored connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConnection {
    pub connection_id: String,
    pub tenant: Uuid,
    /// The authorizer's context at `$connect` (string values, as `Caller::to_context` writes it).
    pub context: HashMap<String, String>,
    pub connected_at: i64,
    pub expires_at: i64,
    /// Set once subscribed.
    pub subscription: Option<StoredSubscription>,
}

/// A subscription as stored: the visible filter (`GET /v1/events` parameter names and values,
/// as JSON) and the cursor (the last seq sent up to; -1 before the tenant's first entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub filter_json: String,
    pub cursor: i64,
}

impl StoredConnection {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at <= now
    }
}

/// What a conditional write of a subscription found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOutcome {
    Stored,
    /// The connection already has a subscription.
    AlreadySubscribed,
    /// The connection's item is gone (disconnected or expired).
    Gone,
}

/// The connections table.
#[derive(Debug, Clone)]
pub struct ConnectionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ConnectionStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        ConnectionStore { client: aws_sdk_dynamodb::Client::new(config), table: table.into() }
    }

    /// Records a new connection with the authorizer's context, expiring 2 hours after `now`.
    pub async fn put_connection(
        &self,
        connection_id: &str,
        tenant: Uuid,
        context: &HashMap<String, String>,
        now: i64,
    ) -> Result<(), ConnectionStoreError> {
        let context: HashMap<String, AttributeValue> =
            context.iter().map(|(k, v)| (k.clone(), AttributeValue::S(v.clone()))).collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("connection_id", AttributeValue::S(connection_id.to_owned()))
            .item("tenant_id", AttributeValue::S(tenant.to_string()))
            .item("context", AttributeValue::M(context))
            .item("connected_at", AttributeValue::N(now.to_string()))
            .item("expires_at", AttributeValue::N((now + CONNECTION_TTL_SECONDS).to_string()))
            .send()
            .await
            .map_err(aws("DynamoDB PutItem"))?;
        Ok(())
    }

    /// The connection, unless it is gone or expired (an expired item is deleted on the way).
    pub async fn get(&self, connection_id: &str, now: i64) -> Result<Option<StoredConnection>, ConnectionStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("connection_id", AttributeValue::S(connection_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("DynamoDB GetItem"))?;
        let Some(item) = out.item() else { return Ok(None) };
        let connection = parse(item)?;
        if connection.is_expired(now) {
            self.delete(connection_id).await?;
            return Ok(None);
        }
        Ok(Some(connection))
    }

    /// Stores the subscription of a connection that has none yet.
    pub async fn subscribe(
        &self,
        connection_id: &str,
        subscription: &StoredSubscription,
    ) -> Result<SubscribeOutcome, ConnectionStoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("connection_id", AttributeValue::S(connection_id.to_owned()))
            .update_expression("SET #filter = :filter, #cursor = :cursor")
            .condition_expression("attribute_exists(connection_id) AND attribute_not_exists(#filter)")
            .expression_attribute_names("#filter", "filter")
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_values(":filter", AttributeValue::S(subscription.filter_json.clone()))
            .expression_attribute_values(":cursor", AttributeValue::N(subscription.cursor.to_string()))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(SubscribeOutcome::Stored),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(if c.item().is_some() { SubscribeOutcome::AlreadySubscribed } else { SubscribeOutcome::Gone })
                }
                _ => Err(aws("DynamoDB UpdateItem")(e)),
            },
        }
    }

    /// Moves the cursor from `from` to `to`; false if it is no longer at `from` (another pass
    /// moved it) or the connection is gone.
    pub async fn advance(&self, connection_id: &str, from: i64, to: i64) -> Result<bool, ConnectionStoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("connection_id", AttributeValue::S(connection_id.to_owned()))
            .update_expression("SET #cursor = :to")
            .condition_expression("#cursor = :from")
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
            .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(aws("DynamoDB UpdateItem")(e)),
        }
    }

    pub async fn delete(&self, connection_id: &str) -> Result<(), ConnectionStoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("connection_id", AttributeValue::S(connection_id.to_owned()))
            .send()
            .await
            .map_err(aws("DynamoDB DeleteItem"))?;
        Ok(())
    }

    /// The tenant's connections (through the GSI, every page of it), expired ones included: the
    /// caller decides what to do with those.
    pub async fn by_tenant(&self, tenant: Uuid) -> Result<Vec<StoredConnection>, ConnectionStoreError> {
        let mut connections = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(TENANT_INDEX)
                .key_condition_expression("tenant_id = :tenant")
                .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(aws("DynamoDB Query"))?;
            for item in out.items() {
                connections.push(parse(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(connections)
    }
}

fn parse(item: &HashMap<String, AttributeValue>) -> Result<StoredConnection, ConnectionStoreError> {
    let corrupt = |what: &str| ConnectionStoreError::Corrupt(what.to_owned());
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let n = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let connection_id = s("connection_id").ok_or_else(|| corrupt("connection_id"))?;
    let tenant = s("tenant_id").and_then(|t| Uuid::parse_str(&t).ok()).ok_or_else(|| corrupt("tenant_id"))?;
    let context = item
        .get("context")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| corrupt("context"))?
        .iter()
        .map(|(k, v)| v.as_s().map(|v| (k.clone(), v.clone())).map_err(|_| corrupt("context value")))
        .collect::<Result<HashMap<_, _>, _>>()?;
    let subscription = match (s("filter"), n("cursor")) {
        (Some(filter_json), Some(cursor)) => Some(StoredSubscription { filter_json, cursor }),
        (None, None) => None,
        _ => return Err(corrupt("filter and cursor")),
    };
    Ok(StoredConnection {
        connection_id,
        tenant,
        context,
        connected_at: n("connected_at").ok_or_else(|| corrupt("connected_at"))?,
        expires_at: n("expires_at").ok_or_else(|| corrupt("expires_at"))?,
        subscription,
    })
}
