//! Proof and checkpoint routes: RFC 9162 inclusion proofs (one event, or a page of them against
//! one checkpoint) and consistency proofs, the tenant's signed checkpoints, and the public keys a
//! client needs to check checkpoints and receipts offline.

use super::error::ApiError;
use super::events::not_found_as;
use super::extract::{path_uuid, Authenticated, JsonBody, QueryPairs};
use super::state::ApiState;
use super::views::{CheckpointView, EntryView};
use crate::auth::Scope;
use crate::aws::anchors::anchor_key;
use crate::chain::checkpoint::{key_id_ecdsa, public_key_pem, verifier_key};
use crate::chain::event::ValidationError;
use crate::chain::hash::Hash;
use crate::service::checkpoint::tenant_origin;
use crate::service::global_log::{logged_head, GLOBAL_LOG};
use crate::store::checkpoints::StoredCheckpoint;
use crate::store::Store;
use axum::extract::{Path, State};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// An inclusion proof of one event.
#[derive(Debug, Serialize)]
pub struct InclusionView {
    pub event_id: uuid::Uuid,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub root: Hash,
    /// RFC 9162 audit path, leaf to root.
    pub audit_path: Vec<Hash>,
    /// The signed checkpoint at `tree_size`, when one was signed at exactly that size.
    pub checkpoint: Option<CheckpointView>,
}

/// Reads named unsigned integer parameters; anything else, repeats or non-numbers are rejected.
fn u64_params<const N: usize>(query: &QueryPairs, names: [&str; N]) -> Result<[Option<u64>; N], ApiError> {
    let mut out = [None; N];
    for (name, value) in query.iter() {
        let Some(i) = names.iter().position(|n| *n == name) else {
            return Err(ValidationError::new(name, "unknown query parameter").into());
        };
        if out[i].is_some() {
            return Err(ValidationError::new(name, "given more than once").into());
        }
        let parsed = value
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= i64::MAX as u64)
            .ok_or_else(|| ValidationError::new(name, "must be a non-negative integer"))?;
        out[i] = Some(parsed);
    }
    Ok(out)
}

/// `GET /v1/events/{id}/proof?tree_size=N`. Without `tree_size`: the latest signed checkpoint if
/// it covers the event, else the current tree.
pub async fn inclusion(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Json<InclusionView>, ApiError> {
    let (tenant, pin) = caller.reader_with(Scope::EventsRead)?;
    let [requested] = u64_params(&query, ["tree_size"])?;
    let id = path_uuid(&id, "event")?;
    let mut store = state.store.get().await?;
    let entry = super::events::readable_entry(&mut store, tenant, pin.as_ref(), id).await?;
    let seq = entry.entry.seq;
    let (tree_size, checkpoint) = match requested {
        Some(size) => {
            let checkpoint = match store.checkpoint_at(tenant, size).await {
                Ok(c) => Some(c),
                Err(crate::store::StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            };
            (size, checkpoint)
        }
        None => match store.latest_checkpoint(tenant).await? {
            Some(c) if c.tree_size > seq => (c.tree_size, Some(c)),
            _ => (store.tree_head(tenant).await?.size, None),
        },
    };
    if tree_size <= seq {
        return Err(ValidationError::new("tree_size", format!("must be greater than the event's seq {seq}")).into());
    }
    let audit_path = store.inclusion_proof(tenant, seq, tree_size).await?;
    let root = match &checkpoint {
        Some(c) => c.root,
        None => store.root_at(tenant, tree_size).await?,
    };
    Ok(Json(InclusionView {
        event_id: id,
        leaf_index: seq,
        tree_size,
        leaf_hash: entry.leaf_hash,
        root,
        audit_path,
        checkpoint: checkpoint.map(CheckpointView::from),
    }))
}

/// `GET /v1/proofs/consistency?from=A&to=B`: proves the tree of size B extends the one of size A.
pub async fn consistency(
    State(state): State<ApiState>,
    caller: Authenticated,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    let [from, to] = u64_params(&query, ["from", "to"])?;
    let from = from.ok_or_else(|| ValidationError::new("from", "is required"))?;
    let mut store = state.store.get().await?;
    let to = match to {
        Some(to) => to,
        None => store.tree_head(tenant).await?.size,
    };
    if from > to {
        return Err(ValidationError::new("from", format!("must not exceed to ({to})")).into());
    }
    let proof = store.consistency_proof(tenant, from, to).await?;
    let from_root = store.root_at(tenant, from).await?;
    let to_root = store.root_at(tenant, to).await?;
    Ok(Json(json!({ "from": from, "to": to, "from_root": from_root, "to_root": to_root, "proof": proof })))
}

/// `GET /v1/checkpoints/latest`.
pub async fn latest_checkpoint(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<CheckpointView>, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    let mut store = state.store.get().await?;
    let latest = store.latest_checkpoint(tenant).await?.ok_or_else(|| ApiError::not_found("checkpoint"))?;
    Ok(Json(latest.into()))
}

/// `GET /v1/checkpoints/{tree_size}`.
pub async fn checkpoint_at(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(tree_size): Path<String>,
) -> Result<Json<CheckpointView>, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    let tree_size: u64 = tree_size.parse().map_err(|_| ApiError::not_found("checkpoint"))?;
    let mut store = state.store.get().await?;
    let checkpoint = store.checkpoint_at(tenant, tree_size).await.map_err(|e| not_found_as(e, "checkpoint"))?;
    Ok(Json(checkpoint.into()))
}

/// Where a tenant checkpoint sits in the service-wide log of tenant heads.
#[derive(Debug, Serialize)]
pub struct GlobalProofView {
    /// The tenant's checkpoint at the requested size.
    pub checkpoint: CheckpointView,
    /// The global log's entry recording it: recompute its leaf hash from `event` and `salt`
    /// like any entry's, and read the head from `event.metadata`.
    pub entry: EntryView,
    pub leaf_index: u64,
    /// RFC 9162 audit path from the entry's leaf to `global_checkpoint`'s root.
    pub audit_path: Vec<Hash>,
    /// The global log's latest signed checkpoint; its note is anchored in S3 under `anchor_key`.
    pub global_checkpoint: CheckpointView,
    pub anchor_key: String,
}

/// `GET /v1/checkpoints/{tree_size}/global-proof`: proves that this tenant's checkpoint is a
/// leaf of the service-wide log of tenant heads, against that log's latest signed checkpoint,
/// whose anchor in S3 nobody can rewrite. 404 until the checkpointer has recorded and covered
/// it (within one schedule period of its signing).
pub async fn global_proof(
    State(state): State<ApiState>,
    caller: Authenticated,
    Path(tree_size): Path<String>,
) -> Result<Json<GlobalProofView>, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    let tree_size: u64 = tree_size.parse().map_err(|_| ApiError::not_found("checkpoint"))?;
    let mut store = state.store.get().await?;
    let checkpoint = store.checkpoint_at(tenant, tree_size).await.map_err(|e| not_found_as(e, "checkpoint"))?;
    let proof = global_proof_of(&mut store, tenant, checkpoint).await?.ok_or_else(|| {
        ApiError::not_found("a global log checkpoint covering this checkpoint (try after the next checkpointer run)")
    })?;
    Ok(Json(proof))
}

