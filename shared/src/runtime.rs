//! Start-up shared by every function's `main`: logging, configuration and the clients a function
//! needs, built once per instance and reused across warm invocations.

use crate::api::state::{ApiState, ApiStateInner, CheckpointPublicKey, ReceiptKeys};
use crate::api::Function;
use crate::aws::api_keys::ApiKeyStore;
use crate::aws::export_jobs::ExportJobStore;
use crate::aws::export_objects::ExportBucket;
use crate::aws::queues::Queue;
use crate::aws::secrets::database_credentials;
use crate::config::{
    ApiKeySettings, CheckpointSettings, ConfigError, DatabaseSettings, Env, ExportSettings, IndexQueueSettings,
    ReceiptSettings, SearchSettings,
};
use crate::search::OpenSearch;
use crate::service::export::{ExportJobs, WorkerSettings};
use crate::store::connect::DbConfig;
use crate::store::pool::StorePool;
use aws_config::SdkConfig;

/// Structured logs: JSON lines in Lambda (or when `LOG_FORMAT=json`), readable text elsewhere.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let json = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if json {
        builder.json().with_current_span(false).flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(result);
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database settings: {0}")]
    Database(String),
}

/// The settings an HTTP function needs, by the routes it serves.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub database: DatabaseSettings,
    pub checkpoint: Option<CheckpointSettings>,
    pub receipts: Option<ReceiptSettings>,
    pub api_keys: Option<ApiKeySettings>,
    /// The maintenance role's database (erasure), for the functions that erase.
    pub maintenance: Option<DatabaseSettings>,
    /// The index queue, for the functions that append.
    pub index_queue: Option<IndexQueueSettings>,
    /// OpenSearch, for the function that lists events (optional even there).
    pub search: Option<SearchSettings>,
    pub exports: Option<ExportSettings>,
    /// The console settings table, for the function serving the console settings routes.
    pub console_settings: Option<crate::config::ConsoleSettingsTable>,
}

impl ApiSettings {
    /// Reads what `functions` need from `env`; everything missing is reported at once.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        functions: &[Function],
        mut env: Env<F>,
    ) -> Result<Self, ConfigError> {
        let needs = |f: &[Function]| functions.iter().any(|x| f.contains(x));
        let database = DatabaseSettings::from_env(&mut env);
        let checkpoint = needs(&[Function::Query, Function::Verify]).then(|| CheckpointSettings::from_env(&mut env));
        let receipts =
            needs(&[Function::Ingest, Function::Query, Function::Erasure]).then(|| ReceiptSettings::from_env(&mut env));
        let api_keys = needs(&[Function::Admin]).then(|| ApiKeySettings::from_env(&mut env));
        let maintenance = needs(&[Function::Erasure]).then(|| DatabaseSettings::maintenance_from_env(&mut env));
        let index_queue = needs(&[Function::Ingest, Function::Admin, Function::Erasure])
            .then(|| IndexQueueSettings::from_env(&mut env));
        let search = needs(&[Function::Query]).then(|| SearchSettings::from_env(&mut env));
        let exports = needs(&[Function::Exports]).then(|| ExportSettings::from_env(&mut env));
        let console_settings =
            needs(&[Function::Admin]).then(|| crate::config::ConsoleSettingsTable::from_env(&mut env));
        env.finish()?;
        Ok(ApiSettings {
            database,
            checkpoint,
            receipts,
            api_keys,
            maintenance,
            index_queue,
            search,
            exports,
            console_settings,
        })
    }
}

/// Builds the state of an HTTP function. Nothing here calls the network: the database connects
/// on the first request and keys are fetched when first used.
pub async fn api_state(settings: &ApiSettings, sdk: &SdkConfig) -> Result<ApiState, StartupError> {
    let store = store_pool(&settings.database, sdk).await?;
    let maintenance = match &settings.maintenance {
        Some(m) => Some(store_pool(m, sdk).await?),
        None => None,
    };
    Ok(ApiState::new(ApiStateInner {
        store,
        maintenance,
        checkpoint_origin: settings.checkpoint.as_ref().map(|c| c.origin.clone()).unwrap_or_default(),
        receipts: settings.receipts.as_ref().map(|r| ReceiptKeys::new(sdk.clone(), &r.table, &r.kek_key_id)),
        checkpoint_key: settings.checkpoint.as_ref().map(|c| CheckpointPublicKey::new(sdk, c)),
        api_keys: settings.api_keys.as_ref().map(|k| ApiKeyStore::new(sdk, &k.table, &k.mac_key_id)),
        viewer_tokens: settings
            .api_keys
            .as_ref()
            .map(|k| crate::aws::viewer_tokens::ViewerTokenMac::new(sdk, &k.mac_key_id)),
        index_queue: settings.index_queue.as_ref().map(|q| outbox_queues(q, sdk)),
        search: match settings.search.as_ref().and_then(|s| s.url.as_deref().map(|url| (url, &s.index))) {
            Some((url, index)) => {
                Some(OpenSearch::new(sdk, url, index).map_err(|e| StartupError::Database(e.to_string()))?)
            }
            None => None,
        },
        exports: settings.exports.as_ref().map(|e| export_jobs(e, sdk)),
        console_settings: settings
            .console_settings
            .as_ref()
            .map(|c| crate::aws::console_settings::ConsoleSettingsStore::new(sdk, &c.table)),
    }))
}

/// The queues outbox rows go to, from their settings.
pub fn outbox_queues(settings: &IndexQueueSettings, sdk: &SdkConfig) -> crate::service::indexing::OutboxQueues {
    crate::service::indexing::OutboxQueues {
        index: Queue::new(sdk, &settings.queue_url),
        tail: settings.tail_queue_url.as_ref().map(|url| Queue::new(sdk, url)),
    }
}

