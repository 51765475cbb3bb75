//! The `admin` function: serves its routes of the API (see `shared::api::ROUTES`) behind API Gateway.
//! Wiring only; the handlers live in `shared::api`.

use shared::api::{router, Function};
use shared::config::Env;
use shared::runtime::{api_state, init_tracing, ApiSettings};

const FUNCTIONS: &[Function] = &[Function::Admin];

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let settings = ApiSettings::from_env(FUNCTIONS, Env::from_process())?;
    let sdk = shared::aws::load_config().await;
    let state = api_state(&settings, &sdk).await?;
    lambda_http::run(router(state, FUNCTIONS)).await
}
