//! Creates the AWS resources the service uses on the local endpoint, idempotently: each resource
//! is found by its alias or name first and created only when missing. The names are the ones
//! `template.yaml` gives the same resources in AWS.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};

/// The alias of the KMS key that signs checkpoints (ECC_NIST_P256, SIGN_VERIFY).
pub const CHECKPOINT_KEY_ALIAS: &str = "alias/audit-log-checkpoints";
/// The alias of the KMS HMAC key API key secrets are MACed with (HMAC_256, GENERATE_VERIFY_MAC).
pub const API_KEY_MAC_KEY_ALIAS: &str = "alias/audit-log-api-keys";
/// The alias of the KMS key the receipt key's private half is encrypted under (SYMMETRIC_DEFAULT).
pub const RECEIPT_KEY_KEK_ALIAS: &str = "alias/audit-log-receipts";
/// The API keys table: partition key `key_id`, GSI `by-tenant` (`tenant_id`, `created_at`).
pub const API_KEYS_TABLE: &str = "audit-log-api-keys";
/// The receipt keys table: partition key `pk`.
pub const RECEIPT_KEYS_TABLE: &str = "audit-log-receipt-keys";

/// The bucket the global log's checkpoints are anchored in: versioned, with Object Lock.
pub const ANCHOR_BUCKET: &str = "audit-log-anchors";

/// The bucket pruned content is archived in.
pub const ARCHIVE_BUCKET: &str = "audit-log-archives";

/// The bucket exports are written to.
pub const EXPORT_BUCKET: &str = "audit-log-exports";
/// The export jobs table: partition key `tenant_id`, sort key `export_id`, and the sparse GSI
/// `by-sweep-at` (`sweep` S, `sweep_at` N; `step` projected) of unfinished jobs.
pub const EXPORTS_TABLE: &str = "audit-log-exports";
/// The tenant console settings table: partition key `pk` (`tenant#<id>` settings and
/// `oidc#<hash>` registrations).
pub const CONSOLE_SETTINGS_TABLE: &str = "audit-log-console-settings";
/// The index queue (outbox rows for the indexer) and its dead-letter queue.
pub const INDEX_QUEUE: &str = "audit-log-index";
/// The export queue (export jobs and their continuations) and its dead-letter queue.
pub const EXPORT_QUEUE: &str = "audit-log-exports";

/// The live tail's connections table: partition key `connection_id`, GSI `by-tenant`
/// (`tenant_id`, `connected_at` N), TTL on `expires_at`.
pub const TAIL_CONNECTIONS_TABLE: &str = "audit-log-tail-connections";
/// The tail queue (outbox rows waking the live tail's passes) and its dead-letter queue.
pub const TAIL_QUEUE: &str = "audit-log-tail";

/// A queue with its dead-letter queue, as the template declares them.
#[derive(Debug, Clone)]
pub struct QueuePair {
    pub url: String,
    pub dlq_url: String,
}

/// What the bootstrap created or found.
#[derive(Debug, Clone)]
pub struct Resources {
    pub checkpoint_key_id: String,
    pub api_key_mac_key_id: String,
    pub receipt_key_kms_key_id: String,
    pub api_keys_table: String,
    pub receipt_keys_table: String,
    pub anchor_bucket: String,
    pub archive_bucket: String,
    pub export_bucket: String,
    pub exports_table: String,
    pub console_settings_table: String,
    pub index_queue: QueuePair,
    pub export_queue: QueuePair,
    pub tail_connections_table: String,
    pub tail_queue: QueuePair,
}