/// Where `checkpoint` sits in the global log, or `None` until the checkpointer has recorded it
/// and signed a global checkpoint that covers it.
async fn global_proof_of(
    store: &mut Store,
    tenant: uuid::Uuid,
    checkpoint: StoredCheckpoint,
) -> Result<Option<GlobalProofView>, ApiError> {
    let Some((entry, _)) = logged_head(store, tenant, checkpoint.tree_size).await? else { return Ok(None) };
    let leaf_index = entry.entry.seq;
    let Some(global) = store.latest_checkpoint(GLOBAL_LOG).await?.filter(|g| g.tree_size > leaf_index) else {
        return Ok(None);
    };
    let audit_path = store.inclusion_proof(GLOBAL_LOG, leaf_index, global.tree_size).await?;
    Ok(Some(GlobalProofView {
        checkpoint: checkpoint.into(),
        entry: EntryView::new(entry),
        leaf_index,
        audit_path,
        anchor_key: anchor_key(global.tree_size),
        global_checkpoint: global.into(),
    }))
}

/// The most ids one batch proof request takes (a page of the console).
pub const MAX_BATCH_IDS: usize = 100;

/// `POST /v1/proofs/inclusion`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInclusionRequest {
    pub ids: Vec<String>,
    /// The signed checkpoint to prove against; the latest one when absent.
    #[serde(default)]
    pub tree_size: Option<u64>,
}

/// One entry's proof in a batch.
#[derive(Debug, Serialize)]
pub struct BatchProofItem {
    pub id: uuid::Uuid,
    pub seq: u64,
    pub leaf_index: u64,
    /// RFC 9162 audit path, leaf to the checkpoint's root.
    pub audit_path: Vec<Hash>,
}

