//! The HTTP API, as axum routers that run unchanged inside a Lambda function (through
//! `lambda_http`) and in the local gateway. [`ROUTES`] is the one list of routes: each names the
//! function that serves it, and `template.yaml`, `openapi.yaml` and the local gateway are checked
//! against it by a test.
//!
//! Handlers trust only the identity the authorizer attached ([`extract::Authenticated`]); every
//! failure is an [`error::ApiError`], mapped once to a status and a JSON error body.

pub mod error;
pub mod extract;
pub mod state;
pub mod views;
pub mod page;
pub mod events;
pub mod proofs;
pub mod verify;
pub mod admin;
pub mod erasure;
pub mod exports;
pub mod authorizer;
pub mod console;
pub mod credentials;
pub mod tail;
pub mod tiles;

use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use error::ApiError;
use state::ApiState;

/// The Lambda function that serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Ingest,
    Query,
    Verify,
    Admin,
    Erasure,
    Exports,
    /// The web console's pages and files (`console::router`, not the API's router).
    Console,
}

impl Function {
    pub const ALL: [Function; 7] =
        [Self::Ingest, Self::Query, Self::Verify, Self::Admin, Self::Erasure, Self::Exports, Self::Console];

    /// The crate, binary and SAM resource directory under `functions/`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Query => "query",
            Self::Verify => "verify",
            Self::Admin => "admin",
            Self::Erasure => "erasure",
            Self::Exports => "exports",
            Self::Console => "console",
        }
    }
}

/// One route: method, path as API Gateway writes it (`{id}` for a parameter), the serving
/// function, and whether the authorizer guards it (every route but the few public ones, which
/// `template.yaml` declares with `Auth: { Authorizer: NONE }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
    /// Served without a credential and without the authorizer: the handler reads no caller.
    pub public: bool,
}

const fn route(method: &'static str, path: &'static str, function: Function) -> Route {
    Route { method, path, function, public: false }
}

/// A route anyone may call: what a browser needs before it has a credential.
const fn public_route(method: &'static str, path: &'static str, function: Function) -> Route {
    Route { method, path, function, public: true }
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    route("POST", "/v1/events", Function::Ingest),
    route("POST", "/v1/events/batch", Function::Ingest),
    route("GET", "/v1/events", Function::Query),
    route("GET", "/v1/events/{id}", Function::Query),
    route("GET", "/v1/events/{id}/proof", Function::Query),
    route("GET", "/v1/proofs/consistency", Function::Query),
    route("POST", "/v1/proofs/inclusion", Function::Query),
    route("GET", "/v1/checkpoints/latest", Function::Query),
    route("GET", "/v1/checkpoints/public-key", Function::Query),
    route("GET", "/v1/checkpoints/{tree_size}", Function::Query),
    route("GET", "/v1/checkpoints/{tree_size}/global-proof", Function::Query),
    route("GET", "/v1/receipts/public-key", Function::Query),
    route("GET", "/v1/log/checkpoint", Function::Query),
    route("GET", "/v1/log/tile/{proxy+}", Function::Query),
    route("GET", "/v1/stats", Function::Query),
    route("POST", "/v1/verify", Function::Verify),
    route("POST", "/v1/tenants", Function::Admin),
    route("POST", "/v1/tenants/{id}/keys", Function::Admin),
    route("POST", "/v1/keys", Function::Admin),
    route("GET", "/v1/keys", Function::Admin),
    route("DELETE", "/v1/keys/{id}", Function::Admin),
    route("POST", "/v1/signing-keys", Function::Admin),
    route("GET", "/v1/signing-keys", Function::Admin),
    route("DELETE", "/v1/signing-keys/{id}", Function::Admin),
    route("GET", "/v1/settings", Function::Admin),
    route("PATCH", "/v1/settings", Function::Admin),
    route("POST", "/v1/erasures", Function::Erasure),
    route("POST", "/v1/exports", Function::Exports),
    route("GET", "/v1/exports", Function::Exports),
    route("GET", "/v1/exports/{id}", Function::Exports),
    route("POST", "/v1/viewer-tokens", Function::Admin),
    route("DELETE", "/v1/viewer-tokens/{id}", Function::Admin),
    route("GET", "/v1/whoami", Function::Query),
    route("GET", "/v1/console/settings", Function::Admin),
    route("PUT", "/v1/console/settings", Function::Admin),
    public_route("GET", "/v1/console/sign-in", Function::Admin),
    public_route("GET", "/console", Function::Console),
    public_route("GET", "/console/{proxy+}", Function::Console),
];

