//! The chain entry: the server-assigned fields plus a salted digest of the event content.
//!
//! The leaf commits to `content_digest = SHA-256(salt || content)` rather than to the content, so
//! content can later be erased (retention, legal erasure) while the entry, its leaf hash, the
//! chain and every Merkle proof stay verifiable. The random 32-byte salt stops anyone from
//! confirming a guessed content against a published digest once the content is gone.
//!
//! Canonical entry (RFC 8785 of):
//! `{"content_digest":"<hex>","id":"<uuid>","received_at":"<YYYY-MM-DDTHH:MM:SS.ffffffZ>","seq":<n>,"tenant_id":"<uuid>","v":1}`

use super::canonical::{content_bytes, jcs};
use super::event::{format_timestamp, Event, ValidationError};
use super::hash::{chain_link, leaf_hash, sha256, Hash};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

/// Version of the canonical entry layout; part of the hashed bytes.
pub const ENTRY_VERSION: u32 = 1;
/// Length of the per-event content salt.
pub const SALT_LEN: usize = 32;

/// `SHA-256(salt || content)`.
pub fn content_digest(salt: &[u8], content: &[u8]) -> Hash {
    sha256(&[salt, content])
}

/// A validated event with its canonical content, salt and content digest: ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedEvent {
    pub event: Event,
    /// RFC 8785 bytes of the event (UTF-8 JSON), exactly what is stored and digested.
    pub content: Vec<u8>,
    pub salt: [u8; SALT_LEN],
    pub digest: Hash,
}

impl SealedEvent {
    /// Canonicalises the event (enforcing the size limit) and digests it with `salt`, which the
    /// caller draws from a cryptographic random source.
    pub fn seal(event: Event, salt: [u8; SALT_LEN]) -> Result<Self, ValidationError> {
        let content = content_bytes(&event)?;
        let digest = content_digest(&salt, &content);
        Ok(SealedEvent { event, content, salt, digest })
    }
}

/// A tenant's chain entry: everything the leaf hash covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub tenant_id: Uuid,
    pub seq: u64,
    pub id: Uuid,
    /// UTC, whole microseconds (what PostgreSQL stores and gives back).
    pub received_at: DateTime<Utc>,
    pub content_digest: Hash,
}

impl Entry {
    /// The canonical bytes of the entry.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        jcs(&json!({
            "v": ENTRY_VERSION,
            "tenant_id": self.tenant_id.to_string(),
            "seq": self.seq,
            "id": self.id.to_string(),
            "received_at": format_timestamp(&self.received_at),
            "content_digest": self.content_digest.to_hex(),
        }))
    }

    /// RFC 9162 leaf hash of the canonical entry.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }
}

/// Leaf and chain hash of one appended entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linked {
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
}

/// Links entries onto a chain whose last hash is `previous`, in order.
pub fn link_entries<'a>(previous: Hash, entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Linked> {
    let mut prev = previous;
    entries
        .into_iter()
        .map(|e| {
            let leaf_hash = e.leaf_hash();
            prev = chain_link(&prev, &leaf_hash);
            Linked { leaf_hash, chain_hash: prev }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::event::parse_timestamp;
    use crate::chain::hash::GENESIS;

    fn entry(seq: u64) -> Entry {
        Entry {
            tenant_id: Uuid::parse_str("0190f6e2-0000-7000-8000-000000000001").expect("uuid"),
            seq,
            id: Uuid::parse_str("0190f6e2-0000-7000-8000-0000000000aa").expect("uuid"),
            received_at: parse_timestamp("2026-11-24T10:00:00.5Z").expect("ts"),
            content_digest: content_digest(&[7u8; SALT_LEN], br#"{"action":"a"}"#),
        }
    }

    #[test]
    fn canonical_entry_layout_is_pinned() {
        let e = entry(3);
        assert_eq!(
            String::from_utf8(e.canonical_bytes()).expect("utf8"),
            format!(
                r#"{{"content_digest":"{}","id":"0190f6e2-0000-7000-8000-0000000000aa","received_at":"2026-11-24T10:00:00.500000Z","seq":3,"tenant_id":"0190f6e2-0000-7000-8000-000000000001","v":1}}"#,
                e.content_digest.to_hex()
            )
        );
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let base = entry(0);
        let mut variants = vec![];
        let mut e = base.clone();
        e.seq = 1;
        variants.push(e);
        let mut e = base.clone();
        e.tenant_id = Uuid::nil();
        variants.push(e);
        let mut e = base.clone();
        e.id = Uuid::nil();
        variants.push(e);
        let mut e = base.clone();
        e.received_at += chrono::Duration::microseconds(1);
        variants.push(e);
        let mut e = base.clone();
        e.content_digest = content_digest(&[8u8; SALT_LEN], br#"{"action":"a"}"#);
        variants.push(e);
        for v in variants {
            assert_ne!(v.leaf_hash(), base.leaf_hash(), "{v:?}");
        }
    }

    #[test]
    fn linking_continues_from_the_previous_hash() {
        let entries: Vec<Entry> = (0..4).map(entry).collect();
        let all = link_entries(GENESIS, &entries);
        let first_two = link_entries(GENESIS, &entries[..2]);
        let rest = link_entries(first_two[1].chain_hash, &entries[2..]);
        assert_eq!(all[..2], first_two[..]);
        assert_eq!(all[2..], rest[..]);
    }
}
