//! The client-side share of an append, with no database: validating, canonicalising and sealing
//! each event (what ingest does before the transaction) and the leaf and chain hashes (what the
//! append computes under the head lock). It leaves out ingest's request hash, which only an
//! idempotency key needs. One writer cannot append faster than this on one core, so it tells how
//! much of a batched append's time the service's own code needs at least.

use crate::workload::Pool;
use anyhow::{Context, Result};
use chrono::Utc;
use rand::rngs::OsRng;
use rand::RngCore;
use shared::chain::entry::{link_entries, Entry, SealedEvent, SALT_LEN};
use shared::chain::event::{parse_event_value, truncate_to_micros};
use shared::chain::hash::GENESIS;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Seals and links `events` events in batches of `size`; returns the time taken.
pub fn seal_and_link(pool: &Pool, events: usize, size: usize) -> Result<Duration> {
    let tenant = Uuid::now_v7();
    let mut chain = GENESIS;
    let started = Instant::now();
    for n in 0..events / size {
        let received_at = truncate_to_micros(Utc::now());
        let sealed = pool
            .batch(n, size)
            .iter()
            .map(|v| {
                let event = parse_event_value(v).and_then(|e| e.validate(received_at))?;
                let mut salt = [0u8; SALT_LEN];
                OsRng.fill_bytes(&mut salt);
                SealedEvent::seal(event, salt)
            })
            .collect::<Result<Vec<_>, _>>()
            .context("sealing a pool event")?;
        let entries: Vec<Entry> = sealed
            .iter()
            .enumerate()
            .map(|(i, s)| Entry {
                tenant_id: tenant,
                seq: (n * size + i) as u64,
                id: Uuid::now_v7(),
                received_at,
                content_digest: s.digest,
            })
            .collect();
        chain = link_entries(chain, &entries).last().map_or(chain, |l| l.chain_hash);
    }
    std::hint::black_box(chain);
    Ok(started.elapsed())
}
