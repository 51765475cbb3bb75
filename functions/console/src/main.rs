//! The `console` function: serves the web console (`GET /console`, `GET /console/{proxy+}`, no
//! authorizer) behind API Gateway. Wiring only; the handler lives in `shared::api::console`, the
//! start-up in `shared::runtime`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_console(console::ASSETS).await
}
