//! The `erasure` function: serves its routes of the API (see `shared::api::ROUTES`) behind API Gateway.
//! Wiring only; the handlers live in `shared::api`, the start-up in `shared::runtime`.

use shared::api::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_api(&[Function::Erasure]).await
}
