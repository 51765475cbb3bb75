//! `POST /v1/erasures` (admin): erases event content while the chain stays verifiable, and
//! answers with the receipt of the audit event that records the erasure.

use super::error::ApiError;
use super::events::{acknowledge, not_found_as};
use super::extract::{path_uuid, Authenticated, IdempotencyKey, JsonBody};
use super::state::ApiState;
use crate::auth::Scope;
use crate::chain::event::{parse_timestamp, ValidationError};
use crate::service::admin::{Actor, AdminError};
use crate::service::erasure::erase as erase_content;
use crate::store::erasure::ErasureTarget;
use crate::store::StoreError;
use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

/// Exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    /// One event.
    pub event_id: Option<String>,
    /// Every event of this actor id (a data subject's erasure request).
    pub actor_id: Option<String>,
    /// Every event received before this time (RFC 3339, not in the future).
    pub received_before: Option<String>,
}

impl ErasureBody {
    fn target(self) -> Result<ErasureTarget, ApiError> {
        match (self.event_id, self.actor_id, self.received_before) {
            (Some(id), None, None) => Ok(ErasureTarget::Event(path_uuid(&id, "event")?)),
            (None, Some(actor), None) => {
                if actor.is_empty() || actor.chars().count() > 256 {
                    return Err(ValidationError::new("actor_id", "must be 1 to 256 characters").into());
                }
                Ok(ErasureTarget::Actor(actor))
            }
            (None, None, Some(t)) => {
                let t = parse_timestamp(&t).map_err(|_| {
                    ValidationError::new(
                        "received_before",
                        "must be an RFC 3339 time with a zone, e.g. 2026-01-01T00:00:00Z",
                    )
                })?;
                if t > Utc::now() {
                    return Err(ValidationError::new("received_before", "must not be in the future").into());
                }
                Ok(ErasureTarget::ReceivedBefore(t))
            }
            _ => Err(ApiError::invalid("give exactly one of event_id, actor_id and received_before")),
        }
    }
}

/// `POST /v1/erasures` (admin). With an `Idempotency-Key`, a retry of a request that completed
/// answers with its original record.
pub async fn erase(
    State(state): State<ApiState>,
    caller: Authenticated,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(body): JsonBody<ErasureBody>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::Admin)?;
    let target = body.target()?;
    // The receipt key is ready before anything is changed.
    let signer = state.receipts()?.signer().await?;
    let mut maintenance = state.maintenance()?.get().await?;
    let actor = Actor { key_id: &caller.0.key_id };
    let done = erase_content(&mut maintenance, tenant, &target, actor, idempotency_key.as_deref()).await.map_err(
        |e| match e {
            AdminError::Store(StoreError::NotFound) => not_found_as(StoreError::NotFound, "event"),
            e => e.into(),
        },
    )?;
    drop(maintenance);
    // The erasure record's index message removes the erased content from the search index.
    state.send_outbox(tenant, &done.recorded).await;
    tracing::info!(%tenant, erased = done.erased, "content erased");
    let recorded = acknowledge(signer, tenant, &done.recorded).pop();
    Ok(Json(json!({ "erased": done.erased, "recorded": recorded })))
}
