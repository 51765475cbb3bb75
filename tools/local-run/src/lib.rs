//! The local run: the API's functions behind a local API Gateway on loopback, over the real local
//! services (PostgreSQL, the local AWS endpoint), configured through the same environment
//! variables the functions read in AWS. `main.rs` starts it for a developer; tests start it too.

pub mod gateway;
pub mod queues;
pub mod websocket;

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
/// maintenance login's (erasure). The live tail's `TAIL_MANAGEMENT_URL` is the local gateway's
/// own URL, known once it listens: [`with_gateway_url`] adds it.
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
        ("TAIL_QUEUE_URL", resources.tail_queue.url.clone()),
        ("TAIL_CONNECTIONS_TABLE", resources.tail_connections_table.clone()),
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

/// The console's settings for a local run on `port`: the live tail on the same port and the
/// checkpoint keys the browser verifies against (the current one and every retired one, as
/// verifier key strings; the global log is signed with the same keys).
pub async fn console_env(env: &mut HashMap<String, String>, sdk: &SdkConfig, port: u16) -> Result<()> {
    let key_id = env.get("CHECKPOINT_KEY_ID").context("CHECKPOINT_KEY_ID is not set")?;
    let origin = env.get("CHECKPOINT_ORIGIN").context("CHECKPOINT_ORIGIN is not set")?;
    let signer = KmsSigner::from_config(sdk, key_id, origin).await.context("loading the checkpoint key")?;
    let mut keys = vec![shared::chain::checkpoint::verifier_key(signer.key_name(), signer.public_key_der())?];
    let retired = env.get("CHECKPOINT_RETIRED_PUBLIC_KEYS").cloned().unwrap_or_default();
    for der in retired.split(',').filter(|k| !k.is_empty()) {
        let der = base64::engine::general_purpose::STANDARD.decode(der).context("a retired checkpoint key")?;
        keys.push(shared::chain::checkpoint::verifier_key(signer.key_name(), &der)?);
    }
    env.insert("CONSOLE_API_BASE".into(), "/".into());
    env.insert("CONSOLE_TAIL_URL".into(), format!("ws://127.0.0.1:{port}/v1/tail"));
    env.insert("CONSOLE_CHECKPOINT_KEYS".into(), keys.join(","));
    env.insert("CONSOLE_GLOBAL_LOG_KEYS".into(), keys.join(","));
    Ok(())
}

/// A key a newcomer can sign in to the console with: of the local run's own tenant "local
/// console" (created on the first run; its id is kept in `state_dir/console-tenant`, so later runs
/// issue a key for the same tenant with their new platform key), with every tenant scope. Issued
/// through `app`, the gateway, exactly as a client would over HTTP.
pub async fn console_key(app: &axum::Router, platform_key: &str, state_dir: &std::path::Path) -> Result<String> {
    use tower::ServiceExt;
    let call = |path: String, body: serde_json::Value, idempotency: String| {
        let request = axum::http::Request::post(path)
            .header("authorization", format!("Bearer {platform_key}"))
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency)
            .body(axum::body::Body::from(body.to_string()));
        let app = app.clone();
        async move {
            let response = app.oneshot(request?).await?;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if !status.is_success() {
                anyhow::bail!("{status}: {json}");
            }
            Ok::<_, anyhow::Error>(json)
        }
    };
    let file = state_dir.join("console-tenant");
    let tenant = match std::fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => id.trim().to_owned(),
        _ => {
            let created = call(
                "/v1/tenants".into(),
                serde_json::json!({ "name": "local console" }),
                format!("local-console-{}", uuid::Uuid::new_v4()),
            )
            .await
            .context("creating the console's tenant")?;
            let id = created["tenant_id"].as_str().context("the tenant's id")?.to_owned();
            std::fs::write(&file, &id).with_context(|| format!("writing {}", file.display()))?;
            id
        }
    };
    let key = call(
        format!("/v1/tenants/{tenant}/keys"),
        serde_json::json!({ "name": "local console", "scopes": ["events:write", "events:read", "exports", "admin"] }),
        format!("local-console-key-{}", uuid::Uuid::new_v4()),
    )
    .await
    .context("issuing the console's key")?;
    Ok(key["secret"].as_str().context("the key's secret")?.to_owned())
}

