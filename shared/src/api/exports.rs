//! Export routes: request an export of a filter (202, then the export function does the work),
//! read one export's status with presigned download URLs once done, list the tenant's exports.
//! Another tenant's export id is 404, like an unknown one: jobs are only ever looked up under the
//! caller's tenant.

use super::error::ApiError;
use super::extract::{path_uuid, Authenticated, JsonBody};
use super::page;
use super::state::ApiState;
use crate::auth::Scope;
use crate::service::export::{job_view, ExportError, ExportRequest};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::Value;

impl From<ExportError> for ApiError {
    fn from(err: ExportError) -> Self {
        match err {
            ExportError::Invalid(e) => e.into(),
            ExportError::NotFound => ApiError::not_found("export"),
            ExportError::Store(e) => e.into(),
            e @ (ExportError::Jobs(_) | ExportError::Objects(_) | ExportError::Queue(_)) => {
                ApiError::unavailable("export storage unavailable", &e)
            }
            e => ApiError::internal("export request failed", &e),
        }
    }
}

/// `POST /v1/exports`: 202 with the queued job.
pub async fn create(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<ExportRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant_with(Scope::Exports)?;
    let job = state.exports()?.create(tenant, body, caller.0.pin.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, Json(job_view(&job, None))))
}

/// `GET /v1/exports/{id}`: status and counts; presigned URLs once done.
pub async fn get_one(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::Exports)?;
    let id = path_uuid(&id, "export")?;
    let exports = state.exports()?;
    let job = exports.get(tenant, id).await?;
    // A viewer token sees only the exports made under its own pin; any other is 404.
    if job.pin.as_ref() != caller.0.pin.as_ref() && caller.0.pin.is_some() {
        return Err(ApiError::not_found("export"));
    }
    let download = exports.downloads(&job).await?;
    Ok(Json(job_view(&job, download)))
}

/// `GET /v1/exports`: the tenant's newest exports (without URLs), newest first: at most
/// [`LIST_LIMIT`](crate::service::export::LIST_LIMIT) of them and at most [`page::PAGE_BYTES`] (a job's filter can hold ten values of
/// up to 1024 characters each, so 100 jobs could pass the response limit).
pub async fn list(State(state): State<ApiState>, caller: Authenticated) -> Result<Response, ApiError> {
    let tenant = caller.tenant_with(Scope::Exports)?;
    let jobs = state.exports()?.list(tenant).await?;
    let visible = jobs.iter().filter(|j| caller.0.pin.is_none() || j.pin == caller.0.pin);
    let fitted = page::fit(visible.map(|j| job_view(j, None)), page::PAGE_BYTES)
        .map_err(|e| ApiError::internal("serialising the export list", &e))?;
    Ok(page::json_response(page::object_with_list("exports", &fitted.items, Default::default())))
}
