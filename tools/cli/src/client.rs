//! The HTTP client of the API commands: bearer authentication, JSON bodies, the service's error
//! shape turned into one readable message, and retries of transient failures.
//!
//! A request is retried on a network error, 429 and 503, waiting `Retry-After` seconds when the
//! response gives it and an exponential backoff otherwise. A POST is only retried with an
//! `Idempotency-Key`, and every attempt sends the same key, so a retry of a request the service
//! did complete returns the original result and writes nothing twice.

use anyhow::{anyhow, Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Where the API is and how to authenticate. The key is never printed: not by `Debug`, not in
/// an error message.
#[derive(Clone)]
pub struct Client {
    base: String,
    api_key: Option<String>,
    http: reqwest::Client,
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff without Retry-After; doubled on each further attempt.
    pub backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("retries", &self.retries)
            .finish()
    }
}

/// The longest wait a Retry-After header can ask for before the client gives up waiting.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Client {
    pub fn new(base: &str, api_key: Option<String>, retries: u32) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("auditlog-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            api_key,
            http,
            retries,
            backoff: Duration::from_millis(500),
        })
    }

    pub fn get(&self, path: &str, query: &[(String, String)]) -> impl std::future::Future<Output = Result<Value>> + '_ {
        let query = query.to_vec();
        let path = path.to_owned();
        async move { self.send(Method::GET, &path, &query, None, None).await }
    }

    /// Sends one request, retrying transient failures, and returns the JSON body of a 2xx
    /// response.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let retryable = method == Method::GET || idempotency_key.is_some();
        let mut attempt = 0u32;
        loop {
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let wait = match request.send().await {
                Err(e) if retryable && attempt < self.retries && !e.is_builder() => {
                    eprintln!("{method} {path}: {} ; retrying", describe_network_error(&e));
                    self.backoff_for(attempt)
                }
                Err(e) => return Err(anyhow!("{method} {path}: {}", describe_network_error(&e))),
                Ok(response) => {
                    let status = response.status();
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
                    if transient && retryable && attempt < self.retries {
                        let wait = retry_after(&response).unwrap_or_else(|| self.backoff_for(attempt));
                        eprintln!("{method} {path}: {status}; retrying in {:.1}s", wait.as_secs_f64());
                        wait
                    } else {
                        let text =
                            response.text().await.with_context(|| format!("{method} {path}: reading the response"))?;
                        if !status.is_success() {
                            return Err(anyhow!("{method} {path}: {}", api_error_message(status, &text)));
                        }
                        if text.trim().is_empty() {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_str(&text)
                            .with_context(|| format!("{method} {path}: the response is not JSON"));
                    }
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn backoff_for(&self, attempt: u32) -> Duration {
        self.backoff.saturating_mul(1 << attempt.min(6)).min(MAX_RETRY_AFTER)
    }

    /// A plain GET without the API key (presigned URLs carry their own authorisation, and an
    /// Authorization header would make S3 reject them), retried like any GET.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>> {
        let mut attempt = 0u32;
        loop {
            let wait = match self.http.get(url).send().await {
                Err(e) if attempt < self.retries => {
                    eprintln!("download: {}; retrying", describe_network_error(&e));
                    self.backoff_for(attempt)
                }
                Err(e) => return Err(anyhow!("download: {}", describe_network_error(&e))),
                Ok(response) => {
                    let status = response.status();
                    if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) && attempt < self.retries {
                        retry_after(&response).unwrap_or_else(|| self.backoff_for(attempt))
                    } else if !status.is_success() {
                        let text = response.text().await.unwrap_or_default();
                        return Err(anyhow!("download: {status}: {}", text.chars().take(300).collect::<String>()));
                    } else {
                        return Ok(response.bytes().await.context("download: reading the body")?.to_vec());
                    }
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A network error with its causes, and without the URL's query (a presigned URL's signature
/// stays out of the terminal).
fn describe_network_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if let Some(url) = e.url() {
        if let Some(query) = url.query() {
            text = text.replace(&format!("?{query}"), "");
        }
    }
    text
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER))
}

/// `400 invalid_request: events[0].action: ...` from the service's `{"error":{code,message}}`,
/// or API Gateway's `{"message":..}`, or the start of whatever else came back.
pub fn api_error_message(status: StatusCode, body: &str) -> String {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let service = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(|e| Some(format!("{}: {}", e.get("code")?.as_str()?, e.get("message")?.as_str()?)));
    let gateway = json.as_ref().and_then(|j| j.get("message")).and_then(Value::as_str).map(str::to_owned);
    let detail = service.or(gateway).unwrap_or_else(|| body.trim().chars().take(300).collect());
    let hint = match status {
        StatusCode::UNAUTHORIZED => " (no API key: set AUDIT_LOG_API_KEY or pass --api-key)",
        StatusCode::FORBIDDEN => " (the API key is unknown, revoked, expired or lacks the scope)",
        _ => "",
    };
    format!("{} {detail}{hint}", status.as_u16())
}