/// The API side of exports, from its settings.
pub fn export_jobs(settings: &ExportSettings, sdk: &SdkConfig) -> ExportJobs {
    ExportJobs {
        jobs: ExportJobStore::new(sdk, &settings.table),
        queue: Queue::new(sdk, &settings.queue_url),
        bucket: ExportBucket::new(sdk, &settings.bucket),
        url_ttl: std::time::Duration::from_secs(settings.url_seconds),
    }
}

/// The export function's tuning: `EXPORT_PART_BYTES` (default 16 MiB, at least S3's 5 MiB),
/// `EXPORT_CHUNK_ROWS` (default 2000), `EXPORT_MAX_ATTEMPTS` (default 3, the export queue's
/// maxReceiveCount).
pub fn worker_settings<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> WorkerSettings {
    let defaults = WorkerSettings::default();
    let part_size = env.parsed("EXPORT_PART_BYTES", defaults.part_size);
    if part_size < 5 << 20 {
        env.reject("EXPORT_PART_BYTES", "must be at least 5242880 (S3's smallest part)");
    }
    WorkerSettings {
        part_size,
        chunk_rows: env.parsed("EXPORT_CHUNK_ROWS", defaults.chunk_rows).max(1),
        max_attempts: env.parsed("EXPORT_MAX_ATTEMPTS", defaults.max_attempts).max(1),
        ..defaults
    }
}

/// When an invocation must be done: the Lambda context's deadline (unix milliseconds), or
/// `max_run` from now if that is sooner.
pub fn run_deadline(deadline_unix_ms: u64, max_run: Option<std::time::Duration>) -> std::time::Instant {
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let left = std::time::Duration::from_millis(deadline_unix_ms.saturating_sub(now_ms));
    std::time::Instant::now() + max_run.map_or(left, |m| m.min(left))
}

/// The database pool of a function. With `DATABASE_SECRET_ARN`, the credentials are read from
/// Secrets Manager here, once per instance; the connection itself opens on first use.
pub async fn store_pool(settings: &DatabaseSettings, sdk: &SdkConfig) -> Result<StorePool, StartupError> {
    let mut config = DbConfig::plain(&settings.url);
    if let Some(arn) = &settings.secret_arn {
        let credentials = database_credentials(sdk, arn).await.map_err(|e| StartupError::Database(e.to_string()))?;
        config.user = Some(credentials.username);
        config.password = Some(credentials.password);
    }
    if let Some(path) = &settings.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| StartupError::Database(format!("reading DATABASE_CA_FILE {path}: {e}")))?;
        config.extra_ca_pem = Some(pem);
    }
    Ok(StorePool::new(config, settings.pool_size)
        .with_policy_ttl(std::time::Duration::from_secs(settings.policy_cache_seconds)))
}

/// The whole `main` of an HTTP function: logging, settings for its routes, clients, then the
/// Lambda runtime loop serving `functions`' routes of [`crate::api::ROUTES`].
pub async fn serve_api(functions: &[Function]) -> Result<(), lambda_http::Error> {
    init_tracing();
    let settings = ApiSettings::from_env(functions, Env::from_process())?;
    let sdk = crate::aws::load_config().await;
    let state = api_state(&settings, &sdk).await?;
    lambda_http::run(crate::api::router(state, functions)).await
}

/// The console function's state from its environment (`ConsoleSettings`), with each tenant's
/// page policy read from the tenant console settings (`CONSOLE_SETTINGS_TABLE`), the
/// environment's default (`CONSOLE_FRAME_ANCESTORS`) for pages without a tenant.
pub fn console_state<F: Fn(&str) -> Option<String>>(
    assets: &'static [crate::api::console::Asset],
    mut env: Env<F>,
    sdk: &aws_config::SdkConfig,
) -> Result<crate::api::console::ConsoleState, ConfigError> {
    use crate::api::console::{ConsoleState, DefaultPolicy, PagePolicySource, SettingsPagePolicy};
    let settings = crate::config::ConsoleSettings::from_env(&mut env);
    let table = env.optional("CONSOLE_SETTINGS_TABLE");
    env.finish()?;
    let fallback = DefaultPolicy::from_settings(&settings);
    let policy: std::sync::Arc<dyn PagePolicySource> = match table {
        Some(table) => std::sync::Arc::new(SettingsPagePolicy {
            store: crate::aws::console_settings::ConsoleSettingsStore::new(sdk, table),
            fallback: fallback.0,
        }),
        None => std::sync::Arc::new(fallback),
    };
    Ok(ConsoleState::new(assets, settings, policy))
}

/// The whole `main` of the console function: logging, settings, then the Lambda runtime loop
/// serving the console's routes.
pub async fn serve_console(assets: &'static [crate::api::console::Asset]) -> Result<(), lambda_http::Error> {
    init_tracing();
    let sdk = crate::aws::load_config().await;
    let state = console_state(assets, Env::from_process(), &sdk)?;
    lambda_http::run(crate::api::console::router(state)).await
}

/// The live tail's service for the `tail` and `tail-fanout` functions: the database, the
/// connections table and the WebSocket Management API, all from the environment.
pub async fn tail_service_from_env() -> Result<crate::service::tail::TailService, StartupError> {
    let mut env = Env::from_process();
    let database = DatabaseSettings::from_env(&mut env);
    let tail = crate::config::TailSettings::from_env(&mut env);
    env.finish()?;
    let sdk = crate::aws::load_config().await;
    Ok(crate::api::tail::tail_service(
        store_pool(&database, &sdk).await?,
        crate::aws::tail_connections::ConnectionStore::new(&sdk, &tail.connections_table),
        crate::aws::connections::ConnectionPoster::new(&sdk, &tail.management_url),
    ))
}
