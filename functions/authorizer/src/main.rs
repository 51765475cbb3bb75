//! The `authorizer` function: API Gateway's Lambda authorizer for every route of the HTTP API
//! and for the live tail's WebSocket `$connect`. Wiring only; the decision lives in
//! `shared::service::authorizer` and its event mappings in `shared::api::authorizer`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::api::authorizer::authorize_event;
use shared::aws::api_keys::ApiKeyStore;
use shared::aws::console_settings::ConsoleSettingsStore;
use shared::aws::viewer_tokens::ViewerTokenMac;
use shared::config::{ApiKeySettings, ConsoleSettingsTable, Env, OidcSettings};
use shared::runtime::init_tracing;
use shared::service::authorizer::Authorizer;
use shared::service::oidc::OidcVerifier;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mut env = Env::from_process();
    let settings = ApiKeySettings::from_env(&mut env);
    // Revocation takes effect within this TTL here and API Gateway's result cache TTL.
    let cache_seconds: u64 = env.parsed("AUTHORIZER_CACHE_SECONDS", 60);
    let console = ConsoleSettingsTable::from_env(&mut env);
    let oidc = OidcSettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let oidc = OidcVerifier::new(ConsoleSettingsStore::new(&sdk, &console.table), oidc)?;
    let authorizer = Authorizer::new(
        ApiKeyStore::new(&sdk, &settings.table, &settings.mac_key_id),
        Duration::from_secs(cache_seconds),
    )
    .with_viewer_tokens(ViewerTokenMac::new(&sdk, &settings.mac_key_id))
    .with_oidc(oidc);
    let authorizer = &authorizer;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<serde_json::Value, Error>(authorize_event(authorizer, event.payload).await)
    }))
    .await
}
