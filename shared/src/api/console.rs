//! The web console's HTTP side (the `console` function): the built console (`console/dist`,
//! embedded into the function's binary at compile time as [`Asset`]s), `/console/config.json`
//! from the function's settings, and the headers every console response carries: a strict
//! Content-Security-Policy (no inline script or style; `connect-src` only the API, the live tail
//! and the tenant's identity provider; `frame-ancestors` per tenant), `nosniff`, no referrer,
//! immutable caching for content-hashed assets and none for pages, and gzip or brotli when the
//! client accepts it. These routes are public: API Gateway runs no authorizer for them, and they
//! serve nothing of any tenant's data.

use crate::config::ConsoleSettings;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use std::sync::Arc;

use super::error::ApiError;

/// One file of the built console, as the function's build script embeds it: its path under
/// `console/dist`, its bytes, and its precompressed forms where compression helps.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub path: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub br: Option<&'static [u8]>,
}

/// What a page's policy depends on per tenant: who may frame it and the tenant's identity
/// provider (an origin the page must be allowed to connect to).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PagePolicy {
    /// CSP `frame-ancestors` sources, e.g. `https://app.example.com`; `'none'` when empty.
    pub frame_ancestors: Vec<String>,
    /// The origin of the tenant's OIDC issuer (`https://idp.example.com`), if it has one.
    pub issuer_origin: Option<String>,
}

/// Where a tenant's [`PagePolicy`] comes from: the tenant console settings table where it is
/// deployed, [`DefaultPolicy`] (the function's environment) until then or without a tenant.
pub trait PagePolicySource: Send + Sync {
    /// The policy for pages opened with `?tenant=<tenant>` (`None`: no tenant named).
    fn policy<'a>(&'a self, tenant: Option<&'a str>) -> BoxFuture<'a, PagePolicy>;
}

/// The same policy for every tenant: `CONSOLE_FRAME_ANCESTORS` (default `'none'`), no issuer.
#[derive(Debug, Clone)]
pub struct DefaultPolicy(pub PagePolicy);

impl DefaultPolicy {
    pub fn from_settings(settings: &ConsoleSettings) -> Self {
        DefaultPolicy(PagePolicy { frame_ancestors: settings.frame_ancestors.clone(), issuer_origin: None })
    }
}

impl PagePolicySource for DefaultPolicy {
    fn policy<'a>(&'a self, _tenant: Option<&'a str>) -> BoxFuture<'a, PagePolicy> {
        Box::pin(async move { self.0.clone() })
    }
}

/// The console function's state: the embedded files, the settings and the policy source.
#[derive(Clone)]
pub struct ConsoleState {
    assets: &'static [Asset],
    settings: Arc<ConsoleSettings>,
    config_json: Arc<Vec<u8>>,
    policy: Arc<dyn PagePolicySource>,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState").field("assets", &self.assets.len()).field("settings", &self.settings).finish()
    }
}

impl ConsoleState {
    pub fn new(assets: &'static [Asset], settings: ConsoleSettings, policy: Arc<dyn PagePolicySource>) -> Self {
        let config = serde_json::json!({
            "api_base": settings.api_base,
            "tail_url": settings.tail_url,
            "checkpoint_keys": settings.checkpoint_keys,
            "global_log_keys": settings.global_log_keys,
        });
        ConsoleState {
            assets,
            config_json: Arc::new(config.to_string().into_bytes()),
            settings: Arc::new(settings),
            policy,
        }
    }
}

/// The console's routes: `/console`, `/console/` and everything under it.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(serve))
        .route("/console/", get(serve))
        .route("/console/{*path}", get(serve))
        .fallback(|| async { ApiError::not_found("console page") })
        .with_state(state)
}

/// The pages of the single-page app: each is `index.html`, which reads its path itself.
const APP_PAGES: &[&str] = &["", "index.html", "embed", "callback"];

