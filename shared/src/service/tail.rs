//! The live tail: a tenant's committed entries pushed to WebSocket connections, in ascending seq
//! with no gaps within each connection's filter ("Life of a tailed event" in
//! docs/ARCHITECTURE.md).
//!
//! A connection's item (`aws::tail_connections`) holds the filter it may see and a cursor, the
//! last seq it has been sent up to. A pass ([`TailService::pass`]) reads the tenant's entries
//! with seq > cursor that match the filter from PostgreSQL (through `service::query`, ascending),
//! posts them in ascending seq in frames of at most [`MAX_FRAME_BYTES`], then advances the cursor
//! with a conditional write. Queue messages (the outbox's, position only) only wake passes for
//! their tenant's connections ([`TailService::wake`]); what a pass sends comes from the database
//! and the cursor, never from the message, so messages may arrive late, twice or out of order.
//!
//! Why that is gap-free: appends to a tenant commit in seq order (see `store::append`: each holds
//! the tenant's head row lock from reading the head until COMMIT, and the next append can only
//! read the head, hence pick its seqs, after that lock is released, which is after the previous
//! append is committed and visible). So at any moment the committed seqs are a prefix of the
//! chain, and a read of seq > cursor returns everything after the cursor up to some point, never
//! a later entry without an earlier one. A pass posts that run in order and only then moves the
//! cursor, so everything up to the cursor was posted before any later pass starts; two passes
//! that overlap post the same run twice (each in order, from the same or a later cursor), which
//! the client's drop of seqs it holds turns into one ordered stream.
//!
//! What a connection may see is decided in one place, [`visible_filter`].

use crate::auth::{Caller, Scope};
use crate::aws::connections::{ConnectionPoster, PostError};
use crate::aws::tail_connections::{
    ConnectionStore, ConnectionStoreError, StoredConnection, StoredSubscription, SubscribeOutcome,
};
use crate::chain::event::{format_timestamp, ValidationError};
use crate::service::query::{list_events, ActionMatch, Cursor, EventFilter, EventQuery, Order, QueryError};
use crate::store::pool::StorePool;
use crate::store::read::StoredEntry;
use crate::store::StoreError;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// The largest frame a pass posts: API Gateway's WebSocket message payload limit (128 KB).
pub const MAX_FRAME_BYTES: usize = 128 * 1024;
/// Entries read per query of a pass.
const PAGE: u32 = 500;
/// Passes of one tenant's connections run at most this many at a time.
const CONCURRENT_PASSES: usize = 16;
/// The filter names a subscription takes: `GET /v1/events`'s, without full text.
pub const TAIL_FILTER_PARAMS: &[&str] =
    &["action", "actor_id", "resource_type", "resource_id", "outcome", "severity", "source", "from", "to"];

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Connections(#[from] ConnectionStoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Post(#[from] PostError),
    #[error("a stored subscription is malformed: {0}")]
    Corrupt(String),
}

/// What the caller may see of what it asked for: `None` if it may not tail at all (no
/// `events:read`, or no tenant, or a request that contradicts a viewer token's pin), else the
/// requested filter ANDed with the caller's pin. The tenant is always the caller's, never the
/// request's. This is the one place a caller's identity narrows a stream.
pub fn visible_filter(caller: &Caller, requested: &EventFilter) -> Option<EventFilter> {
    caller.tenant_id?;
    if !caller.has(Scope::EventsRead) {
        return None;
    }
    match &caller.pin {
        None => Some(requested.clone()),
        // A pin that does not parse shows nothing; a request outside the pin is refused rather
        // than answered with a stream that can never carry anything.
        Some(pin) => EventFilter::from_pin(pin).ok()?.and(requested),
    }
}

/// A filter from a subscription's `filter` object (string values, `GET /v1/events` names but
/// `q`); errors name `filter.<name>`.
pub fn parse_filter(filter: &BTreeMap<String, String>) -> Result<EventFilter, ValidationError> {
    if let Some(name) = filter.keys().find(|n| !TAIL_FILTER_PARAMS.contains(&n.as_str())) {
        return Err(ValidationError::new(
            format!("filter.{name}"),
            format!("unknown filter; known: {}", TAIL_FILTER_PARAMS.join(", ")),
        ));
    }
    EventFilter::from_params(filter.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|mut e| {
        e.field = format!("filter.{}", e.field);
        e
    })
}

