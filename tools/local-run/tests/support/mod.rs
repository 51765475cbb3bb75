//! The whole API on a free loopback port, as the local run serves it: a fresh database per test
//! (from the shared crate's test support), the local AWS endpoint with its resources, the local
//! gateway with the real authorizer, and a platform key. Plus a small HTTP client.
#![allow(dead_code)]

#[path = "../../../../shared/tests/support/mod.rs"]
pub mod db;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use local_run::create_platform_key;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

pub struct Stack {
    pub base: String,
    pub platform_key: String,
    pub sdk: SdkConfig,
    pub env: HashMap<String, String>,
    pub db: db::TestDb,
    pub http: reqwest::Client,
}

impl Stack {
    /// Starts a stack whose authorizer caches decisions for `cache_seconds`.
    pub async fn start_with_cache(cache_seconds: u64) -> Result<Stack> {
        let db = db::TestDb::new().await?;
        let (sdk, resources) = db::aws().await?;
        let mut env = local_run::function_env(&db.app_url(), &db.maintenance_url(), resources);
        env.insert("AUTHORIZER_CACHE_SECONDS".into(), cache_seconds.to_string());
        env.insert("PUBLISHER_POLICY_CACHE_SECONDS".into(), cache_seconds.to_string());
        // Each stack anchors its own global log, so it gets its own anchor bucket.
        let bucket = format!("anchors-{}", uuid::Uuid::new_v4().simple());
        localstack::bootstrap::ensure_locked_bucket(&sdk, &bucket).await?;
        env.insert("ANCHOR_BUCKET".into(), bucket);
        let app = local_run::gateway(&env, &sdk).await?.into_router();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let platform_key = create_platform_key(&sdk, resources).await.context("platform key")?;
        Ok(Stack { base, platform_key, sdk, env, db, http: reqwest::Client::new() })
    }

    pub async fn start() -> Result<Stack> {
        Self::start_with_cache(0).await
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<&Value>) -> Result<Reply> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::from(request.send().await?).await
    }

    /// Sends raw bytes with a content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Reply> {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        Reply::from(request.send().await?).await
    }

    /// Creates a tenant; returns its id and admin key.
    pub async fn tenant(&self, name: &str) -> Result<(String, String)> {
        let reply =
            self.call(Method::POST, "/v1/tenants", Some(&self.platform_key), Some(&json!({ "name": name }))).await?;
        anyhow::ensure!(reply.status == StatusCode::CREATED, "creating a tenant: {reply:?}");
        let id = reply.body["tenant_id"].as_str().context("tenant_id")?.to_owned();
        let key = reply.body["api_key"]["secret"].as_str().context("secret")?.to_owned();
        Ok((id, key))
    }

    /// Creates a key with `scopes` using an admin key.
    pub async fn key(&self, admin: &str, scopes: &[&str]) -> Result<String> {
        let reply = self
            .call(Method::POST, "/v1/keys", Some(admin), Some(&json!({ "name": "test", "scopes": scopes })))
            .await?;
        anyhow::ensure!(reply.status == StatusCode::CREATED, "creating a key: {reply:?}");
        Ok(reply.body["secret"].as_str().context("secret")?.to_owned())
    }

    /// The tenant's current tree size, from a consistency proof of size 0 (which returns the size).
    pub async fn tree_size(&self, key: &str) -> Result<u64> {
        let reply = self.call(Method::GET, "/v1/proofs/consistency?from=0", Some(key), None).await?;
        anyhow::ensure!(reply.status == StatusCode::OK, "tree size: {reply:?}");
        reply.body["to"].as_u64().context("to")
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Result<Reply> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).context("reply is not JSON")? };
        Ok(Reply { status, headers, body })
    }

    /// The service's error code, asserting the error body's shape.
    pub fn error_code(&self) -> &str {
        let error = &self.body["error"];
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {self:?}");
        error["code"].as_str().unwrap_or_else(|| panic!("not an error body: {self:?}"))
    }
}

/// A valid event.
pub fn event(action: &str, actor: &str) -> Value {
    json!({ "action": action, "actor": { "id": actor }, "outcome": "success", "metadata": { "n": 1 } })
}
