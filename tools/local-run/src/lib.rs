//! The local run: the API's functions behind a local API Gateway on loopback, over the real local
//! services (PostgreSQL, the local AWS endpoint), configured through the same environment
//! variables the functions read in AWS. `main.rs` starts it for a developer; tests start it too.

pub mod gateway;
pub mod queues;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use base64::Engine;
use gateway::Gateway;
use localstack::bootstrap::Resources;
use shared::api::{router, Function};
use shared::aws::anchors::AnchorStore;
use shared::aws::api_keys::ApiKeyStore;
use shared::aws::export_jobs::ExportJobStore;
use shared::aws::export_objects::ExportBucket;
use shared::aws::kms::KmsSigner;
use shared::aws::queues::Queue;
use shared::config::Env;
use shared::runtime::{api_state, store_pool, ApiSettings};
use shared::search::OpenSearch;
use shared::service::authorizer::Authorizer;
use shared::service::checkpoint::run_scheduled;
use shared::service::export::{sweep_stalled, ExportWorker};
use shared::service::indexing::{run_relay, RelaySettings};
use shared::service::verify::{run_scheduled_verifier, CheckpointKey};
use shared::signer::CheckpointSigner;
use shared::store::pool::StorePool;
use std::collections::HashMap;
use std::time::Duration;

/// The checkpoint origin of the local run.
pub const LOCAL_ORIGIN: &str = "audit.localhost/log";