/// The filter as `GET /v1/events` parameters (what [`parse_filter`] reads back).
pub fn filter_params(f: &EventFilter) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        params.insert(name.to_owned(), value);
    };
    match &f.action {
        Some(ActionMatch::Exact(a)) => put("action", a.clone()),
        Some(ActionMatch::Prefix(p)) => put("action", format!("{p}*")),
        None => {}
    }
    for (name, value) in [
        ("actor_id", &f.actor_id),
        ("resource_type", &f.resource_type),
        ("resource_id", &f.resource_id),
        ("source", &f.source),
    ] {
        if let Some(v) = value {
            put(name, v.clone());
        }
    }
    if let Some(o) = f.outcome {
        put("outcome", o.as_str().to_owned());
    }
    if let Some(s) = f.severity {
        put("severity", s.as_str().to_owned());
    }
    if let Some(t) = f.from {
        put("from", format_timestamp(&t));
    }
    if let Some(t) = f.to {
        put("to", format_timestamp(&t));
    }
    params
}

/// How an entry becomes the JSON of a frame: exactly as `GET /v1/events` returns each item
/// (the HTTP layer's view, handed in so this module does not depend on it).
pub type EncodeEntry = fn(StoredEntry) -> Value;

/// The frames carrying `entries` (ascending seq): `{"type":"events","entries":[...]}` of at most
/// [`MAX_FRAME_BYTES`] each, and `{"type":"ref","seq","id"}` for an entry too big for a frame
/// of its own, in seq order.
pub fn frames(entries: Vec<StoredEntry>, encode: EncodeEntry) -> Vec<String> {
    const HEAD: &str = r#"{"type":"events","entries":["#;
    const TAIL: &str = "]}";
    let mut frames = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, frames: &mut Vec<String>| {
        if !current.is_empty() {
            current.push_str(TAIL);
            frames.push(std::mem::take(current));
        }
    };
    for stored in entries {
        let (seq, id) = (stored.entry.seq, stored.entry.id);
        let item = encode(stored).to_string();
        if HEAD.len() + item.len() + TAIL.len() > MAX_FRAME_BYTES {
            flush(&mut current, &mut frames);
            frames.push(json!({ "type": "ref", "seq": seq, "id": id }).to_string());
            continue;
        }
        if !current.is_empty() && current.len() + 1 + item.len() + TAIL.len() > MAX_FRAME_BYTES {
            flush(&mut current, &mut frames);
        }
        if current.is_empty() {
            current.push_str(HEAD);
        } else {
            current.push(',');
        }
        current.push_str(&item);
    }
    flush(&mut current, &mut frames);
    frames
}

/// An error frame: `{"type":"error","error":{"code","message"}}`.
pub fn error_frame(code: &str, message: &str) -> String {
    json!({ "type": "error", "error": { "code": code, "message": message } }).to_string()
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// Everything committed when it read was posted; the cursor is at `cursor`.
    CaughtUp { cursor: i64, posted: usize },
    /// Another pass moved the cursor meanwhile; that one (or its successor) carries on.
    Overtaken,
    /// The connection is gone (410 from the Management API); its item was deleted.
    Gone,
    /// The connection has not subscribed yet.
    NotSubscribed,
}

/// What a subscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeResult {
    Subscribed {
        head: Option<u64>,
        pass: PassOutcome,
    },
    AlreadySubscribed,
    /// No connection item (it expired, or `$connect` never stored it).
    UnknownConnection,
    /// The caller may not tail.
    Forbidden,
}

