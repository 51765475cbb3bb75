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
        Self::start_with(cache_seconds, |sdk| sdk).await
    }

    /// Starts a stack whose functions reach AWS through `wrap(sdk)` (a test's fault injection);
    /// the stack's own set-up uses the plain configuration.
    pub async fn start_with(cache_seconds: u64, wrap: impl FnOnce(SdkConfig) -> SdkConfig) -> Result<Stack> {
        Self::start_with_env(cache_seconds, &[], wrap).await
    }

    /// [`Stack::start_with`], with some of the functions' environment replaced.
    pub async fn start_with_env(
        cache_seconds: u64,
        overrides: &[(&str, &str)],
        wrap: impl FnOnce(SdkConfig) -> SdkConfig,
    ) -> Result<Stack> {
        let db = db::TestDb::new().await?;
        let (sdk, resources) = db::aws().await?;
        let mut env = local_run::function_env(&db.app_url(), &db.maintenance_url(), resources);
        env.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env.insert("AUTHORIZER_CACHE_SECONDS".into(), cache_seconds.to_string());
        env.insert("PUBLISHER_POLICY_CACHE_SECONDS".into(), cache_seconds.to_string());
        // Each stack anchors its own global log, so it gets its own anchor bucket.
        let bucket = format!("anchors-{}", uuid::Uuid::new_v4().simple());
        localstack::bootstrap::ensure_locked_bucket(&sdk, &bucket).await?;
        env.insert("ANCHOR_BUCKET".into(), bucket);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let env = local_run::with_gateway_url(env, &base);
        let app = local_run::gateway(&env, &wrap(sdk.clone())).await?.into_router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let platform_key = create_platform_key(&sdk, resources).await.context("platform key")?;
        Ok(Stack { base, platform_key, sdk, env, db, http: reqwest::Client::new() })
    }

    pub async fn start() -> Result<Stack> {
        Self::start_with_cache(0).await
    }

    /// A stack with the async pipelines of its own: index and export queues (with their DLQs,
    /// 1 s visibility, `max_receives` deliveries before the DLQ), an export jobs table, an
    /// OpenSearch index on `node` (every test process shares one node unless a test brings its
    /// own), and the gateway serving `q` through it.
    pub async fn start_pipelines(node_url: &str, max_receives: u32) -> Result<(Stack, Pipelines)> {
        let mut stack = Self::start().await?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let index_queue =
            localstack::bootstrap::ensure_queue_pair(&stack.sdk, &format!("index-{name}"), 1, max_receives).await?;
        let export_queue =
            localstack::bootstrap::ensure_queue_pair(&stack.sdk, &format!("export-{name}"), 1, max_receives).await?;
        let index = format!("audit-events-{name}");
        let search = shared::search::OpenSearch::new(&stack.sdk, node_url, &index)?;
        search.ensure_index(&local_run::index_template()?).await?;
        stack.env.insert("INDEX_QUEUE_URL".into(), index_queue.url.clone());
        stack.env.insert("EXPORT_QUEUE_URL".into(), export_queue.url.clone());
        // A jobs table of its own too, so this stack's export sweep sees only its own jobs.
        let exports_table = format!("exports-{name}");
        localstack::bootstrap::ensure_exports_table(&stack.sdk, &exports_table).await?;
        stack.env.insert("EXPORTS_TABLE".into(), exports_table);
        stack.env.insert("OPENSEARCH_URL".into(), node_url.to_owned());
        stack.env.insert("OPENSEARCH_INDEX".into(), index);
        stack.env.insert("EXPORT_MAX_ATTEMPTS".into(), max_receives.to_string());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        stack.base = format!("http://{}", listener.local_addr()?);
        stack.env = local_run::with_gateway_url(std::mem::take(&mut stack.env), &stack.base);
        let app = local_run::gateway(&stack.env, &stack.sdk).await?.into_router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (pool, _) = local_run::indexer_clients(&stack.env, &stack.sdk).await?;
        let pipelines = Pipelines {
            index: local_run::queues::EventSourceMapping::new(&stack.sdk, &index_queue.url, 10).await?,
            export: local_run::queues::EventSourceMapping::new(&stack.sdk, &export_queue.url, 1).await?,
            index_queue,
            export_queue,
            search,
            pool,
            worker: local_run::export_worker(&stack.env, &stack.sdk).await?,
        };
        Ok((stack, pipelines))
    }

    /// A stack with a live tail of its own: a tail queue (with its DLQ) and a connections table
    /// no other test uses, the gateway serving `/v1/tail` and the Management API, and the tail
    /// queue consumed in the background as its event source mapping does. Returns the
    /// WebSocket URL of the tail.
    pub async fn start_tail(limits: local_run::websocket::SocketLimits) -> Result<(Stack, String)> {
        let mut stack = Self::start().await?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let tail_queue = localstack::bootstrap::ensure_queue_pair(&stack.sdk, &format!("tail-{name}"), 1, 5).await?;
        let table = format!("tail-connections-{name}");
        localstack::bootstrap::ensure_tail_connections_table(&stack.sdk, &table).await?;
        stack.env.insert("TAIL_QUEUE_URL".into(), tail_queue.url);
        stack.env.insert("TAIL_CONNECTIONS_TABLE".into(), table);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        stack.base = format!("http://{}", listener.local_addr()?);
        stack.env = local_run::with_gateway_url(std::mem::take(&mut stack.env), &stack.base);
        let app = local_run::gateway(&stack.env, &stack.sdk).await?.with_socket_limits(limits).into_router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        tokio::spawn(local_run::run_tail_fanout(stack.env.clone(), stack.sdk.clone()));
        let ws = format!("{}/v1/tail", stack.base.replacen("http://", "ws://", 1));
        Ok((stack, ws))
    }

    /// Serves another gateway over the same services with other limits (a short function
    /// timeout); returns its base URL, for `call_at`.
    pub async fn serve_with_limits(&self, limits: local_run::gateway::Limits) -> Result<String> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let env = local_run::with_gateway_url(self.env.clone(), &base);
        let app = local_run::gateway(&env, &self.sdk).await?.with_limits(limits).into_router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(base)
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<&Value>) -> Result<Reply> {
        self.call_at(&self.base, method, path, key, body).await
    }

    /// Sends a request to another gateway over the same services (`base`).
    pub async fn call_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply> {
        let mut request = self.http.request(method, format!("{base}{path}"));
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

    /// Writes PostgreSQL's full text for every entry of the tenant (`tenant_id`, with one of its
    /// keys), through the indexer as the index queue would deliver it; plain stacks run no queue
    /// consumer, and `q` without OpenSearch finds an event only once it is indexed.
    pub async fn index_text(&self, tenant_id: &str, key: &str) -> Result<()> {
        use shared::service::indexing::{index_messages_in_postgres, IndexMessage, QueuedMessage};
        let size = self.tree_size(key).await?;
        let message = IndexMessage {
            v: 1,
            outbox_id: 0,
            tenant_id: tenant_id.parse()?,
            first_seq: 0,
            count: u32::try_from(size)?,
        };
        let (pool, _) = local_run::indexer_clients(&self.env, &self.sdk).await?;
        let run = index_messages_in_postgres(&pool, &[QueuedMessage { id: "all".into(), body: message.body() }]).await;
        anyhow::ensure!(run.failed.is_empty(), "indexing failed: {run:?}");
        Ok(())
    }

    /// The tenant's current tree size, from a consistency proof of size 0 (which returns the size).
    pub async fn tree_size(&self, key: &str) -> Result<u64> {
        let reply = self.call(Method::GET, "/v1/proofs/consistency?from=0", Some(key), None).await?;
        anyhow::ensure!(reply.status == StatusCode::OK, "tree size: {reply:?}");
        reply.body["to"].as_u64().context("to")
    }
}

