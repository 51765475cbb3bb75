//! Response bodies. Hashes are lowercase hex, times RFC 3339 UTC with microseconds, salts and
//! keys standard base64; docs/FORMATS.md says how a client checks each one.

use crate::chain::event::format_timestamp;
use crate::chain::hash::Hash;
use crate::chain::receipt::Receipt;
use crate::store::append::Appended;
use crate::store::checkpoints::StoredCheckpoint;
use crate::store::read::StoredEntry;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// An event as `POST /v1/events` acknowledges it.
#[derive(Debug, Clone, Serialize)]
pub struct AppendedView {
    pub id: Uuid,
    pub seq: u64,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
    pub received_at: String,
    pub receipt: Receipt,
}

impl AppendedView {
    pub fn new(appended: &Appended, receipt: Receipt) -> Self {
        AppendedView {
            id: appended.id,
            seq: appended.seq,
            leaf_hash: appended.leaf_hash,
            chain_hash: appended.chain_hash,
            received_at: format_timestamp(&appended.received_at),
            receipt,
        }
    }
}

/// A stored entry: the event as stored (unless erased) with everything needed to recompute its
/// content digest, leaf hash and chain link.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub seq: u64,
    pub received_at: String,
    /// The event as stored; `null` once erased.
    pub event: Option<Value>,
    pub erased: bool,
    /// Base64 of the 32-byte salt of the content digest; `null` once erased.
    pub salt: Option<String>,
    pub content_digest: Hash,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
}

impl EntryView {
    pub fn new(stored: StoredEntry) -> Self {
        let event = stored.content.as_deref().and_then(|c| serde_json::from_str(c).ok());
        EntryView {
            id: stored.entry.id,
            tenant_id: stored.entry.tenant_id,
            seq: stored.entry.seq,
            received_at: format_timestamp(&stored.entry.received_at),
            erased: event.is_none(),
            event,
            salt: stored.salt.map(|s| base64::engine::general_purpose::STANDARD.encode(s)),
            content_digest: stored.entry.content_digest,
            leaf_hash: stored.leaf_hash,
            chain_hash: stored.chain_hash,
        }
    }
}

/// A signed checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub tree_size: u64,
    pub root: Hash,
    /// The signed note, byte for byte as signed (C2SP checkpoint + signature lines).
    pub note: String,
    pub key_name: String,
    /// Hex of the 4-byte signed-note key ID.
    pub key_id: String,
    pub signed_at: String,
}

impl From<StoredCheckpoint> for CheckpointView {
    fn from(c: StoredCheckpoint) -> Self {
        CheckpointView {
            tree_size: c.tree_size,
            root: c.root,
            note: c.note,
            key_name: c.key_name,
            key_id: hex::encode(c.key_id),
            signed_at: format_timestamp(&c.signed_at),
        }
    }
}