/// The environment the functions get, as `template.yaml` sets it in AWS, pointing at local
/// resources. `database_url` is the service login's connection string, `maintenance_url` the
/// maintenance login's (erasure).
pub fn function_env(database_url: &str, maintenance_url: &str, resources: &Resources) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("MAINTENANCE_DATABASE_URL", maintenance_url.to_owned()),
        ("DATABASE_POOL_SIZE", "8".to_owned()),
        ("CHECKPOINT_KEY_ID", resources.checkpoint_key_id.clone()),
        ("CHECKPOINT_ORIGIN", LOCAL_ORIGIN.to_owned()),
        ("API_KEYS_TABLE", resources.api_keys_table.clone()),
        ("API_KEY_MAC_KEY_ID", resources.api_key_mac_key_id.clone()),
        ("RECEIPT_KEYS_TABLE", resources.receipt_keys_table.clone()),
        ("RECEIPT_KEY_KMS_KEY_ID", resources.receipt_key_kms_key_id.clone()),
        ("ANCHOR_BUCKET", resources.anchor_bucket.clone()),
        ("ARCHIVE_BUCKET", resources.archive_bucket.clone()),
        ("INDEX_QUEUE_URL", resources.index_queue.url.clone()),
        ("EXPORTS_TABLE", resources.exports_table.clone()),
        ("EXPORT_QUEUE_URL", resources.export_queue.url.clone()),
        ("EXPORT_BUCKET", resources.export_bucket.clone()),
        ("CONSOLE_SETTINGS_TABLE", resources.console_settings_table.clone()),
        // The local run's OIDC issuer (tools/oidc-issuer) serves plain HTTP on loopback.
        ("OIDC_ALLOW_LOOPBACK_ISSUERS", "true".to_owned()),
        ("EXPORT_URL_SECONDS", "900".to_owned()),
        ("RETENTION_MONTHS", "24".to_owned()),
        ("AUTHORIZER_CACHE_SECONDS", "5".to_owned()),
        ("PUBLISHER_POLICY_CACHE_SECONDS", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Creates a platform key (scope `platform`: creating tenants) and returns its secret.
pub async fn create_platform_key(sdk: &SdkConfig, resources: &Resources) -> Result<String> {
    let keys = ApiKeyStore::new(sdk, &resources.api_keys_table, &resources.api_key_mac_key_id);
    let key = keys.create(None, "local platform key", &[shared::auth::Scope::Platform], None).await?;
    Ok(key.secret)
}

/// Builds the gateway with every function, configured from `env` exactly as the functions are.
pub async fn gateway(env: &HashMap<String, String>, sdk: &SdkConfig) -> Result<Gateway> {
    let lookup = |name: &str| env.get(name).cloned();
    let mut functions = HashMap::new();
    for function in Function::ALL {
        let settings = ApiSettings::from_env(&[function], Env::with_lookup(lookup))?;
        let state = api_state(&settings, sdk).await?;
        functions.insert(function, router(state, &[function]));
    }
    let mut authorizer_env = Env::with_lookup(lookup);
    let keys = shared::config::ApiKeySettings::from_env(&mut authorizer_env);
    let cache_seconds: u64 = authorizer_env.parsed("AUTHORIZER_CACHE_SECONDS", 60);
    let console = shared::config::ConsoleSettingsTable::from_env(&mut authorizer_env);
    let oidc = shared::config::OidcSettings::from_env(&mut authorizer_env);
    authorizer_env.finish()?;
    let registrations = shared::aws::console_settings::ConsoleSettingsStore::new(sdk, &console.table);
    let authorizer =
        Authorizer::new(ApiKeyStore::new(sdk, &keys.table, &keys.mac_key_id), Duration::from_secs(cache_seconds))
            .with_viewer_tokens(shared::aws::viewer_tokens::ViewerTokenMac::new(sdk, &keys.mac_key_id))
            .with_oidc(shared::service::oidc::OidcVerifier::new(registrations, oidc)?);
    Ok(Gateway::new(authorizer, functions))
}

/// What the scheduled functions share: the database pool, the checkpoint key and the anchor
/// bucket, configured from `env` as in AWS.
struct ScheduledClients {
    pool: StorePool,
    key: KmsSigner,
    anchors: AnchorStore,
}

async fn scheduled_clients(env: &HashMap<String, String>, sdk: &SdkConfig) -> Result<ScheduledClients> {
    let mut e = Env::with_lookup(|name: &str| env.get(name).cloned());
    let database = shared::config::DatabaseSettings::from_env(&mut e);
    let checkpoint = shared::config::CheckpointSettings::from_env(&mut e);
    let anchor = shared::config::AnchorSettings::from_env(&mut e);
    e.finish()?;
    let pool = store_pool(&database, sdk).await?;
    let key = KmsSigner::from_config(sdk, &checkpoint.key_id, &checkpoint.origin)
        .await
        .context("loading the checkpoint key")?
        .with_retired_keys(checkpoint.retired_public_keys);
    Ok(ScheduledClients { pool, key, anchors: AnchorStore::new(sdk, &anchor.bucket, anchor.retention_days) })
}

/// Runs the checkpointer once (tests call it instead of waiting for the schedule).
pub async fn checkpoint_once(
    env: &HashMap<String, String>,
    sdk: &SdkConfig,
) -> Result<shared::service::checkpoint::ScheduledRun> {
    let c = scheduled_clients(env, sdk).await?;
    Ok(run_scheduled(&c.pool, &c.key, c.key.key_name(), &c.anchors, 1000).await?)
}

/// Keeps the local run's checkpoint keys verifiable across restarts. The local AWS endpoint
/// forgets its KMS keys, so every start signs with a new key: a key rotation, handled as in AWS.
/// `keys_file` lists (one base64 DER public key a line) every key earlier runs signed with; they
/// become `CHECKPOINT_RETIRED_PUBLIC_KEYS` in `env`, and the current key is added to the file.
/// Returns how many earlier keys are trusted.
pub async fn retire_earlier_checkpoint_keys(
    keys_file: &std::path::Path,
    env: &mut HashMap<String, String>,
    sdk: &SdkConfig,
) -> Result<usize> {
    let key_id = env.get("CHECKPOINT_KEY_ID").context("CHECKPOINT_KEY_ID is not set")?;
    let origin = env.get("CHECKPOINT_ORIGIN").context("CHECKPOINT_ORIGIN is not set")?;
    let current = KmsSigner::from_config(sdk, key_id, origin).await.context("loading the checkpoint key")?;
    let current = base64::engine::general_purpose::STANDARD.encode(current.public_key_der());
    let known = match std::fs::read_to_string(keys_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", keys_file.display())),
    };
    let retired: Vec<&str> = known.lines().map(str::trim).filter(|k| !k.is_empty() && *k != current).collect();
    env.insert("CHECKPOINT_RETIRED_PUBLIC_KEYS".into(), retired.join(","));
    if !known.lines().any(|k| k.trim() == current) {
        let mut all = known.clone();
        all.push_str(&current);
        all.push('\n');
        if let Some(dir) = keys_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(keys_file, all).with_context(|| format!("writing {}", keys_file.display()))?;
    }
    Ok(retired.len())
}

/// Runs the scheduled verifier every `period`, as the EventBridge schedule does in AWS. Runs
/// until the task is aborted.
pub async fn run_verifier_schedule(env: HashMap<String, String>, sdk: SdkConfig, period: Duration) -> Result<()> {
    let c = scheduled_clients(&env, &sdk).await?;
    // The first run waits one period, so the checkpointer has anchored a global checkpoint by
    // the current key first (the local endpoint forgets its bucket and keys between runs).
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticker.tick().await;
        let retired = c.key.retired_public_keys();
        let key = CheckpointKey { name: c.key.key_name(), spki_der: c.key.public_key_der(), retired };
        if let Err(e) = run_scheduled_verifier(&c.pool, Some(key), Some(&c.anchors), 1000).await {
            tracing::warn!(error = %e, "scheduled verification failed");
        }
    }
}

