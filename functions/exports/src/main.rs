//! The `exports` function: serves its routes of the API (see `shared::api::ROUTES`) behind API
//! Gateway: requesting an export and reading its status and download URLs. The export itself is
//! written by the `export` function. Wiring only; the handlers live in `shared::api`.

use shared::api::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_api(&[Function::Exports]).await
}
