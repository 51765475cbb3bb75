//! The OpenSearch document of a stored entry: the filter fields as keywords and every string
//! value of the event as `text` (what PostgreSQL's full text covers: action, actor, resource,
//! source, metadata values), never member names. Built from the canonical content as stored, so
//! the index holds nothing the log does not.
//!
//! An erased entry's document is a tombstone: its position and `erased: true`, nothing of the
//! event. Documents are written with external versions that only grow across an entry's states
//! ([`CONTENT_VERSION`], then [`ERASED_VERSION`]), so OpenSearch refuses a content write that
//! lands after the tombstone (a replay, or a write that read the content just before the
//! erasure). A tombstone rather than a delete, because a deleted document's version is kept only
//! for `index.gc_deletes` (60 s), after which a late content write would be accepted again.

use crate::chain::event::format_timestamp;
use crate::chain::hash::sha256;
use crate::store::read::StoredEntry;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The external version of a document carrying an entry's content.
pub const CONTENT_VERSION: u64 = 1;
/// The external version of an erased entry's tombstone: above [`CONTENT_VERSION`], so no
/// content write can replace it.
pub const ERASED_VERSION: u64 = 2;

/// The tombstone of an erased entry: its position only, marked `erased`.
pub fn tombstone(tenant: Uuid, id: Uuid, seq: u64, received_at: &DateTime<Utc>) -> Value {
    json!({
        "tenant_id": tenant,
        "seq": seq,
        "event_id": id,
        "received_at": format_timestamp(received_at),
        "erased": true,
    })
}

/// The document for `stored`, or `None` when its content is erased (the indexer writes its
/// [`tombstone`]) or is not an event object.
pub fn index_document(stored: &StoredEntry) -> Option<Value> {
    let content: Value = serde_json::from_str(stored.content.as_deref()?).ok()?;
    let event = content.as_object()?;
    let str_at = |path: &[&str]| -> Option<&str> {
        let mut v = event.get(path[0])?;
        for p in &path[1..] {
            v = v.get(p)?;
        }
        v.as_str()
    };
    let mut text = Vec::new();
    for (key, value) in event {
        // The signature is base64 noise to a reader; the time is a filter, not a word.
        if key != "signature" && key != "occurred_at" {
            strings(value, &mut text);
        }
    }
    let mut doc = Map::new();
    doc.insert("tenant_id".into(), json!(stored.entry.tenant_id));
    doc.insert("seq".into(), json!(stored.entry.seq));
    doc.insert("event_id".into(), json!(stored.entry.id));
    doc.insert("received_at".into(), json!(format_timestamp(&stored.entry.received_at)));
    let fields: [(&str, &[&str]); 9] = [
        ("occurred_at", &["occurred_at"]),
        ("action", &["action"]),
        ("actor_id", &["actor", "id"]),
        ("actor_type", &["actor", "type"]),
        ("resource_type", &["resource", "type"]),
        ("resource_id", &["resource", "id"]),
        ("outcome", &["outcome"]),
        ("severity", &["severity"]),
        ("source", &["source"]),
    ];
    for (name, path) in fields {
        if let Some(v) = str_at(path) {
            doc.insert(name.into(), json!(v));
        }
    }
    // Erasure of a subject names it by this hash only (see service::erasure), so the index can
    // find the subject's documents without the erasure record keeping the identifier.
    if let Some(actor) = str_at(&["actor", "id"]) {
        doc.insert("actor_id_sha256".into(), json!(sha256(&[actor.as_bytes()]).to_hex()));
    }
    doc.insert("text".into(), json!(text));
    Some(Value::Object(doc))
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(members) => members.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::entry::Entry;
    use crate::chain::hash::Hash;

    fn stored(content: Option<&str>) -> StoredEntry {
        StoredEntry {
            entry: Entry {
                tenant_id: uuid::Uuid::nil(),
                seq: 7,
                id: uuid::Uuid::nil(),
                received_at: chrono::DateTime::UNIX_EPOCH,
                content_digest: Hash([1; 32]),
            },
            leaf_hash: Hash([2; 32]),
            chain_hash: Hash([3; 32]),
            content: content.map(str::to_owned),
            salt: None,
        }
    }

    #[test]
    fn text_holds_every_string_value_but_no_member_name_signature_or_time() {
        let doc = index_document(&stored(Some(
            r#"{"action":"doc.read","actor":{"id":"ada","name":"Ada L"},"metadata":{"tags":["x1",{"k":"deep"}],"n":3},"occurred_at":"2026-01-01T00:00:00.000000Z","outcome":"success","signature":{"alg":"ed25519","key_id":"k","sig":"AAAA"}}"#,
        )))
        .unwrap();
        assert_eq!(doc["text"], json!(["doc.read", "ada", "Ada L", "x1", "deep", "success"]));
        assert_eq!(doc["actor_id"], "ada");
        assert_eq!(doc["seq"], 7);
        assert_eq!(doc["occurred_at"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(doc["actor_id_sha256"], sha256(&[b"ada"]).to_hex());
        assert!(doc.get("resource_id").is_none());
    }

    #[test]
    fn an_erased_entry_has_no_document_and_its_tombstone_holds_nothing_of_the_event() {
        let erased = stored(None);
        assert_eq!(index_document(&erased), None);
        let t = tombstone(erased.entry.tenant_id, erased.entry.id, 7, &erased.entry.received_at);
        let mut names: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["erased", "event_id", "received_at", "seq", "tenant_id"]);
        assert_eq!(t["erased"], true);
        const { assert!(ERASED_VERSION > CONTENT_VERSION) };
    }
}
