//! OpenSearch over its REST API. Every request is signed with SigV4 (service `es`) from the
//! SDK configuration's credentials, as an Amazon OpenSearch Service domain with IAM access
//! requires; a node without the security plugin (the local one) ignores the signature, so
//! there is no code branch for it.
//!
//! `_bulk` answers 200 even when items failed, so [`OpenSearch::bulk`] reads every item's status
//! and reports each one; the indexer retries only the messages whose items failed.

use crate::chain::event::format_timestamp;
use crate::service::query::{ActionMatch, EventFilter, Order};
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// `_bulk`, answering only each item's status and error type.
const BULK_PATH: &str = "/_bulk?filter_path=items.*.status,items.*.error.type";

/// How long one request may take before it counts as the cluster being unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The cluster could not be reached or was overloaded (connection refused, timeout, 429,
    /// 5xx): retrying later may succeed.
    #[error("OpenSearch unavailable: {0}")]
    Unavailable(String),
    /// The cluster refused the request (4xx other than 429): retrying the same request fails
    /// again.
    #[error("OpenSearch refused the request: {0}")]
    Rejected(String),
    #[error("signing the OpenSearch request failed: {0}")]
    Signing(String),
}

/// One `_bulk` action.
#[derive(Debug, Clone)]
pub enum BulkAction {
    /// Index (create or replace) the document with this id: replaying it is harmless.
    Index { tenant: Uuid, id: Uuid, document: Value },
    /// Delete the document with this id; a missing document counts as deleted.
    Delete { tenant: Uuid, id: Uuid },
}

/// A cluster and the index the log's documents live in.
#[derive(Debug, Clone)]
pub struct OpenSearch {
    http: reqwest::Client,
    base: String,
    index: String,
    sdk: SdkConfig,
}

