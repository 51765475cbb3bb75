//! OpenSearch over its REST API. Every request is signed with SigV4 (service `es`) from the
//! SDK configuration's credentials, as an Amazon OpenSearch Service domain with IAM access
//! requires; a node without the security plugin (the local one) ignores the signature, so
//! there is no code branch for it.
//!
//! `_bulk` answers 200 even when items failed, so [`OpenSearch::bulk`] matches every action to
//! its item in the response (one item per action, in order, each naming the action's document
//! id; anything else fails the whole request) and reports each item's outcome; the indexer
//! retries only the messages whose items failed.

use crate::chain::event::format_timestamp;
use crate::search::document::{tombstone, ERASED_VERSION};
use crate::service::query::{ActionMatch, EventFilter, Order};
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// `_bulk`, answering only the `errors` flag and each item's document id, status and error type.
const BULK_PATH: &str = "/_bulk?filter_path=errors,items.*._id,items.*.status,items.*.error.type";

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

/// One `_bulk` action: index (create or replace) the document with this id unless the index
/// holds a higher version of it (`version_type=external_gte`). Replaying a write is harmless, and
/// a write of an older state (a lower version) is refused: see `search::document`.
#[derive(Debug, Clone)]
pub struct BulkAction {
    pub tenant: Uuid,
    pub id: Uuid,
    pub version: u64,
    pub document: Value,
}