/// Creates (or finds) every resource.
pub async fn bootstrap(config: &SdkConfig) -> Result<Resources> {
    let kms = aws_sdk_kms::Client::new(config);
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let checkpoint_key_id = ensure_key(
        &kms,
        CHECKPOINT_KEY_ALIAS,
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
        "Signs the audit log's checkpoints (local)",
    )
    .await?;
    let api_key_mac_key_id = ensure_key(
        &kms,
        API_KEY_MAC_KEY_ALIAS,
        KeySpec::Hmac256,
        KeyUsageType::GenerateVerifyMac,
        "MACs API key secrets (local)",
    )
    .await?;
    let receipt_key_kms_key_id = ensure_key(
        &kms,
        RECEIPT_KEY_KEK_ALIAS,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
        "Encrypts the receipt signing key (local)",
    )
    .await?;
    let by_tenant =
        Index { name: "by-tenant", hash: "tenant_id", range: ("created_at", ScalarAttributeType::S), include: &[] };
    ensure_table(&dynamodb, API_KEYS_TABLE, "key_id", None, Some(by_tenant)).await?;
    // Only viewer token revocations carry `ttl` (the local endpoint never expires them).
    enable_ttl(&dynamodb, API_KEYS_TABLE, "ttl").await?;
    ensure_table(&dynamodb, RECEIPT_KEYS_TABLE, "pk", None, None).await?;
    ensure_locked_bucket(config, ANCHOR_BUCKET).await?;
    ensure_bucket(config, ARCHIVE_BUCKET).await?;
    ensure_bucket(config, EXPORT_BUCKET).await?;
    ensure_exports_table(config, EXPORTS_TABLE).await?;
    ensure_console_settings_table(config, CONSOLE_SETTINGS_TABLE).await?;
    // Visibility timeouts and receive counts as in template.yaml, shorter for the index queue so
    // that a local outage's retries are seen within seconds.
    let index_queue = ensure_queue_pair(config, INDEX_QUEUE, 10, 5).await?;
    let export_queue = ensure_queue_pair(config, EXPORT_QUEUE, 960, 3).await?;
    ensure_tail_connections_table(config, TAIL_CONNECTIONS_TABLE).await?;
    let tail_queue = ensure_queue_pair(config, TAIL_QUEUE, 10, 5).await?;
    Ok(Resources {
        checkpoint_key_id,
        api_key_mac_key_id,
        receipt_key_kms_key_id,
        api_keys_table: API_KEYS_TABLE.to_owned(),
        receipt_keys_table: RECEIPT_KEYS_TABLE.to_owned(),
        anchor_bucket: ANCHOR_BUCKET.to_owned(),
        archive_bucket: ARCHIVE_BUCKET.to_owned(),
        export_bucket: EXPORT_BUCKET.to_owned(),
        exports_table: EXPORTS_TABLE.to_owned(),
        console_settings_table: CONSOLE_SETTINGS_TABLE.to_owned(),
        index_queue,
        export_queue,
        tail_connections_table: TAIL_CONNECTIONS_TABLE.to_owned(),
        tail_queue,
    })
}

/// Creates a tail connections table (see [`TAIL_CONNECTIONS_TABLE`]) unless it exists, with TTL
/// on `expires_at` as in the template (the local endpoint never expires items; the code checks
/// `expires_at` itself). Tests give each run its own.
pub async fn ensure_tail_connections_table(config: &SdkConfig, name: &str) -> Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let by_tenant =
        Index { name: "by-tenant", hash: "tenant_id", range: ("connected_at", ScalarAttributeType::N), include: &[] };
    ensure_table(&dynamodb, name, "connection_id", None, Some(by_tenant)).await?;
    enable_ttl(&dynamodb, name, "expires_at").await
}

/// Turns on TTL on `attribute` of table `name`, as the template does.
async fn enable_ttl(dynamodb: &aws_sdk_dynamodb::Client, name: &str, attribute: &str) -> Result<()> {
    let ttl =
        aws_sdk_dynamodb::types::TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build()?;
    if let Err(e) = dynamodb.update_time_to_live().table_name(name).time_to_live_specification(ttl).send().await {
        // A second call on a table with TTL already enabled is refused; that is the state wanted.
        tracing::debug!(table = name, error = %e, "UpdateTimeToLive refused (TTL already enabled)");
    }
    Ok(())
}

/// Creates an export jobs table (see [`EXPORTS_TABLE`]) unless it exists. Tests whose sweeps
/// must not see other tests' jobs give each run its own.
pub async fn ensure_exports_table(config: &SdkConfig, name: &str) -> Result<()> {
    let by_sweep_at =
        Index { name: "by-sweep-at", hash: "sweep", range: ("sweep_at", ScalarAttributeType::N), include: &["step"] };
    ensure_table(&aws_sdk_dynamodb::Client::new(config), name, "tenant_id", Some("export_id"), Some(by_sweep_at)).await
}

/// Creates a console settings table (see [`CONSOLE_SETTINGS_TABLE`]) unless it exists. Tests
/// whose tenants register issuers give each run its own.
pub async fn ensure_console_settings_table(config: &SdkConfig, name: &str) -> Result<()> {
    ensure_table(&aws_sdk_dynamodb::Client::new(config), name, "pk", None, None).await
}

