//! Start-up shared by every function's `main`: logging, configuration and the clients a function
//! needs, built once per instance and reused across warm invocations.

use crate::api::state::{ApiState, ApiStateInner, CheckpointPublicKey, ReceiptKeys};
use crate::api::Function;
use crate::aws::api_keys::ApiKeyStore;
use crate::aws::secrets::database_credentials;
use crate::config::{ApiKeySettings, CheckpointSettings, ConfigError, DatabaseSettings, Env, ReceiptSettings};
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
        env.finish()?;
        Ok(ApiSettings { database, checkpoint, receipts, api_keys, maintenance })
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
    }))
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