impl OpenSearch {
    /// `url` is the cluster's base URL (`https://vpc-...es.amazonaws.com`, or
    /// `http://127.0.0.1:9200` locally); `index` the index (or alias) name.
    pub fn new(sdk: &SdkConfig, url: &str, index: &str) -> Result<Self, SearchError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| SearchError::Signing(e.to_string()))?;
        Ok(OpenSearch { http, base: url.trim_end_matches('/').to_owned(), index: index.to_owned(), sdk: sdk.clone() })
    }

    pub fn index(&self) -> &str {
        &self.index
    }

    /// Sends one signed request and returns the status and parsed JSON body.
    async fn request(&self, method: &str, path: &str, body: &[u8], content_type: &str) -> Result<Value, SearchError> {
        let url = format!("{}{path}", self.base);
        let headers = self.sign(method, &url, body, content_type).await?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| SearchError::Signing(e.to_string()))?;
        let mut request = self.http.request(method, &url).header("content-type", content_type).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| SearchError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| SearchError::Unavailable(e.without_url().to_string()))?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(SearchError::Unavailable(format!("{status}: {}", first_chars(&text))));
        }
        if !status.is_success() {
            return Err(SearchError::Rejected(format!("{status}: {}", first_chars(&text))));
        }
        serde_json::from_str(&text).map_err(|e| SearchError::Rejected(format!("unreadable response: {e}")))
    }

    /// The SigV4 headers for a request (service `es`, the SDK configuration's region).
    async fn sign(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        content_type: &str,
    ) -> Result<Vec<(String, String)>, SearchError> {
        let Some(provider) = self.sdk.credentials_provider() else {
            return Ok(Vec::new());
        };
        let credentials =
            provider.provide_credentials().await.map_err(|e| SearchError::Signing(format!("credentials: {e}")))?;
        let identity = credentials.into();
        let region = self.sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_owned());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name("es")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SearchError::Signing(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            std::iter::once(("content-type", content_type)),
            SignableBody::Bytes(body),
        )
        .map_err(|e| SearchError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| SearchError::Signing(e.to_string()))?.into_parts();
        Ok(instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }

    /// Applies the index template (mappings and settings from `infra/opensearch/`) and creates
    /// the index if it does not exist yet. Safe to repeat.
    pub async fn ensure_index(&self, template: &Value) -> Result<(), SearchError> {
        let body = serde_json::to_vec(template).map_err(|e| SearchError::Rejected(e.to_string()))?;
        self.request("PUT", "/_index_template/audit-events", &body, "application/json").await?;
        match self.request("PUT", &format!("/{}", self.index), b"{}", "application/json").await {
            Ok(_) => Ok(()),
            Err(SearchError::Rejected(m)) if m.contains("resource_already_exists_exception") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs `actions` as one `_bulk` request and returns each item's outcome in order: `Ok` or
    /// the item's error. The whole call fails only when the cluster did not process it.
    pub async fn bulk(&self, actions: &[BulkAction]) -> Result<Vec<Result<(), String>>, SearchError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let body = bulk_body(&self.index, actions);
        // Only what the outcomes need comes back: a thousand full item results are most of the
        // response's bytes and of the time spent reading it.
        let response = self.request("POST", BULK_PATH, &body, "application/x-ndjson").await?;
        let items = response["items"].as_array().ok_or_else(|| SearchError::Rejected("_bulk without items".into()))?;
        if items.len() != actions.len() {
            return Err(SearchError::Rejected(format!("_bulk answered {} items for {}", items.len(), actions.len())));
        }
        Ok(items.iter().map(item_outcome).collect())
    }

    /// Deletes the tenant's documents matching `clause` (an OpenSearch query clause): finds
    /// their ids a page at a time and deletes them with `_bulk`, refreshing so the next page no
    /// longer sees them. (`_delete_by_query` would do it in one call, but it lives in the reindex
    /// module, which not every distribution carries; erasures are rare enough for this.)
    pub async fn delete_matching(&self, tenant: Uuid, clause: Value) -> Result<u64, SearchError> {
        const PAGE: u32 = 1000;
        let body = json!({
            "size": PAGE,
            "_source": false,
            "query": { "bool": { "filter": [ { "term": { "tenant_id": tenant } }, clause ] } },
        });
        let search = format!("/{}/_search?routing={tenant}", self.index);
        let mut deleted = 0;
        loop {
            let response = self.request("POST", &search, body.to_string().as_bytes(), "application/json").await?;
            let ids: Vec<Uuid> = response["hits"]["hits"]
                .as_array()
                .map(|hits| hits.iter().filter_map(|h| h["_id"].as_str()?.parse().ok()).collect())
                .unwrap_or_default();
            if ids.is_empty() {
                return Ok(deleted);
            }
            let actions: Vec<BulkAction> = ids.iter().map(|&id| BulkAction::Delete { tenant, id }).collect();
            let body = bulk_body(&self.index, &actions);
            let response = self.request("POST", "/_bulk?refresh=true", &body, "application/x-ndjson").await?;
            let items = response["items"].as_array().cloned().unwrap_or_default();
            if let Some(error) = items.iter().map(item_outcome).find_map(Result::err) {
                return Err(SearchError::Rejected(format!("deleting erased documents: {error}")));
            }
            deleted += ids.len() as u64;
            if ids.len() < PAGE as usize {
                return Ok(deleted);
            }
        }
    }

    /// Makes recent writes searchable now (tests and benchmarks; the index refreshes itself
    /// every second).
    pub async fn refresh(&self) -> Result<(), SearchError> {
        self.request("POST", &format!("/{}/_refresh", self.index), b"", "application/json").await?;
        Ok(())
    }

    /// The seqs of the tenant's entries matching `filter` (whose `q` is set), in `order`, after
    /// `after` (a cursor's seq), at most `limit`.
    pub async fn search_seqs(
        &self,
        tenant: Uuid,
        filter: &EventFilter,
        order: Order,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<u64>, SearchError> {
        let body = search_body(tenant, filter, order, after, limit);
        let path = format!("/{}/_search?routing={tenant}", self.index);
        let response = self.request("POST", &path, body.to_string().as_bytes(), "application/json").await?;
        let hits = response["hits"]["hits"].as_array().cloned().unwrap_or_default();
        hits.iter()
            .map(|h| {
                h["fields"]["seq"][0].as_u64().ok_or_else(|| SearchError::Rejected("a hit without its seq".into()))
            })
            .collect()
    }
}

fn first_chars(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The NDJSON body of a `_bulk` request.
pub fn bulk_body(index: &str, actions: &[BulkAction]) -> Vec<u8> {
    let mut body = Vec::with_capacity(actions.len() * 512);
    for action in actions {
        let (meta, document) = match action {
            BulkAction::Index { tenant, id, document } => {
                (json!({ "index": { "_index": index, "_id": id, "routing": tenant } }), Some(document))
            }
            BulkAction::Delete { tenant, id } => {
                (json!({ "delete": { "_index": index, "_id": id, "routing": tenant } }), None)
            }
        };
        body.extend_from_slice(meta.to_string().as_bytes());
        body.push(b'\n');
        if let Some(document) = document {
            body.extend_from_slice(document.to_string().as_bytes());
            body.push(b'\n');
        }
    }
    body
}

/// One `_bulk` item: success for 2xx, and for deleting a document that is not there.
fn item_outcome(item: &Value) -> Result<(), String> {
    let (kind, result) = item.as_object().and_then(|m| m.iter().next()).ok_or("an empty _bulk item")?;
    let status = result["status"].as_u64().unwrap_or(0);
    if (200..300).contains(&status) || (kind == "delete" && status == 404) {
        return Ok(());
    }
    Err(format!("{status} {}", result["error"]["type"].as_str().unwrap_or("error")))
}

/// PostgreSQL's `websearch_to_tsquery` syntax (words, "phrases", `-word`, `or`) in
/// `simple_query_string`'s (`|` for or), so `q` means the same on both backends.
pub fn query_string(q: &str) -> String {
    let mut out = Vec::new();
    let mut in_quotes = false;
    for word in q.split_whitespace() {
        if !in_quotes && word.eq_ignore_ascii_case("or") {
            out.push("|".to_owned());
        } else {
            out.push(word.to_owned());
        }
        in_quotes ^= word.matches('"').count() % 2 == 1;
    }
    out.join(" ")
}

/// The `_search` body: the tenant and every filter as filters, `q` over `text`, seq order.
pub fn search_body(tenant: Uuid, f: &EventFilter, order: Order, after: Option<u64>, limit: u32) -> Value {
    let mut filters = vec![json!({ "term": { "tenant_id": tenant } })];
    match &f.action {
        Some(ActionMatch::Exact(a)) => filters.push(json!({ "term": { "action": a } })),
        Some(ActionMatch::Prefix(p)) => filters.push(json!({ "prefix": { "action": p } })),
        None => {}
    }
    let terms = [
        ("actor_id", f.actor_id.as_deref()),
        ("resource_type", f.resource_type.as_deref()),
        ("resource_id", f.resource_id.as_deref()),
        ("outcome", f.outcome.map(|o| o.as_str())),
        ("severity", f.severity.map(|s| s.as_str())),
        ("source", f.source.as_deref()),
    ];
    for (field, value) in terms {
        if let Some(v) = value {
            filters.push(json!({ "term": { field: v } }));
        }
    }
    let mut occurred = serde_json::Map::new();
    if let Some(from) = f.from {
        occurred.insert("gte".into(), json!(format_timestamp(&from)));
    }
    if let Some(to) = f.to {
        occurred.insert("lt".into(), json!(format_timestamp(&to)));
    }
    if !occurred.is_empty() {
        filters.push(json!({ "range": { "occurred_at": occurred } }));
    }
    let direction = if order == Order::Asc { "asc" } else { "desc" };
    if let Some(seq) = after {
        let op = if order == Order::Asc { "gt" } else { "lt" };
        filters.push(json!({ "range": { "seq": { op: seq } } }));
    }
    let mut must = Vec::new();
    if let Some(q) = &f.q {
        must.push(json!({ "simple_query_string": {
            "query": query_string(q),
            "fields": ["text"],
            "default_operator": "and",
            "flags": "AND|OR|NOT|PHRASE|WHITESPACE",
        } }));
    }
    json!({
        "size": limit,
        "track_total_hits": false,
        "_source": false,
        "docvalue_fields": ["seq"],
        "sort": [ { "seq": direction } ],
        "query": { "bool": { "filter": filters, "must": must } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn or_becomes_a_pipe_outside_quotes_only() {
        assert_eq!(query_string("login or logout"), "login | logout");
        assert_eq!(query_string("\"this or that\" -spam"), "\"this or that\" -spam");
    }

    #[test]
    fn bulk_items_fail_on_errors_but_not_on_deleting_what_is_gone() {
        assert_eq!(item_outcome(&json!({"index": {"status": 201}})), Ok(()));
        assert_eq!(item_outcome(&json!({"delete": {"status": 404}})), Ok(()));
        assert_eq!(
            item_outcome(&json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}})),
            Err("400 mapper_parsing_exception".to_owned())
        );
        assert!(item_outcome(&json!({"index": {"status": 404}})).is_err());
    }

    #[test]
    fn every_search_is_filtered_by_its_tenant_and_pages_by_seq() {
        let tenant = Uuid::from_u128(7);
        let f = EventFilter { q: Some("x".into()), actor_id: Some("ada".into()), ..Default::default() };
        let body = search_body(tenant, &f, Order::Desc, Some(40), 10);
        let filters = body["query"]["bool"]["filter"].as_array().unwrap();
        assert_eq!(filters[0], json!({ "term": { "tenant_id": tenant } }));
        assert!(filters.contains(&json!({ "term": { "actor_id": "ada" } })));
        assert!(filters.contains(&json!({ "range": { "seq": { "lt": 40 } } })));
        assert_eq!(body["sort"], json!([{ "seq": "desc" }]));
    }
}
