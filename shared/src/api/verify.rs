//! `POST /v1/verify`: re-verifies a range of the caller's chain from the stored entries, and
//! against the latest signed checkpoint with the checkpoint key.

use super::error::ApiError;
use super::extract::{Authenticated, OptionalJsonBody};
use super::state::ApiState;
use crate::auth::Scope;
use crate::metrics::{self, Unit};
use crate::service::verify::{verify_range, CheckpointKey, VerifyReport};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

/// The most entries one request verifies, so a request ends well within API Gateway's 29-second
/// limit (about 180,000 entries a second are verified; see the README's benchmarks). Longer
/// chains are verified in ranges, or continuously by the scheduled verifier.
pub const MAX_VERIFY_ENTRIES: u64 = 2_000_000;

/// The optional body: a seq range `[from, to)`; both default to the whole chain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

pub async fn verify(
    State(state): State<ApiState>,
    caller: Authenticated,
    OptionalJsonBody(body): OptionalJsonBody<VerifyBody>,
) -> Result<Json<VerifyReport>, ApiError> {
    let tenant = caller.unpinned_tenant_with(Scope::EventsRead)?;
    let body = body.unwrap_or_default();
    let checkpoint_key = state.checkpoint_key()?;
    let (key_name, spki_der) = checkpoint_key.get().await?;
    let mut store = state.store.get().await?;
    let from = body.from.unwrap_or(0);
    let to = match body.to {
        Some(to) => to,
        None => store.tree_head(tenant).await?.size,
    };
    if to.saturating_sub(from) > MAX_VERIFY_ENTRIES {
        return Err(ApiError::invalid(format!(
            "a request verifies at most {MAX_VERIFY_ENTRIES} entries; give a range with from and to (the tree has {to})"
        )));
    }
    let key = CheckpointKey { name: key_name, spki_der, retired: checkpoint_key.retired() };
    let report = verify_range(&mut store, tenant, from, Some(to), Some(key)).await?;
    metrics::emit(
        &[
            ("EntriesVerified", report.verified as f64, Unit::Count),
            ("VerificationFailures", f64::from(u8::from(!report.ok)), Unit::Count),
        ],
        &[("Function", "verify")],
    );
    if !report.ok {
        tracing::error!(
            alert = true,
            %tenant,
            first_bad_seq = report.first_bad_seq,
            reason = report.reason.as_deref().unwrap_or(""),
            "chain verification failed"
        );
    }
    Ok(Json(report))
}