/// Creates a plain bucket unless it exists. Tests give each run its own.
pub async fn ensure_bucket(config: &SdkConfig, name: &str) -> Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
    if s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(());
    }
    s3.create_bucket().bucket(name).send().await.with_context(|| format!("S3 CreateBucket {name}"))?;
    Ok(())
}

/// Creates a bucket with Object Lock enabled (which turns versioning on), unless it exists.
/// Retention is set per object by the writer, in compliance mode. Tests give each run its own.
pub async fn ensure_locked_bucket(config: &SdkConfig, name: &str) -> Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
    if s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(());
    }
    s3.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .with_context(|| format!("S3 CreateBucket {name}"))?;
    Ok(())
}

/// Creates a queue and its dead-letter queue `<name>-dlq` unless they exist: messages received
/// `max_receives` times without being deleted move to the DLQ. Tests give each run its own names.
pub async fn ensure_queue_pair(
    config: &SdkConfig,
    name: &str,
    visibility_seconds: u32,
    max_receives: u32,
) -> Result<QueuePair> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(config);
    let dlq_name = format!("{name}-dlq");
    let dlq =
        sqs.create_queue().queue_name(&dlq_name).send().await.with_context(|| format!("SQS CreateQueue {dlq_name}"))?;
    let dlq_url = dlq.queue_url().context("CreateQueue returned no URL")?.to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("SQS GetQueueAttributes {dlq_name}"))?;
    let dlq_arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .context("the DLQ has no ARN")?
        .clone();
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives }).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_seconds.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .with_context(|| format!("SQS CreateQueue {name}"))?;
    Ok(QueuePair { url: queue.queue_url().context("CreateQueue returned no URL")?.to_owned(), dlq_url })
}

/// A global secondary index: a string hash key, a range key of the given type, and the
/// attributes it projects besides the keys (`include`; none listed: all of them).
struct Index<'a> {
    name: &'a str,
    hash: &'a str,
    range: (&'a str, ScalarAttributeType),
    include: &'a [&'a str],
}

/// Creates a PAY_PER_REQUEST table with a string partition key, optionally a string sort key and
/// optionally one GSI, unless it exists.
async fn ensure_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    key: &str,
    sort_key: Option<&str>,
    index: Option<Index<'_>>,
) -> Result<()> {
    if dynamodb.describe_table().table_name(name).send().await.is_ok() {
        return Ok(());
    }
    let typed =
        |n: &str, t: ScalarAttributeType| AttributeDefinition::builder().attribute_name(n).attribute_type(t).build();
    let attribute = |n: &str| typed(n, ScalarAttributeType::S);
    let element = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    let mut create = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(key)?)
        .key_schema(element(key, KeyType::Hash)?);
    if let Some(range) = sort_key {
        create = create.attribute_definitions(attribute(range)?).key_schema(element(range, KeyType::Range)?);
    }
    if let Some(index) = index {
        let (range, range_type) = index.range;
        let projection = if index.include.is_empty() {
            Projection::builder().projection_type(ProjectionType::All).build()
        } else {
            let mut p = Projection::builder().projection_type(ProjectionType::Include);
            for attribute in index.include {
                p = p.non_key_attributes(*attribute);
            }
            p.build()
        };
        create = create
            .attribute_definitions(attribute(index.hash)?)
            .attribute_definitions(typed(range, range_type)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(element(index.hash, KeyType::Hash)?)
                    .key_schema(element(range, KeyType::Range)?)
                    .projection(projection)
                    .build()?,
            );
    }
    create.send().await.with_context(|| format!("DynamoDB CreateTable {name}"))?;
    Ok(())
}

async fn ensure_key(
    kms: &aws_sdk_kms::Client,
    alias: &str,
    spec: KeySpec,
    usage: KeyUsageType,
    description: &str,
) -> Result<String> {
    if let Ok(found) = kms.describe_key().key_id(alias).send().await {
        if let Some(meta) = found.key_metadata() {
            return Ok(meta.key_id().to_owned());
        }
    }
    let created = kms
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .description(description)
        .send()
        .await
        .with_context(|| format!("KMS CreateKey for {alias}"))?;
    let key_id = created.key_metadata().map(|m| m.key_id().to_owned()).context("CreateKey returned no key id")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&key_id)
        .send()
        .await
        .with_context(|| format!("KMS CreateAlias {alias}"))?;
    Ok(key_id)
}