/// Runs the checkpointer every `period`, as the EventBridge schedule does in AWS. Runs until the
/// task is aborted.
pub async fn run_checkpointer_schedule(env: HashMap<String, String>, sdk: SdkConfig, period: Duration) -> Result<()> {
    let c = scheduled_clients(&env, &sdk).await?;
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        if let Err(e) = run_scheduled(&c.pool, &c.key, c.key.key_name(), &c.anchors, 1000).await {
            tracing::warn!(error = %e, "scheduled checkpoint run failed");
        }
    }
}

/// The indexer's clients (pool and OpenSearch), configured from `env` as the function is.
pub async fn indexer_clients(env: &HashMap<String, String>, sdk: &SdkConfig) -> Result<(StorePool, OpenSearch)> {
    let mut e = Env::with_lookup(|name: &str| env.get(name).cloned());
    let database = shared::config::DatabaseSettings::from_env(&mut e);
    let search = shared::config::SearchSettings::required_from_env(&mut e);
    e.finish()?;
    let pool = store_pool(&database, sdk).await?;
    let search = OpenSearch::new(sdk, search.url.as_deref().unwrap_or_default(), &search.index)?;
    Ok((pool, search))
}

/// The export function's worker, configured from `env` as the function is.
pub async fn export_worker(env: &HashMap<String, String>, sdk: &SdkConfig) -> Result<ExportWorker> {
    let mut e = Env::with_lookup(|name: &str| env.get(name).cloned());
    let database = shared::config::DatabaseSettings::from_env(&mut e);
    let exports = shared::config::ExportSettings::from_env(&mut e);
    let settings = shared::runtime::worker_settings(&mut e);
    e.finish()?;
    Ok(ExportWorker {
        pool: store_pool(&database, sdk).await?,
        jobs: ExportJobStore::new(sdk, &exports.table),
        bucket: ExportBucket::new(sdk, &exports.bucket),
        queue: Queue::new(sdk, &exports.queue_url),
        settings,
    })
}

/// How long a local export run may take before it hands on, as the function's 15-minute
/// timeout does in AWS.
pub const EXPORT_RUN_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The index queue's consumer: the indexer behind an event source mapping (batch size 10), until
/// the task is aborted.
pub async fn run_indexer(env: HashMap<String, String>, sdk: SdkConfig) -> Result<()> {
    let (pool, search) = indexer_clients(&env, &sdk).await?;
    let queue = env.get("INDEX_QUEUE_URL").context("INDEX_QUEUE_URL is not set")?;
    let mapping = queues::EventSourceMapping::new(&sdk, queue, 10).await?;
    mapping
        .run(move |event| {
            let (pool, search) = (pool.clone(), search.clone());
            async move { shared::sqs::handle_index_event(&pool, &search, &event).await }
        })
        .await
}

/// The export queue's consumer: the export function behind an event source mapping (batch size
/// 1), until the task is aborted.
pub async fn run_exporter(env: HashMap<String, String>, sdk: SdkConfig, run_limit: Duration) -> Result<()> {
    let worker = export_worker(&env, &sdk).await?;
    let queue = env.get("EXPORT_QUEUE_URL").context("EXPORT_QUEUE_URL is not set")?;
    let mapping = queues::EventSourceMapping::new(&sdk, queue, 1).await?;
    mapping
        .run(move |event| {
            let worker = worker.clone();
            async move {
                let deadline = std::time::Instant::now() + run_limit;
                shared::sqs::handle_export_event(&worker, &event, deadline).await
            }
        })
        .await
}

/// Runs the relay (the outbox relay and the export sweep) every `period`, as its schedule does
/// in AWS, until aborted.
pub async fn run_relay_schedule(env: HashMap<String, String>, sdk: SdkConfig, period: Duration) -> Result<()> {
    let mut e = Env::with_lookup(|name: &str| env.get(name).cloned());
    let database = shared::config::DatabaseSettings::from_env(&mut e);
    let queue = shared::config::IndexQueueSettings::from_env(&mut e);
    let sweep = shared::config::ExportSweepSettings::from_env(&mut e);
    e.finish()?;
    let pool = store_pool(&database, &sdk).await?;
    let queue = Queue::new(&sdk, &queue.queue_url);
    let jobs = ExportJobStore::new(&sdk, &sweep.table);
    let export_queue = Queue::new(&sdk, &sweep.queue_url);
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        if let Err(e) = run_relay(&pool, &queue, RelaySettings::default()).await {
            tracing::warn!(error = %e, "outbox relay run failed");
        }
        if let Err(e) = sweep_stalled(&jobs, &export_queue, chrono::Utc::now().timestamp()).await {
            tracing::warn!(error = %e, "export sweep failed");
        }
    }
}

/// The OpenSearch index template of `infra/opensearch/`, applied by the bootstrap.
pub fn index_template() -> Result<serde_json::Value> {
    serde_json::from_str(include_str!("../../../infra/opensearch/audit-events.json")).context("the index template")
}