async fn serve(State(state): State<ConsoleState>, uri: Uri, headers: HeaderMap) -> Response {
    let rel = uri.path().strip_prefix("/console").unwrap_or("").trim_start_matches('/');
    let tenant = tenant_of(uri.query().unwrap_or(""));
    let policy = state.policy.policy(tenant.as_deref()).await;
    if rel == "config.json" {
        let mut response = (StatusCode::OK, state.config_json.as_ref().clone()).into_response();
        set_headers(&mut response, "application/json", "no-cache", &csp(&state.settings, &policy, false));
        return response;
    }
    if state.assets.is_empty() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "console_not_built",
            "the console was not built into this function: run scripts/setup (npm ci and npm run build in console/), then build the function again",
        )
        .into_response();
    }
    let file = if APP_PAGES.contains(&rel.trim_end_matches('/')) {
        "index.html".to_owned()
    } else if rel == "docs" || rel == "docs/" {
        "docs/index.html".to_owned()
    } else {
        rel.to_owned()
    };
    let Some(asset) = state.assets.iter().find(|a| a.path == file) else {
        return ApiError::not_found("console page").into_response();
    };
    let (body, encoding) = pick_encoding(asset, &headers);
    let cache = if file.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else if file == "viewer.js" {
        "public, max-age=300"
    } else {
        "no-cache"
    };
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    set_headers(&mut response, content_type(&file), cache, &csp(&state.settings, &policy, file.starts_with("docs/")));
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(encoding) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    if file == "viewer.js" {
        // Host pages load the element as a module script from another origin, which needs CORS.
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

/// The `tenant` query parameter, if it is a tenant id (anything else is ignored, not looked up).
fn tenant_of(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "tenant")
        .and_then(|(_, v)| uuid::Uuid::parse_str(&v).ok())
        .map(|u| u.to_string())
}

/// Brotli, then gzip, when the client accepts it (`q=0` refuses) and the build kept that form.
fn pick_encoding(asset: &Asset, headers: &HeaderMap) -> (&'static [u8], Option<&'static str>) {
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let accepts = |name: &str| {
        accepted.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0") || p == "q=0.0");
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    match (asset.br, asset.gzip) {
        (Some(br), _) if accepts("br") => (br, Some("br")),
        (_, Some(gz)) if accepts("gzip") => (gz, Some("gzip")),
        _ => (asset.body, None),
    }
}

fn set_headers(response: &mut Response, content_type: &'static str, cache: &'static str, csp: &str) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The Content-Security-Policy of a console response. Scripts only from the console's origin
/// (and WebAssembly compilation, for the verifier), styles only from its stylesheets, connections
/// only to the API, the live tail and the tenant's identity provider. The API docs page (Swagger
/// UI) also sets inline styles on its elements and shows inline SVG images, which the app never
/// does.
pub fn csp(settings: &ConsoleSettings, policy: &PagePolicy, docs: bool) -> String {
    let mut connect = vec!["'self'".to_owned()];
    if let Some(origin) = settings.tail_url.as_deref().and_then(origin_of) {
        connect.push(origin);
    }
    if let Some(origin) = settings.api_base.starts_with("http").then(|| origin_of(&settings.api_base)).flatten() {
        connect.push(origin);
    }
    if let Some(origin) = &policy.issuer_origin {
        connect.push(origin.clone());
    }
    let ancestors =
        if policy.frame_ancestors.is_empty() { "'none'".to_owned() } else { policy.frame_ancestors.join(" ") };
    let (style, img) = if docs { ("'self' 'unsafe-inline'", "'self' data:") } else { ("'self'", "'self'") };
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src {style}; img-src {img}; font-src 'self'; \
         connect-src {}; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}",
        connect.join(" ")
    )
}

/// `scheme://host[:port]` of a URL, for a CSP source.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("yaml") => "application/yaml; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The console pages' per-tenant policy from the tenant console settings: who may frame the
/// console (`frame_ancestors`) and the origin of the tenant's identity provider, which the page
/// must be allowed to connect to for the token exchange. A tenant without settings, or a lookup
/// that fails, gets the function's default policy (`frame-ancestors 'none'` unless configured):
/// a failure never widens what a page allows.
#[derive(Debug)]
pub struct SettingsPagePolicy {
    pub store: crate::aws::console_settings::ConsoleSettingsStore,
    pub fallback: PagePolicy,
}