/// What `_bulk` did with one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written (2xx).
    Written,
    /// Refused because the index holds a higher version of the document (409 version conflict):
    /// the write was stale.
    Superseded,
    /// Any other status (429 rejections included): the write did not happen.
    Failed(String),
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
    /// the index if it does not exist yet, or adds the template's new fields to it if it does.
    /// Safe to repeat.
    pub async fn ensure_index(&self, template: &Value) -> Result<(), SearchError> {
        let body = serde_json::to_vec(template).map_err(|e| SearchError::Rejected(e.to_string()))?;
        self.request("PUT", "/_index_template/audit-events", &body, "application/json").await?;
        match self.request("PUT", &format!("/{}", self.index), b"{}", "application/json").await {
            Ok(_) => Ok(()),
            Err(SearchError::Rejected(m)) if m.contains("resource_already_exists_exception") => {
                // An index created from an older template gains the fields added since (adding a
                // field to a mapping is allowed; changing one is not).
                let mappings =
                    serde_json::to_vec(&json!({ "properties": template["template"]["mappings"]["properties"] }))
                        .map_err(|e| SearchError::Rejected(e.to_string()))?;
                self.request("PUT", &format!("/{}/_mapping", self.index), &mappings, "application/json").await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `actions` as one `_bulk` request and returns each action's outcome, in order. The
    /// whole call fails when the cluster did not process it or when its answer does not account
    /// for every action exactly once.
    pub async fn bulk(&self, actions: &[BulkAction]) -> Result<Vec<ItemOutcome>, SearchError> {
        self.bulk_at(BULK_PATH, actions).await
    }

    async fn bulk_at(&self, path: &str, actions: &[BulkAction]) -> Result<Vec<ItemOutcome>, SearchError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let body = bulk_body(&self.index, actions);
        // Only what the outcomes need comes back: a thousand full item results are most of the
        // response's bytes and of the time spent reading it.
        let response = self.request("POST", path, &body, "application/x-ndjson").await?;
        bulk_outcomes(&response, actions).map_err(SearchError::Rejected)
    }

    /// Tombstones the tenant's documents matching `clause` (an OpenSearch query clause) that are
    /// not tombstones yet, and returns how many. It refreshes first, so every write acknowledged
    /// before the call is found; then finds ids a page at a time and writes their tombstones with
    /// `_bulk`, refreshing so the next page no longer sees them. (`_delete_by_query` would do it in
    /// one call, but it lives in the reindex module, which not every distribution carries, and
    /// deletes rather than tombstones; erasures are rare enough for this.)
    pub async fn erase_matching(&self, tenant: Uuid, clause: Value) -> Result<u64, SearchError> {
        const PAGE: u32 = 1000;
        let body = json!({
            "size": PAGE,
            "_source": ["seq", "received_at"],
            "query": { "bool": {
                "filter": [ { "term": { "tenant_id": tenant } }, clause ],
                "must_not": [ { "term": { "erased": true } } ],
            } },
        });
        let search = format!("/{}/_search?routing={tenant}", self.index);
        let bulk_path = format!("{BULK_PATH}&refresh=true");
        self.refresh().await?;
        let mut erased = 0;
        loop {
            let response = self.request("POST", &search, body.to_string().as_bytes(), "application/json").await?;
            let hits = response["hits"]["hits"].as_array().cloned().unwrap_or_default();
            let actions = hits
                .iter()
                .map(|h| {
                    let id: Uuid = h["_id"].as_str().and_then(|i| i.parse().ok()).ok_or("a hit without its id")?;
                    let seq = h["_source"]["seq"].as_u64().ok_or("a hit without its seq")?;
                    let received_at = h["_source"]["received_at"]
                        .as_str()
                        .and_then(|t| crate::chain::event::parse_timestamp(t).ok())
                        .ok_or("a hit without its receive time")?;
                    let document = tombstone(tenant, id, seq, &received_at);
                    Ok(BulkAction { tenant, id, version: ERASED_VERSION, document })
                })
                .collect::<Result<Vec<_>, &str>>()
                .map_err(|e| SearchError::Rejected(e.to_owned()))?;
            if actions.is_empty() {
                return Ok(erased);
            }
            // A tombstone is never superseded (nothing has a higher version), so anything but
            // written fails the erasure.
            if let Some(outcome) =
                self.bulk_at(&bulk_path, &actions).await?.into_iter().find(|o| *o != ItemOutcome::Written)
            {
                return Err(SearchError::Rejected(format!("writing tombstones of erased documents: {outcome:?}")));
            }
            erased += actions.len() as u64;
            if actions.len() < PAGE as usize {
                return Ok(erased);
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
    for a in actions {
        let meta = json!({ "index": {
            "_index": index,
            "_id": a.id,
            "routing": a.tenant,
            "version": a.version,
            "version_type": "external_gte",
        } });
        body.extend_from_slice(meta.to_string().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(a.document.to_string().as_bytes());
        body.push(b'\n');
    }
    body
}

/// Matches a `_bulk` response to its actions: exactly one item per action, in order, each naming
/// the action's document id, and an `errors` flag that agrees with the items. Anything else is an
/// error for the whole request (an item missing from the answer is a write not known to have
/// happened).
fn bulk_outcomes(response: &Value, actions: &[BulkAction]) -> Result<Vec<ItemOutcome>, String> {
    let items = response["items"].as_array().ok_or("_bulk answered without items")?;
    if items.len() != actions.len() {
        return Err(format!("_bulk answered {} items for {} actions", items.len(), actions.len()));
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, (item, action)) in items.iter().zip(actions).enumerate() {
        let result = item.get("index").ok_or_else(|| format!("_bulk item {i} is not an index result: {item}"))?;
        let id = result["_id"].as_str().unwrap_or_default();
        if id != action.id.to_string() {
            return Err(format!("_bulk item {i} is for document {id:?}, not {}", action.id));
        }
        outcomes.push(item_outcome(result));
    }
    let errors = response["errors"].as_bool().ok_or("_bulk answered without its errors flag")?;
    if errors != outcomes.iter().any(|o| *o != ItemOutcome::Written) {
        return Err(format!("_bulk's errors flag ({errors}) disagrees with its items"));
    }
    Ok(outcomes)
}

/// One `_bulk` item's result: written for 2xx, superseded for a version conflict, otherwise
/// failed with its status and error type.
fn item_outcome(result: &Value) -> ItemOutcome {
    let status = result["status"].as_u64().unwrap_or(0);
    let kind = result["error"]["type"].as_str().unwrap_or("error");
    match status {
        200..=299 => ItemOutcome::Written,
        409 if kind == "version_conflict_engine_exception" => ItemOutcome::Superseded,
        _ => ItemOutcome::Failed(format!("{status} {kind}")),
    }
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
        // Tombstones hold no text, but a query of exclusions alone (`-word`) matches documents
        // without text too: an erased entry is never a hit.
        "query": { "bool": { "filter": filters, "must": must, "must_not": [ { "term": { "erased": true } } ] } },
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

    fn action(n: u128) -> BulkAction {
        BulkAction { tenant: Uuid::from_u128(1), id: Uuid::from_u128(n), version: 1, document: json!({}) }
    }

    fn item(n: u128, status: u64, error: Option<&str>) -> Value {
        let mut result = json!({ "_id": Uuid::from_u128(n).to_string(), "status": status });
        if let Some(kind) = error {
            result["error"] = json!({ "type": kind });
        }
        json!({ "index": result })
    }

    #[test]
    fn bulk_items_are_written_superseded_or_failed_by_status() {
        let actions: Vec<BulkAction> = (1..=5).map(action).collect();
        let response = json!({ "errors": true, "items": [
            item(1, 201, None),
            item(2, 200, None),
            item(3, 409, Some("version_conflict_engine_exception")),
            item(4, 429, Some("es_rejected_execution_exception")),
            item(5, 400, Some("mapper_parsing_exception")),
        ] });
        assert_eq!(
            bulk_outcomes(&response, &actions).unwrap(),
            vec![
                ItemOutcome::Written,
                ItemOutcome::Written,
                ItemOutcome::Superseded,
                ItemOutcome::Failed("429 es_rejected_execution_exception".into()),
                ItemOutcome::Failed("400 mapper_parsing_exception".into()),
            ]
        );
        // A 409 that is not a version conflict, and an item without a status, are failures.
        let odd = json!({ "errors": true, "items": [ item(1, 409, Some("other")), json!({ "index": { "_id": Uuid::from_u128(2).to_string() } }) ] });
        let outcomes = bulk_outcomes(&odd, &actions[..2]).unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, ItemOutcome::Failed(_))), "{outcomes:?}");
    }

    #[test]
    fn a_bulk_answer_that_does_not_account_for_every_action_in_order_is_refused() {
        let actions: Vec<BulkAction> = (1..=3).map(action).collect();
        let ok = |ids: &[u128]| json!({ "errors": false, "items": ids.iter().map(|&n| item(n, 201, None)).collect::<Vec<_>>() });
        assert!(bulk_outcomes(&ok(&[1, 2, 3]), &actions).is_ok());
        for (response, why) in [
            (ok(&[1, 2]), "an item missing"),
            (ok(&[1, 2, 3, 3]), "an item too many"),
            (ok(&[1, 3, 2]), "items out of order"),
            (ok(&[1, 2, 4]), "an item for another document"),
            (json!({ "items": ok(&[1, 2, 3])["items"] }), "no errors flag"),
            (json!({ "errors": true, "items": ok(&[1, 2, 3])["items"] }), "errors flag without a failed item"),
            (
                json!({ "errors": false, "items": [item(1, 201, None), item(2, 429, Some("x")), item(3, 201, None)] }),
                "a failed item under errors: false",
            ),
            (json!({ "errors": false }), "no items"),
            (
                json!({ "errors": false, "items": [ { "delete": { "_id": Uuid::from_u128(1).to_string(), "status": 200 } }, item(2, 201, None), item(3, 201, None) ] }),
                "an item of another kind",
            ),
        ] {
            assert!(bulk_outcomes(&response, &actions).is_err(), "{why}");
        }
    }

    #[test]
    fn bulk_actions_carry_their_external_version() {
        let body = String::from_utf8(bulk_body("i", &[BulkAction { version: 2, ..action(7) }])).unwrap();
        let meta: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
        assert_eq!(meta["index"]["version"], 2);
        assert_eq!(meta["index"]["version_type"], "external_gte");
        assert_eq!(meta["index"]["routing"], Uuid::from_u128(1).to_string());
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
        assert_eq!(body["query"]["bool"]["must_not"], json!([{ "term": { "erased": true } }]));
    }
}
