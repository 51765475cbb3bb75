//! The events the benchmark appends: a fixed pool of distinct, realistic events (actor, resource,
//! request context and a few metadata keys; 300 to 400 bytes in canonical form), built once before
//! anything is timed so that building JSON values is never part of a measurement. Writers cycle
//! through the pool; every append still gets its own random salt, id and position in the chain.

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use shared::chain::entry::{SealedEvent, SALT_LEN};
use shared::chain::event::parse_event_value;
use shared::store::append::MAX_BATCH;

const ACTIONS: [&str; 6] =
    ["document.update", "document.read", "user.login", "permission.grant", "invoice.export", "api_key.rotate"];
const RESOURCES: [&str; 4] = ["document", "folder", "invoice", "api_key"];
const OUTCOMES: [&str; 4] = ["success", "success", "success", "denied"];
const SEVERITIES: [&str; 3] = ["low", "medium", "high"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];

/// `MAX_BATCH` distinct events, stored twice in a row so that every batch, wherever it starts in
/// the cycle, is a contiguous slice of distinct events.
#[derive(Debug)]
pub struct Pool {
    events: Vec<Value>,
}

impl Pool {
    pub fn new() -> Self {
        let occurred_at = Utc::now() - chrono::Duration::seconds(5);
        Pool { events: (0..2 * MAX_BATCH).map(|i| event(i % MAX_BATCH, occurred_at)).collect() }
    }

    /// The event for a writer's `n`th single-event append.
    pub fn one(&self, n: usize) -> &Value {
        &self.events[n % MAX_BATCH]
    }

    /// The writer's `n`th batch of `size` events (`size` at most `MAX_BATCH`).
    pub fn batch(&self, n: usize, size: usize) -> &[Value] {
        let start = (n * size) % MAX_BATCH;
        &self.events[start..start + size]
    }

    /// Validates and seals each distinct event as ingest would, with a random salt each.
    pub fn sealed(&self) -> Result<Vec<SealedEvent>> {
        let received_at = Utc::now();
        self.events[..MAX_BATCH]
            .iter()
            .map(|v| {
                let event =
                    parse_event_value(v).and_then(|e| e.validate(received_at)).context("pool event is invalid")?;
                SealedEvent::seal(event, rand::random::<[u8; SALT_LEN]>()).context("pool event does not seal")
            })
            .collect()
    }
}

/// Event `i` of the pool: fields vary with `i` the way they would across users and documents.
fn event(i: usize, occurred_at: DateTime<Utc>) -> Value {
    let user = (i * 7919) % 5000;
    let resource = RESOURCES[i % RESOURCES.len()];
    let changed_fields = &["title", "body", "tags"][..(i % 3) + 1];
    json!({
        "action": ACTIONS[i % ACTIONS.len()],
        "actor": {
            "id": format!("user-{user:06}"),
            "type": "user",
            "ip": format!("10.{}.{}.{}", i % 250, (i / 250) % 250, user % 250 + 1),
        },
        "resource": {
            "type": resource,
            "id": format!("{resource}-{:012x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16),
        },
        "outcome": OUTCOMES[i % OUTCOMES.len()],
        "occurred_at": (occurred_at + chrono::Duration::milliseconds(i as i64)).to_rfc3339_opts(SecondsFormat::Millis, true),
        "severity": SEVERITIES[i % SEVERITIES.len()],
        "source": "web-app",
        "request_id": format!("req-{:016x}", (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)),
        "metadata": {
            "region": REGIONS[i % REGIONS.len()],
            "changed_fields": changed_fields,
            "bytes": 1024 + (i * 37) % 100_000,
        },
    })
}

/// Size of the canonical content (the stored and digested bytes) over the pool.
#[derive(Debug, Clone, Copy)]
pub struct ContentSize {
    pub min: usize,
    pub mean: f64,
    pub max: usize,
}

impl ContentSize {
    pub fn of(sealed: &[SealedEvent]) -> Self {
        let lens = sealed.iter().map(|s| s.content.len());
        ContentSize {
            min: lens.clone().min().unwrap_or(0),
            mean: lens.clone().sum::<usize>() as f64 / sealed.len().max(1) as f64,
            max: lens.max().unwrap_or(0),
        }
    }
}