/// The consumers of a pipeline stack's queues, driven by the test rather than in the background,
/// so a test knows when each delivery has been handled.
pub struct Pipelines {
    pub index: local_run::queues::EventSourceMapping,
    pub export: local_run::queues::EventSourceMapping,
    pub index_queue: localstack::bootstrap::QueuePair,
    pub export_queue: localstack::bootstrap::QueuePair,
    pub search: shared::search::OpenSearch,
    pub pool: shared::store::pool::StorePool,
    pub worker: shared::service::export::ExportWorker,
}

impl Pipelines {
    /// Delivers the index queue's messages to the indexer until two polls in a row find none
    /// (messages being retried come back after the queue's 1 s visibility timeout); then makes
    /// what was indexed searchable. Each delivery goes to both indexers, OpenSearch's and
    /// PostgreSQL's (the function without `OPENSEARCH_URL`), so both backends can be compared;
    /// a message fails if either fails it.
    pub async fn drain_index(&self) -> Result<()> {
        let (pool, search) = (self.pool.clone(), self.search.clone());
        let indexer = move |event| {
            let (pool, search) = (pool.clone(), search.clone());
            async move {
                let mut response = shared::sqs::handle_index_event(&pool, Some(&search), &event).await;
                let postgres = shared::sqs::handle_index_event(&pool, None, &event).await;
                for failure in postgres.batch_item_failures {
                    if !response.batch_item_failures.iter().any(|f| f.item_identifier == failure.item_identifier) {
                        response.batch_item_failures.push(failure);
                    }
                }
                response
            }
        };
        drain(&self.index, &indexer).await?;
        self.search.refresh().await?;
        Ok(())
    }

    /// Delivers the export queue's messages to the export function until it is empty.
    pub async fn drain_exports(&self) -> Result<()> {
        let worker = self.worker.clone();
        let exporter = move |event| {
            let worker = worker.clone();
            async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
                shared::sqs::handle_export_event(&worker, &event, deadline).await
            }
        };
        drain(&self.export, &exporter).await
    }

    /// The bodies of the messages in a queue (the DLQ, say), received and left there.
    pub async fn peek(&self, sdk: &SdkConfig, queue_url: &str) -> Result<Vec<String>> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let out =
            sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await?;
        Ok(out.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect())
    }
}

pub async fn drain<F, Fut>(mapping: &local_run::queues::EventSourceMapping, function: &F) -> Result<()>
where
    F: Fn(aws_lambda_events::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut empty_polls = 0;
    while empty_polls < 2 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the queue did not drain within a minute");
        if mapping.poll_once(1, function).await? == 0 {
            empty_polls += 1;
        } else {
            empty_polls = 0;
        }
    }
    Ok(())
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
