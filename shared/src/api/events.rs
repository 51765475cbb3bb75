//! Event routes: append one or a batch (each acknowledged with a signed receipt), list with
//! filters and a cursor, read one, and counts.

use super::error::ApiError;
use super::extract::{path_uuid, Authenticated, IdempotencyKey, JsonBody, QueryPairs};
use super::page;
use super::state::ApiState;
use super::views::{AppendedView, EntryView};
use crate::auth::Scope;
use crate::aws::receipt_keys::ReceiptSigner;
use crate::chain::receipt::ReceiptPayload;
use crate::metrics::{self, Unit};
use crate::service::ingest::{ingest, Request};
use crate::service::query::{event_stats, list_events, search_events, EventPage, EventQuery, EventStats, StatsQuery};
use crate::store::append::AppendResult;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Set on a response that replays an earlier request with the same idempotency key.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The body of `POST /v1/events/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub events: Vec<Value>,
}

/// `POST /v1/events`: one event -> 201 with its position, hashes and receipt.
pub async fn append_one(
    State(state): State<ApiState>,
    caller: Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(event): JsonBody<Value>,
) -> Result<(StatusCode, HeaderMap, Json<AppendedView>), ApiError> {
    let tenant = caller.tenant_with(Scope::EventsWrite)?;
    // The receipt key is ready before anything is written: an event is never appended without
    // a receipt to return for it.
    let signer = state.receipts()?.signer().await?;
    let started = std::time::Instant::now();
    let result = {
        let mut store = state.store.get().await?;
        let result = ingest(&mut store, tenant, Request::One(&event), key.as_deref()).await?;
        state.notify_appended(store, tenant, &result).await;
        result
    };
    record_append(&result, started);
    let mut views = acknowledge(signer, tenant, &result);
    let view = views.pop().ok_or_else(|| ApiError::internal("append returned no entry", &"empty result"))?;
    Ok((StatusCode::CREATED, replay_headers(&result), Json(view)))
}

/// `POST /v1/events/batch`: up to 1000 events, all or nothing, results in request order.
pub async fn append_batch(
    State(state): State<ApiState>,
    caller: Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<(StatusCode, HeaderMap, Json<Value>), ApiError> {
    let tenant = caller.tenant_with(Scope::EventsWrite)?;
    // The receipt key is ready before anything is written: an event is never appended without
    // a receipt to return for it.
    let signer = state.receipts()?.signer().await?;
    let started = std::time::Instant::now();
    let result = {
        let mut store = state.store.get().await?;
        let result = ingest(&mut store, tenant, Request::Batch(&body.events), key.as_deref()).await?;
        state.notify_appended(store, tenant, &result).await;
        result
    };
    record_append(&result, started);
    let views = acknowledge(signer, tenant, &result);
    let body = json!({ "count": views.len(), "tree_size": result.tree_size, "events": views });
    Ok((StatusCode::CREATED, replay_headers(&result), Json(body)))
}

/// Signs a receipt for each appended entry. The receipt key is an in-memory Ed25519 key, so this
/// costs no KMS call per event.
pub(super) fn acknowledge(signer: &ReceiptSigner, tenant: Uuid, result: &AppendResult) -> Vec<AppendedView> {
    result
        .entries
        .iter()
        .map(|a| {
            let receipt = signer.sign(&ReceiptPayload {
                tenant_id: tenant,
                event_id: a.id,
                seq: a.seq,
                leaf_hash: a.leaf_hash,
                chain_hash: a.chain_hash,
                received_at: a.received_at,
            });
            AppendedView::new(a, receipt)
        })
        .collect()
}

/// Metrics of one append: events written (replays write none) and the append's latency.
fn record_append(result: &AppendResult, started: std::time::Instant) {
    let written = if result.replayed { 0 } else { result.entries.len() };
    metrics::emit(
        &[
            ("EventsAppended", written as f64, Unit::Count),
            ("AppendLatency", started.elapsed().as_secs_f64() * 1e3, Unit::Milliseconds),
        ],
        &[("Function", "ingest")],
    );
    tracing::info!(events = written, replayed = result.replayed, tree_size = result.tree_size, "appended");
}

fn replay_headers(result: &AppendResult) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if result.replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    headers
}

/// `GET /v1/events`: filtered, ordered, paged by an opaque cursor. A page holds at most `limit`
/// entries and at most [`page::PAGE_BYTES`] of them: one that would pass the budget ends the page
/// early, with a `next_cursor` from which the next page starts at that entry.
pub async fn list(
    State(state): State<ApiState>,
    caller: Authenticated,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let (tenant, pin) = caller.reader_with(Scope::EventsRead)?;
    let mut query = EventQuery::from_params(query.iter())?;
    // A viewer token reads its pin ANDed with what it asks for; a query outside the pin
    // matches nothing.
    let pinned = match &pin {
        Some(pin) => query.filter.and(pin),
        None => Some(query.filter.clone()),
    };
    let mut page = match pinned {
        None => EventPage { entries: Vec::new(), next_cursor: None },
        Some(filter) => {
            query.filter = filter;
            let mut store = state.store.get().await?;
            match (&state.search, &query.filter.q) {
                (Some(search), Some(_)) => search_events(search, &mut store, tenant, &query).await?,
                _ => list_events(&mut store, tenant, &query).await?,
            }
        }
    };
    let fitted = page::fit(page.entries.iter().cloned().map(EntryView::new), page::PAGE_BYTES)
        .map_err(|e| ApiError::internal("serialising a page of events", &e))?;
    if fitted.cut {
        page.cut_after(fitted.items.len(), query.order);
    }
    let mut rest = serde_json::Map::new();
    rest.insert("next_cursor".into(), json!(page.next_cursor));
    Ok(page::json_response(page::object_with_list("events", &fitted.items, rest)))
}

/// `GET /v1/events/{id}`: one stored entry. Another tenant's id is 404, like an unknown one.
pub async fn get_one(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<EntryView>, ApiError> {
    let (tenant, pin) = caller.reader_with(Scope::EventsRead)?;
    let id = path_uuid(&id, "event")?;
    let mut store = state.store.get().await?;
    let stored = readable_entry(&mut store, tenant, pin.as_ref(), id).await?;
    Ok(Json(EntryView::new(stored)))
}

/// `GET /v1/stats`: counts by action, outcome and severity over a time window.
pub async fn stats(
    State(state): State<ApiState>,
    caller: Authenticated,
    query: QueryPairs,
) -> Result<Json<EventStats>, ApiError> {
    let tenant = caller.unpinned_tenant_with(Scope::EventsRead)?;
    let query = StatsQuery::from_params(query.iter())?;
    let mut store = state.store.get().await?;
    Ok(Json(event_stats(&mut store, tenant, &query).await?))
}

/// The entry `id` of `tenant`, if the caller may read it: a viewer token only reads entries its
/// pin selects, and any other is 404, exactly like an id that does not exist.
pub(super) async fn readable_entry(
    store: &mut crate::store::Store,
    tenant: Uuid,
    pin: Option<&crate::service::query::EventFilter>,
    id: Uuid,
) -> Result<crate::store::read::StoredEntry, ApiError> {
    let stored = store.get_entry(tenant, id).await.map_err(|e| not_found_as(e, "event"))?;
    if let Some(pin) = pin {
        if !store.entry_matches(tenant, stored.entry.seq, pin).await? {
            return Err(ApiError::not_found("event"));
        }
    }
    Ok(stored)
}

/// Names the missing thing in a store's not-found.
pub(super) fn not_found_as(err: crate::store::StoreError, what: &str) -> ApiError {
    match err {
        crate::store::StoreError::NotFound | crate::store::StoreError::UnknownTenant => ApiError::not_found(what),
        err => err.into(),
    }
}