/// `env` with the Management API endpoint of the live tail pointing at the gateway serving on
/// `base` (`http://127.0.0.1:<port>`), where AWS has the WebSocket API's stage URL.
pub fn with_gateway_url(mut env: HashMap<String, String>, base: &str) -> HashMap<String, String> {
    env.insert("TAIL_MANAGEMENT_URL".into(), base.to_owned());
    env
}

/// The live tail's service (the `tail` and `tail-fanout` functions' clients), configured from
/// `env` as the functions are.
pub async fn tail_service(
    env: &HashMap<String, String>,
    sdk: &SdkConfig,
) -> Result<shared::service::tail::TailService> {
    let mut e = Env::with_lookup(|name: &str| env.get(name).cloned());
    let database = shared::config::DatabaseSettings::from_env(&mut e);
    let tail = shared::config::TailSettings::from_env(&mut e);
    e.finish()?;
    Ok(shared::api::tail::tail_service(
        store_pool(&database, sdk).await?,
        shared::aws::tail_connections::ConnectionStore::new(sdk, &tail.connections_table),
        shared::aws::connections::ConnectionPoster::new(sdk, &tail.management_url),
    ))
}

/// The tail queue's consumer: the `tail-fanout` function behind an event source mapping (batch
/// size 10), until the task is aborted.
pub async fn run_tail_fanout(env: HashMap<String, String>, sdk: SdkConfig) -> Result<()> {
    let service = tail_service(&env, &sdk).await?;
    let queue = env.get("TAIL_QUEUE_URL").context("TAIL_QUEUE_URL is not set")?;
    let mapping = queues::EventSourceMapping::new(&sdk, queue, 10).await?;
    mapping
        .run(move |event| {
            let service = service.clone();
            async move { shared::sqs::handle_tail_event(&service, &event).await }
        })
        .await
}

/// Creates a platform key (scope `platform`: creating tenants) and returns its secret.
pub async fn create_platform_key(sdk: &SdkConfig, resources: &Resources) -> Result<String> {
    let keys = ApiKeyStore::new(sdk, &resources.api_keys_table, &resources.api_key_mac_key_id);
    let key = keys.create(None, "local platform key", &[shared::auth::Scope::Platform], None).await?;
    Ok(key.secret)
}

/// Builds the gateway with every function, configured from `env` exactly as the functions are
/// (`env` needs `TAIL_MANAGEMENT_URL`, see [`with_gateway_url`]).
pub async fn gateway(env: &HashMap<String, String>, sdk: &SdkConfig) -> Result<Gateway> {
    let lookup = |name: &str| env.get(name).cloned();
    let mut functions = HashMap::new();
    for function in Function::ALL {
        if function == Function::Console {
            let state = shared::runtime::console_state(console::ASSETS, Env::with_lookup(lookup), sdk)?;
            functions.insert(function, shared::api::console::router(state));
            continue;
        }
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
    let tail = tail_service(env, sdk).await?;
    Ok(Gateway::new(authorizer, functions).with_tail(tail))
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

/// The indexer's clients (pool, and OpenSearch where `OPENSEARCH_URL` is set), configured from
/// `env` as the function is.
pub async fn indexer_clients(
    env: &HashMap<String, String>,
    sdk: &SdkConfig,
) -> Result<(StorePool, Option<OpenSearch>)> {
    let mut e = Env::with_lookup(|name: &str| env.get(name).cloned());
    let database = shared::config::DatabaseSettings::from_env(&mut e);
    let search = shared::config::SearchSettings::from_env(&mut e);
    e.finish()?;
    let pool = store_pool(&database, sdk).await?;
    let search = search.url.as_deref().map(|url| OpenSearch::new(sdk, url, &search.index)).transpose()?;
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

/// The index queue's consumer: the indexer behind an event source mapping (batch size 10), into
/// OpenSearch or, without one, PostgreSQL's own full text, until the task is aborted.
pub async fn run_indexer(env: HashMap<String, String>, sdk: SdkConfig) -> Result<()> {
    let (pool, search) = indexer_clients(&env, &sdk).await?;
    let queue = env.get("INDEX_QUEUE_URL").context("INDEX_QUEUE_URL is not set")?;
    let mapping = queues::EventSourceMapping::new(&sdk, queue, 10).await?;
    mapping
        .run(move |event| {
            let (pool, search) = (pool.clone(), search.clone());
            async move { shared::sqs::handle_index_event(&pool, search.as_ref(), &event).await }
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
    let queue = shared::runtime::outbox_queues(&queue, &sdk);
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