/// An id the batch could not prove, and why: `not_found` (no event of this tenant has it) or
/// `not_signed_yet` (appended after the checkpoint).
#[derive(Debug, Serialize)]
pub struct BatchMissing {
    pub id: String,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// `POST /v1/proofs/inclusion`'s answer.
#[derive(Debug, Serialize)]
pub struct BatchInclusionView {
    pub tree_size: u64,
    pub checkpoint: CheckpointView,
    /// In request order, one per id that is proved.
    pub proofs: Vec<BatchProofItem>,
    pub missing: Vec<BatchMissing>,
    /// As `GET /v1/checkpoints/{tree_size}/global-proof`; null until the checkpoint is anchored.
    pub global_proof: Option<GlobalProofView>,
}

/// `POST /v1/proofs/inclusion`: inclusion proofs of up to [`MAX_BATCH_IDS`] events against one
/// signed checkpoint (the latest, or the one at `tree_size`), with that checkpoint's proof in the
/// global log when it is anchored: everything a page needs to verify its entries, in a constant
/// number of queries whatever the number of ids.
pub async fn batch_inclusion(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(request): JsonBody<BatchInclusionRequest>,
) -> Result<Json<BatchInclusionView>, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    if request.ids.is_empty() || request.ids.len() > MAX_BATCH_IDS {
        return Err(ValidationError::new("ids", format!("must hold 1 to {MAX_BATCH_IDS} event ids")).into());
    }
    let ids: Vec<uuid::Uuid> = request
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| id.parse().map_err(|_| ValidationError::new(format!("ids[{i}]"), "is not an event id (a UUID)")))
        .collect::<Result<_, _>>()?;
    if let Some(size) = request.tree_size {
        if size > i64::MAX as u64 {
            return Err(ValidationError::new("tree_size", "must be a non-negative integer").into());
        }
    }
    let mut store = state.store.get().await?;
    let checkpoint = match request.tree_size {
        Some(size) => store.checkpoint_at(tenant, size).await.map_err(|e| not_found_as(e, "checkpoint"))?,
        None => store
            .latest_checkpoint(tenant)
            .await?
            .ok_or_else(|| ApiError::not_found("signed checkpoint (try after the next checkpointer run)"))?,
    };
    let tree_size = checkpoint.tree_size;
    let seqs = store.seqs_of_events(tenant, &ids).await?;

    let mut proved = Vec::new();
    let mut missing = Vec::new();
    for (text, id) in request.ids.iter().zip(&ids) {
        match seqs.get(id) {
            None => missing.push(BatchMissing {
                id: text.clone(),
                code: "not_found",
                message: "no event of this tenant has this id".into(),
                seq: None,
            }),
            Some(&seq) if seq >= tree_size => missing.push(BatchMissing {
                id: text.clone(),
                code: "not_signed_yet",
                message: format!("seq {seq} was appended after the checkpoint of tree size {tree_size}"),
                seq: Some(seq),
            }),
            Some(&seq) => proved.push((*id, seq)),
        }
    }
    let proved_seqs: Vec<u64> = proved.iter().map(|(_, seq)| *seq).collect();
    let paths = store.inclusion_proofs(tenant, &proved_seqs, tree_size).await?;
    let proofs = proved
        .into_iter()
        .zip(paths)
        .map(|((id, seq), audit_path)| BatchProofItem { id, seq, leaf_index: seq, audit_path })
        .collect();
    let global_proof = global_proof_of(&mut store, tenant, checkpoint.clone()).await?;
    Ok(Json(BatchInclusionView { tree_size, checkpoint: checkpoint.into(), proofs, missing, global_proof }))
}

/// `GET /v1/checkpoints/public-key`: the key checkpoints are signed with, the retired keys older
/// notes were signed with, and this tenant's origin line, so a verifier can be configured
/// without trusting anything else.
pub async fn checkpoint_public_key(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant_with(Scope::EventsRead)?;
    let checkpoint_key = state.checkpoint_key()?;
    let (key_name, der) = checkpoint_key.get().await?;
    let describe = |der: &[u8]| -> Result<Value, ApiError> {
        let pem = public_key_pem(der).map_err(|e| ApiError::internal("encoding the checkpoint key", &e))?;
        let verifier =
            verifier_key(key_name, der).map_err(|e| ApiError::internal("encoding the checkpoint key", &e))?;
        Ok(json!({
            "key_id": hex::encode(key_id_ecdsa(der)),
            "public_key": base64::engine::general_purpose::STANDARD.encode(der),
            "public_key_pem": pem,
            "verifier_key": verifier,
        }))
    };
    let mut current = describe(der)?;
    current["key_name"] = json!(key_name);
    current["algorithm"] = json!("ECDSA_P256_SHA256");
    current["origin"] = json!(tenant_origin(&state.checkpoint_origin, tenant));
    // Notes name their key id; older notes verify with the retired key of that id.
    current["retired"] = Value::Array(checkpoint_key.retired().iter().map(|d| describe(d)).collect::<Result<_, _>>()?);
    Ok(Json(current))
}

/// `GET /v1/receipts/public-key`: every receipt key, current first.
pub async fn receipt_public_keys(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_with(Scope::EventsRead)?;
    let keys = state.receipts()?.public_keys().await?;
    Ok(Json(json!({ "algorithm": "Ed25519", "keys": keys })))
}