impl PagePolicySource for SettingsPagePolicy {
    fn policy<'a>(&'a self, tenant: Option<&'a str>) -> BoxFuture<'a, PagePolicy> {
        Box::pin(async move {
            let Some(tenant) = tenant.and_then(|t| uuid::Uuid::parse_str(t).ok()) else {
                return self.fallback.clone();
            };
            match crate::service::console_settings::get_settings(&self.store, tenant).await {
                Ok(settings) => PagePolicy {
                    frame_ancestors: if settings.frame_ancestors.is_empty() {
                        self.fallback.frame_ancestors.clone()
                    } else {
                        settings.frame_ancestors
                    },
                    issuer_origin: settings.oidc.as_ref().and_then(|o| origin_of(&o.issuer)),
                },
                Err(e) => {
                    tracing::warn!(error = %e, %tenant, "console settings unavailable; the page gets the default policy");
                    self.fallback.clone()
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    static ASSETS: &[Asset] = &[
        Asset { path: "index.html", body: b"<!doctype html>app", gzip: Some(b"gz-index"), br: Some(b"br-index") },
        Asset { path: "assets/app-ABC.js", body: b"console.log(1)", gzip: Some(b"gz-js"), br: None },
        Asset { path: "docs/index.html", body: b"<!doctype html>docs", gzip: None, br: None },
    ];

    fn settings() -> ConsoleSettings {
        ConsoleSettings {
            api_base: "/".into(),
            tail_url: Some("wss://tail.example.com/v1/tail".into()),
            checkpoint_keys: vec!["audit.example.com+1234abcd+AQID".into()],
            global_log_keys: vec![],
            frame_ancestors: vec!["'none'".into()],
        }
    }

    struct PerTenant;
    impl PagePolicySource for PerTenant {
        fn policy<'a>(&'a self, tenant: Option<&'a str>) -> BoxFuture<'a, PagePolicy> {
            Box::pin(async move {
                match tenant {
                    Some("01930000-0000-7000-8000-000000000001") => PagePolicy {
                        frame_ancestors: vec!["https://app.example.com".into()],
                        issuer_origin: Some("https://idp.example.com".into()),
                    },
                    _ => PagePolicy::default(),
                }
            })
        }
    }

    async fn get(assets: &'static [Asset], path: &str, encoding: &str) -> Response {
        let app = router(ConsoleState::new(assets, settings(), Arc::new(PerTenant)));
        let request =
            axum::http::Request::get(path).header("accept-encoding", encoding).body(Body::empty()).expect("request");
        app.oneshot(request).await.expect("infallible")
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body").to_vec()
    }

    #[tokio::test]
    async fn app_paths_serve_the_page_uncached_with_a_strict_policy() {
        for path in ["/console", "/console/", "/console/embed", "/console/callback?code=x"] {
            let response = get(ASSETS, path, "").await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let h = response.headers();
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
            assert!(
                csp.starts_with("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self';"),
                "{csp}"
            );
            assert!(csp.contains("connect-src 'self' wss://tail.example.com;"), "{csp}");
            assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
            assert_eq!(body(response).await, b"<!doctype html>app");
        }
    }

    #[tokio::test]
    async fn a_named_tenant_gets_its_frame_ancestors_and_issuer() {
        let response = get(ASSETS, "/console/embed?tenant=01930000-0000-7000-8000-000000000001", "").await;
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").to_owned();
        assert!(csp.contains("connect-src 'self' wss://tail.example.com https://idp.example.com;"), "{csp}");
        assert!(csp.ends_with("frame-ancestors https://app.example.com"), "{csp}");
        // Something that is not a tenant id is not looked up.
        let response = get(ASSETS, "/console/?tenant=../../etc", "").await;
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").to_owned();
        assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable_and_compressed_when_accepted() {
        let response = get(ASSETS, "/console/assets/app-ABC.js", "gzip, deflate, br").await;
        let h = response.headers();
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        assert_eq!(h[header::VARY], "Accept-Encoding");
        assert_eq!(body(response).await, b"gz-js");
        let response = get(ASSETS, "/console/", "gzip;q=1, br").await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
        let response = get(ASSETS, "/console/", "br;q=0, identity").await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(response).await, b"<!doctype html>app");
    }

    #[tokio::test]
    async fn config_json_carries_the_pinned_keys_and_the_tail_url() {
        let response = get(ASSETS, "/console/config.json", "").await;
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let config: serde_json::Value = serde_json::from_slice(&body(response).await).expect("json");
        assert_eq!(
            config,
            serde_json::json!({"api_base": "/", "tail_url": "wss://tail.example.com/v1/tail",
                "checkpoint_keys": ["audit.example.com+1234abcd+AQID"], "global_log_keys": []})
        );
    }

    #[tokio::test]
    async fn the_docs_page_and_unknown_files() {
        let response = get(ASSETS, "/console/docs/", "").await;
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").to_owned();
        assert!(csp.contains("style-src 'self' 'unsafe-inline'; img-src 'self' data:"), "{csp}");
        let response = get(ASSETS, "/console/assets/missing.js", "").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_function_built_without_the_console_answers_503_console_not_built() {
        let response = get(&[], "/console/", "").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let error: serde_json::Value = serde_json::from_slice(&body(response).await).expect("json");
        assert_eq!(error["error"]["code"], "console_not_built");
        assert!(error["error"]["message"].as_str().expect("message").contains("scripts/setup"));
    }
}
