//! `entries.json`: ten consecutive entries of one tenant, their canonical entry bytes
//! (`Entry::canonical_bytes`), leaf hashes and the hash chain from the 32 zero bytes of
//! `hash::GENESIS` (`entry::link_entries`).

use crate::{json_file, time, VectorFile};
use anyhow::{Context, Result};
use chrono::Duration;
use serde::Serialize;
use serde_json::json;
use shared::chain::entry::{link_entries, Entry, SealedEvent, SALT_LEN};
use shared::chain::event::parse_event_value;
use shared::chain::hash::GENESIS;
use uuid::Uuid;

/// The tenant of every entry, receipt and checkpoint in the vectors.
pub const TENANT_ID: &str = "01937a4c-0000-7000-8000-000000000001";
/// How many entries the file holds.
pub const ENTRY_COUNT: u64 = 10;
/// The receive time of seq 0; each later entry arrives 1.250001 seconds after the one before.
const FIRST_RECEIVED_AT: &str = "2026-11-24T10:00:00Z";

#[derive(Serialize)]
struct File {
    description: &'static str,
    entries: Vec<EntryCase>,
    chain: Vec<ChainCase>,
}

#[derive(Serialize)]
struct EntryCase {
    tenant_id: String,
    seq: u64,
    id: String,
    received_at: String,
    content_digest: String,
    canonical_entry: String,
    leaf_hash: String,
}

#[derive(Serialize)]
struct ChainCase {
    seq: u64,
    leaf_hash: String,
    chain_hash: String,
}

pub fn tenant_id() -> Result<Uuid> {
    Uuid::parse_str(TENANT_ID).context("the tenant id")
}

/// The entries of the file, seq 0 to 9. Each commits to the content of a small event sealed with
/// a fixed salt, exactly as ingest seals one.
pub fn fixture_entries() -> Result<Vec<Entry>> {
    let tenant_id = tenant_id()?;
    let first = time(FIRST_RECEIVED_AT)?;
    (0..ENTRY_COUNT)
        .map(|seq| {
            let offset = i64::try_from(seq).context("seq fits i64")?;
            let received_at = first + Duration::microseconds(1_250_001 * offset);
            let input = json!({
                "action": "document.read",
                "actor": {"id": format!("u-{seq}"), "type": "user"},
                "resource": {"type": "document", "id": format!("d-{seq}")}
            });
            let event = parse_event_value(&input)
                .and_then(|e| e.validate(received_at))
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("the event of seq {seq}"))?;
            let salt = [u8::try_from(seq).context("seq fits a byte")?.wrapping_add(0xa0); SALT_LEN];
            let sealed = SealedEvent::seal(event, salt).map_err(anyhow::Error::msg)?;
            let id = Uuid::parse_str(&format!("01937a4c-5e00-7000-8000-{:012x}", 0x100 + seq)).context("entry id")?;
            Ok(Entry { tenant_id, seq, id, received_at, content_digest: sealed.digest })
        })
        .collect()
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let entries = fixture_entries()?;
    let linked = link_entries(GENESIS, &entries);
    let file = File {
        description: "Consecutive entries of one tenant from seq 0. `canonical_entry` is the RFC 8785 text of \
                      {\"content_digest\",\"id\",\"received_at\",\"seq\",\"tenant_id\",\"v\":1} (hashes lowercase \
                      hex, times RFC 3339 UTC with six fractional digits); `leaf_hash` = hex(SHA-256(0x00 || \
                      canonical_entry)). `chain`: chain_hash[n] = SHA-256(chain_hash[n-1] || leaf_hash[n]) over \
                      the raw 32-byte hashes, with chain_hash[-1] = 32 zero bytes.",
        entries: entries
            .iter()
            .map(|e| {
                Ok(EntryCase {
                    tenant_id: e.tenant_id.to_string(),
                    seq: e.seq,
                    id: e.id.to_string(),
                    received_at: shared::chain::event::format_timestamp(&e.received_at),
                    content_digest: e.content_digest.to_hex(),
                    canonical_entry: String::from_utf8(e.canonical_bytes()).context("canonical entry is UTF-8")?,
                    leaf_hash: e.leaf_hash().to_hex(),
                })
            })
            .collect::<Result<_>>()?,
        chain: entries
            .iter()
            .zip(&linked)
            .map(|(e, l)| ChainCase { seq: e.seq, leaf_hash: l.leaf_hash.to_hex(), chain_hash: l.chain_hash.to_hex() })
            .collect(),
    };
    Ok(vec![json_file("entries.json", &file)?])
}