/// The live tail's capabilities: the database, the connections table, the Management API.
#[derive(Debug, Clone)]
pub struct TailService {
    pub pool: StorePool,
    pub connections: ConnectionStore,
    pub poster: ConnectionPoster,
    pub encode: EncodeEntry,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TailService {
    /// `$connect`: records the connection with what the authorizer vouched for. `false` if the
    /// caller may not tail (the connection is then refused).
    pub async fn connect(&self, connection_id: &str, caller: &Caller) -> Result<bool, TailError> {
        let Some(tenant) = caller.tenant_id.filter(|_| visible_filter(caller, &EventFilter::default()).is_some())
        else {
            return Ok(false);
        };
        let context: HashMap<String, String> =
            caller.to_context().into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect();
        self.connections.put_connection(connection_id, tenant, &context, now()).await?;
        Ok(true)
    }

    /// `$disconnect`.
    pub async fn disconnect(&self, connection_id: &str) -> Result<(), TailError> {
        Ok(self.connections.delete(connection_id).await?)
    }

    /// `subscribe`: answers `{"type":"subscribed","head"}` (the tenant's latest seq), stores the
    /// subscription (cursor = `after_seq`, or the head for "from now on"), then runs a pass, so
    /// entries committed between the head read and the store are sent by that pass and none
    /// is missed. The `subscribed` frame goes out before the subscription exists, so no pass of
    /// a wake-up can post entries ahead of it.
    pub async fn subscribe(
        &self,
        connection_id: &str,
        requested: &EventFilter,
        after_seq: Option<u64>,
    ) -> Result<SubscribeResult, TailError> {
        let Some(connection) = self.connections.get(connection_id, now()).await? else {
            return Ok(SubscribeResult::UnknownConnection);
        };
        if connection.subscription.is_some() {
            return Ok(SubscribeResult::AlreadySubscribed);
        }
        let context: HashMap<String, Value> =
            connection.context.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let caller = Caller::from_context(&context).filter(|c| c.tenant_id == Some(connection.tenant));
        let Some(filter) = caller.as_ref().and_then(|c| visible_filter(c, requested)) else {
            return Ok(SubscribeResult::Forbidden);
        };
        let size = {
            let mut store = self.pool.get().await?;
            store.tree_head(connection.tenant).await?.size
        };
        let head = size.checked_sub(1);
        let cursor = match after_seq {
            Some(seq) => i64::try_from(seq).map_err(|_| TailError::Corrupt("after_seq out of range".into()))?,
            None => head.map_or(-1, |h| h as i64),
        };
        self.poster.post(connection_id, &json!({ "type": "subscribed", "head": head }).to_string()).await?;
        let filter_json = Value::Object(
            filter_params(&filter).into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>(),
        )
        .to_string();
        let subscription = StoredSubscription { filter_json, cursor };
        match self.connections.subscribe(connection_id, &subscription).await? {
            SubscribeOutcome::Stored => {}
            SubscribeOutcome::AlreadySubscribed => return Ok(SubscribeResult::AlreadySubscribed),
            SubscribeOutcome::Gone => return Ok(SubscribeResult::UnknownConnection),
        }
        let connection = StoredConnection { subscription: Some(subscription), ..connection };
        let pass = self.pass(&connection).await?;
        Ok(SubscribeResult::Subscribed { head, pass })
    }

    /// One pass for one connection (see the module's documentation).
    pub async fn pass(&self, connection: &StoredConnection) -> Result<PassOutcome, TailError> {
        let Some(subscription) = &connection.subscription else { return Ok(PassOutcome::NotSubscribed) };
        let params: BTreeMap<String, String> =
            serde_json::from_str(&subscription.filter_json).map_err(|e| TailError::Corrupt(format!("filter: {e}")))?;
        let filter = parse_filter(&params).map_err(|e| TailError::Corrupt(e.to_string()))?;
        let id = &connection.connection_id;
        let mut cursor = subscription.cursor;
        let mut posted = 0;
        loop {
            let query = EventQuery {
                filter: filter.clone(),
                limit: PAGE,
                cursor: (cursor >= 0).then_some(Cursor { order: Order::Asc, last_seq: cursor as u64 }),
                order: Order::Asc,
            };
            let page = {
                let mut store = self.pool.get().await?;
                list_events(&mut store, connection.tenant, &query).await?
            };
            let Some(last) = page.entries.last().map(|e| e.entry.seq as i64) else { break };
            let full = page.entries.len() == PAGE as usize;
            posted += page.entries.len();
            for frame in frames(page.entries, self.encode) {
                match self.poster.post(id, &frame).await {
                    Ok(()) => {}
                    Err(PostError::Gone) => {
                        self.connections.delete(id).await?;
                        return Ok(PassOutcome::Gone);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !self.connections.advance(id, cursor, last).await? {
                return Ok(PassOutcome::Overtaken);
            }
            cursor = last;
            if !full {
                break;
            }
        }
        Ok(PassOutcome::CaughtUp { cursor, posted })
    }

    /// Runs a pass for every subscribed connection of each tenant (found through the tenant
    /// index, each read again consistently), at most [`CONCURRENT_PASSES`] at a time, and
    /// deletes expired connections on the way. Returns the
    /// tenants for which a pass failed (their messages are retried).
    pub async fn wake(&self, tenants: &BTreeSet<Uuid>) -> BTreeSet<Uuid> {
        let mut failed = BTreeSet::new();
        for &tenant in tenants {
            if let Err(error) = self.wake_tenant(tenant).await {
                tracing::warn!(%tenant, %error, "a tail pass failed; the tenant's messages are retried");
                failed.insert(tenant);
            }
        }
        failed
    }

    async fn wake_tenant(&self, tenant: Uuid) -> Result<(), TailError> {
        let now = now();
        let connections = self.connections.by_tenant(tenant).await?;
        let results: Vec<Result<PassOutcome, TailError>> = futures::stream::iter(connections)
            .map(|listed| async move {
                if listed.is_expired(now) {
                    self.connections.delete(&listed.connection_id).await?;
                    return Ok(PassOutcome::Gone);
                }
                // The index is eventually consistent: it may show an older cursor, or no
                // subscription yet for one stored a moment ago. The item itself, read
                // consistently, is what the pass starts from.
                let Some(connection) = self.connections.get(&listed.connection_id, now).await? else {
                    return Ok(PassOutcome::Gone);
                };
                // The pass reads with the item's own tenant, the authorizer's, written once at
                // $connect; the index only found it.
                if connection.tenant != tenant || connection.subscription.is_none() {
                    return Ok(PassOutcome::NotSubscribed);
                }
                self.pass(&connection).await
            })
            .buffer_unordered(CONCURRENT_PASSES)
            .collect()
            .await;
        results.into_iter().find_map(Result::err).map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::entry::Entry;
    use crate::chain::hash::Hash;

    fn caller(scopes: Vec<Scope>) -> Caller {
        Caller::api_key("k".into(), Some(Uuid::from_u128(7)), scopes)
    }

    #[test]
    fn visible_filter_requires_read_scope_and_a_tenant() {
        let wanted = EventFilter { actor_id: Some("ada".into()), ..Default::default() };
        assert_eq!(visible_filter(&caller(vec![Scope::EventsRead]), &wanted), Some(wanted.clone()));
        assert_eq!(visible_filter(&caller(vec![Scope::EventsWrite]), &wanted), None);
        let platform = Caller::api_key("p".into(), None, vec![Scope::Platform, Scope::EventsRead]);
        assert_eq!(visible_filter(&platform, &wanted), None);
    }

    #[test]
    fn visible_filter_ands_a_viewer_tokens_pin() {
        let mut viewer = caller(vec![Scope::EventsRead]);
        viewer.pin = Some([("actor_id".to_owned(), "bob".to_owned())].into_iter().collect());
        let bob = EventFilter { actor_id: Some("bob".into()), ..Default::default() };
        // Nothing asked: the pin alone; something else asked: the AND of both.
        assert_eq!(visible_filter(&viewer, &EventFilter::default()), Some(bob.clone()));
        let denied = EventFilter { outcome: Some(crate::chain::event::Outcome::Denied), ..Default::default() };
        assert_eq!(
            visible_filter(&viewer, &denied),
            Some(EventFilter {
                actor_id: Some("bob".into()),
                outcome: Some(crate::chain::event::Outcome::Denied),
                ..Default::default()
            })
        );
        // Another actor than the pinned one: refused, never widened.
        let ada = EventFilter { actor_id: Some("ada".into()), ..Default::default() };
        assert_eq!(visible_filter(&viewer, &ada), None);
    }

    #[test]
    fn filters_round_trip_through_their_parameters_and_refuse_full_text() {
        let params: BTreeMap<String, String> = [
            ("action", "user.*"),
            ("actor_id", "ada"),
            ("outcome", "denied"),
            ("severity", "high"),
            ("from", "2026-01-01T00:00:00.000000Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let filter = parse_filter(&params).unwrap();
        assert_eq!(filter.action, Some(ActionMatch::Prefix("user.".into())));
        assert_eq!(filter_params(&filter), params);
        let q = BTreeMap::from([("q".to_owned(), "x".to_owned())]);
        assert_eq!(parse_filter(&q).unwrap_err().field, "filter.q");
        let bad = BTreeMap::from([("outcome".to_owned(), "meh".to_owned())]);
        assert_eq!(parse_filter(&bad).unwrap_err().field, "filter.outcome");
    }

    fn entry(seq: u64, size: usize) -> StoredEntry {
        StoredEntry {
            entry: Entry {
                tenant_id: Uuid::from_u128(7),
                seq,
                id: Uuid::from_u128(u128::from(seq)),
                received_at: chrono::Utc::now(),
                content_digest: Hash([0; 32]),
            },
            leaf_hash: Hash([0; 32]),
            chain_hash: Hash([0; 32]),
            content: Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(size))),
            salt: None,
        }
    }

    fn encode(stored: StoredEntry) -> Value {
        json!({ "seq": stored.entry.seq, "event": stored.content })
    }

    #[test]
    fn frames_stay_within_128_kb_in_seq_order_and_an_oversized_entry_becomes_a_ref() {
        let entries: Vec<StoredEntry> =
            (0..40).map(|seq| entry(seq, if seq == 17 { MAX_FRAME_BYTES } else { 10_000 })).collect();
        let frames = frames(entries, encode);
        let mut seqs = Vec::new();
        for frame in &frames {
            assert!(frame.len() <= MAX_FRAME_BYTES, "{}", frame.len());
            let v: Value = serde_json::from_str(frame).unwrap();
            match v["type"].as_str().unwrap() {
                "events" => seqs.extend(v["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap())),
                "ref" => {
                    assert_eq!(v["seq"], 17);
                    assert_eq!(v["id"], Uuid::from_u128(17).to_string());
                    seqs.push(17);
                }
                other => panic!("{other}"),
            }
        }
        assert_eq!(seqs, (0..40).collect::<Vec<u64>>());
        assert!(frames.len() >= 4, "40 entries of 10 KB need several frames");
    }
}
