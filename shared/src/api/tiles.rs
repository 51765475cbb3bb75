//! The log as C2SP tlog-tiles, read-only, for each tenant (`chain::tiles`): `GET /v1/log/checkpoint`
//! (the latest signed checkpoint, as its note) and `GET /v1/log/tile/<L>/<N>[.p/<W>]` and
//! `.../tile/entries/<N>[.p/<W>]`. With `<API>/v1/log/` as the log's URL prefix, existing tlog
//! clients, witnesses and mirrors read and verify a tenant's log with its read key, without
//! this API's JSON. Tiles and bundles are immutable once served, so they may be cached for good.

use super::error::ApiError;
use super::extract::Authenticated;
use super::state::ApiState;
use crate::auth::Scope;
use crate::chain::tiles::Tile;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `GET /v1/log/checkpoint`: the tenant's latest signed checkpoint, byte for byte as signed.
pub async fn checkpoint(State(state): State<ApiState>, caller: Authenticated) -> Result<Response, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    let mut store = state.store.get().await?;
    let latest = store.latest_checkpoint(tenant).await?.ok_or_else(|| ApiError::not_found("checkpoint"))?;
    Ok(body(latest.note.into_bytes(), "text/plain; charset=utf-8", "no-cache"))
}

/// `GET /v1/log/tile/{proxy+}`: a tile or an entry bundle. Every entry of the tenant is in the
/// bundles (its skeleton, never its content), so a viewer token pinned to part of the log may
/// not read them, as it may not verify the whole chain.
pub async fn tile(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = caller.unpinned_tenant_with(Scope::EventsRead)?;
    let tile = Tile::parse(&path).map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut store = state.store.get().await?;
    let data = store.tile(tenant, &tile).await?.ok_or_else(|| ApiError::not_found("tile"))?;
    Ok(body(data, "application/octet-stream", "private, max-age=31536000, immutable"))
}

fn body(data: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = (StatusCode::OK, data).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