/// The handler of a route.
fn handler(route: &Route) -> MethodRouter<ApiState> {
    match (route.method, route.path) {
        ("POST", "/v1/events") => post(events::append_one),
        ("POST", "/v1/events/batch") => post(events::append_batch),
        ("GET", "/v1/events") => get(events::list),
        ("GET", "/v1/events/{id}") => get(events::get_one),
        ("GET", "/v1/events/{id}/proof") => get(proofs::inclusion),
        ("GET", "/v1/proofs/consistency") => get(proofs::consistency),
        ("POST", "/v1/proofs/inclusion") => post(proofs::batch_inclusion),
        ("GET", "/v1/checkpoints/latest") => get(proofs::latest_checkpoint),
        ("GET", "/v1/checkpoints/public-key") => get(proofs::checkpoint_public_key),
        ("GET", "/v1/checkpoints/{tree_size}") => get(proofs::checkpoint_at),
        ("GET", "/v1/checkpoints/{tree_size}/global-proof") => get(proofs::global_proof),
        ("GET", "/v1/receipts/public-key") => get(proofs::receipt_public_keys),
        ("GET", "/v1/log/checkpoint") => get(tiles::checkpoint),
        ("GET", "/v1/log/tile/{proxy+}") => get(tiles::tile),
        ("GET", "/v1/stats") => get(events::stats),
        ("POST", "/v1/verify") => post(verify::verify),
        ("POST", "/v1/tenants") => post(admin::create_tenant),
        ("POST", "/v1/tenants/{id}/keys") => post(admin::create_tenant_key),
        ("POST", "/v1/keys") => post(admin::create_key),
        ("GET", "/v1/keys") => get(admin::list_keys),
        ("DELETE", "/v1/keys/{id}") => delete(admin::revoke_key),
        ("POST", "/v1/signing-keys") => post(admin::register_signing_key),
        ("GET", "/v1/signing-keys") => get(admin::list_signing_keys),
        ("DELETE", "/v1/signing-keys/{id}") => delete(admin::revoke_signing_key),
        ("GET", "/v1/settings") => get(admin::get_settings),
        ("PATCH", "/v1/settings") => patch(admin::update_settings),
        ("POST", "/v1/erasures") => post(erasure::erase),
        ("POST", "/v1/exports") => post(exports::create),
        ("GET", "/v1/exports") => get(exports::list),
        ("GET", "/v1/exports/{id}") => get(exports::get_one),
        ("POST", "/v1/viewer-tokens") => post(credentials::create_viewer_token),
        ("DELETE", "/v1/viewer-tokens/{id}") => delete(credentials::revoke_viewer_token),
        ("GET", "/v1/whoami") => get(credentials::whoami),
        ("GET", "/v1/console/settings") => get(credentials::get_settings),
        ("PUT", "/v1/console/settings") => put(credentials::put_settings),
        ("GET", "/v1/console/sign-in") => get(credentials::sign_in),
        (method, path) => unreachable!("ROUTES names {method} {path} without a handler"),
    }
}

/// The methods of the routes at `path` (a route path as [`ROUTES`] writes it), in `ROUTES` order.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    ROUTES.iter().filter(|r| r.path == path).map(|r| r.method).collect()
}

/// 405 for a method a route does not have, with `Allow` naming the ones it has.
pub fn method_not_allowed(allowed: &[&str]) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("method not allowed on this route; allowed: {}", allowed.join(", ")),
    )
    .into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(axum::http::header::ALLOW, value);
    }
    response
}

/// The router of the given functions' routes (a Lambda passes its own; the local gateway all).
/// A method a path does not have is 405 with `Allow` listing every function's methods at that
/// path, as [`ROUTES`] has them (in AWS such a request matches no route and API Gateway answers
/// 404 before any function runs; see docs/ARCHITECTURE.md).
pub fn router(state: ApiState, functions: &[Function]) -> Router {
    let mut router = Router::new();
    // The console's routes have a router of their own (`console::router`), state and all.
    for route in ROUTES.iter().filter(|r| functions.contains(&r.function) && r.function != Function::Console) {
        // API Gateway's greedy `{proxy+}` is axum's `{*proxy}`.
        router = router.route(&route.path.replace("{proxy+}", "{*proxy}"), handler(route));
    }
    router
        .fallback(|| async { ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|path: axum::extract::MatchedPath| async move {
            method_not_allowed(&allowed_methods(path.as_str()))
        })
        .with_state(state)
}
