//! Indexing committed entries for full-text search: outbox -> index queue -> indexer, which
//! writes OpenSearch where it is configured ([`index_messages`]) and PostgreSQL's own full text
//! otherwise ([`index_messages_in_postgres`]). Either way the words are written after commit, so
//! an append never pays for them, and an event is searchable once the indexer has run.
//!
//! Every append writes an outbox row in its transaction. After commit the ingest function sends
//! it to the index queue and marks it sent ([`notify_appended`]); if the instance stops between
//! commit and send, the scheduled relay ([`run_relay`]) sends it later, so every committed entry
//! reaches the queue at least once. A message names positions only (tenant, first seq, count):
//! the indexer reads the entries from PostgreSQL, the source of truth, so a message redelivered
//! late or out of order indexes what is stored now, and nothing sensitive sits in a queue.
//!
//! The indexer ([`index_messages`]) writes documents with the event id as document id, so
//! redelivery is harmless. It acknowledges a message only when every entry it names was read and
//! written: it checks that the read returned every seq of the message, matches every `_bulk`
//! action to its item in the answer, and reports the messages with a missing entry or a failed
//! item, which SQS redelivers and, after the queue's maxReceiveCount, moves to the dead-letter
//! queue. Erased content leaves the index too: an entry read without content is written as a
//! tombstone, and an erasure record (appended by `service::erasure`) tombstones what it erased:
//! the event, the subject's documents (by the hash of its actor id), or everything received before
//! the retention cut-off. Versioned writes keep an erased entry erased whatever order writes land
//! in (see `search::document` and [`write_entries`]).

use crate::aws::queues::{Queue, QueueError};
use crate::chain::event::{format_timestamp, parse_timestamp};
use crate::metrics::{self, Unit};
use crate::search::document::{index_document, tombstone, CONTENT_VERSION, ERASED_VERSION};
use crate::search::opensearch::{BulkAction, ItemOutcome, OpenSearch, SearchError};
use crate::service::erasure::ERASED_ACTION;
use crate::store::append::AppendResult;
use crate::store::outbox::OutboxRow;
use crate::store::pool::StorePool;
use crate::store::read::StoredEntry;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use uuid::Uuid;

/// Documents per `_bulk` request: a message names up to 1,000 entries and a batch up to 10
/// messages, and a request of about 1,000 documents (1 to 2 MB) stays well inside every
/// domain's request size limit.
const BULK_ACTIONS: usize = 1000;

/// How long ingest waits for the queue before leaving the row to the relay.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The body of an index-queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexMessage {
    pub v: u8,
    pub outbox_id: i64,
    pub tenant_id: Uuid,
    pub first_seq: u64,
    pub count: u32,
}

impl IndexMessage {
    pub fn new(row: &OutboxRow) -> Self {
        IndexMessage { v: 1, outbox_id: row.id, tenant_id: row.tenant, first_seq: row.first_seq, count: row.count }
    }

    pub fn body(&self) -> String {
        json!(self).to_string()
    }

    /// Parses a body; anything but a version 1 message naming at least one entry is refused.
    pub fn parse(body: &str) -> Result<Self, String> {
        let m: IndexMessage = serde_json::from_str(body).map_err(|e| format!("not an index message: {e}"))?;
        if m.v != 1 || m.count == 0 || m.count > 100_000 {
            return Err(format!("unsupported index message (v {}, count {})", m.v, m.count));
        }
        Ok(m)
    }
}

/// Where outbox rows go: the index queue, and the live tail's queue where it is deployed. Both
/// get the same position-only message; a row counts as sent only when every queue accepted it,
/// and a message sent twice (once now, again by the relay) is harmless to both consumers.
#[derive(Debug, Clone)]
pub struct OutboxQueues {
    pub index: Queue,
    pub tail: Option<Queue>,
}

impl OutboxQueues {
    /// The index queue alone (no live tail).
    pub fn index_only(index: Queue) -> Self {
        OutboxQueues { index, tail: None }
    }
}

/// Sends the outbox row of a committed append to the queues, concurrently, and marks it sent
/// when both accepted it. A failure of either is logged and left to the relay, which sends the
/// row to both again: the append is committed and acknowledged either way.
pub async fn notify_appended(queues: &OutboxQueues, pool: &StorePool, tenant: Uuid, result: &AppendResult) {
    let (Some(id), Some(first)) = (result.outbox_id, result.entries.first()) else {
        return;
    };
    let row = OutboxRow { id, tenant, first_seq: first.seq, count: result.entries.len() as u32 };
    let body = IndexMessage::new(&row).body();
    let sends = async {
        let tail = async {
            match &queues.tail {
                Some(tail) => tail.send(&body, 0).await,
                None => Ok(()),
            }
        };
        let (index, tail) = futures::join!(queues.index.send(&body, 0), tail);
        index.and(tail)
    };
    let sent = match tokio::time::timeout(SEND_TIMEOUT, sends).await {
        Ok(Ok(())) => match pool.get().await {
            Ok(mut store) => store.outbox_mark_sent(&[id]).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {SEND_TIMEOUT:?}")),
    };
    if let Err(error) = sent {
        tracing::warn!(outbox_id = id, %error, "outbox row not sent after commit; the relay will send it");
    }
}

/// What one relay run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayRun {
    /// Outbox rows found unsent and sent now.
    pub sent: u32,
    /// Rows SQS did not accept (left for the next run).
    pub failed: u32,
    /// Sent rows deleted.
    pub purged: u64,
}

/// Relay settings.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// Rows younger than this are left to the instance that wrote them.
    pub min_age: Duration,
    /// Rows sent longer ago than this are deleted.
    pub keep_sent: Duration,
    /// At most this many rows per run.
    pub max_rows: u32,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings { min_age: Duration::from_secs(30), keep_sent: Duration::from_secs(24 * 3600), max_rows: 5000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Sends every outbox row committed at least `min_age` ago and never sent, marks them sent,
/// and deletes rows sent long ago. Emits `OutboxRelayed` (a steady non-zero value means the
/// send after commit keeps failing).
///
/// With a tail queue, each chunk goes to both queues concurrently and a row is marked sent only
/// when both accepted it; a tail queue that fails a whole call fails its rows (sent again to
/// both next run), while the index queue failing a call fails the run, as without a tail.
pub async fn run_relay(
    pool: &StorePool,
    queues: &OutboxQueues,
    settings: RelaySettings,
) -> Result<RelayRun, RelayError> {
    let mut store = pool.get().await?;
    let rows = store.outbox_unsent(settings.min_age, settings.max_rows).await?;
    let mut run = RelayRun::default();
    for chunk in rows.chunks(crate::aws::queues::MAX_BATCH * 10) {
        let bodies: Vec<String> = chunk.iter().map(|r| IndexMessage::new(r).body()).collect();
        let tail = async {
            match &queues.tail {
                Some(tail) => tail.send_batch(&bodies).await.map_err(|e| {
                    tracing::warn!(error = %e, "the tail queue refused a relay batch; its rows stay unsent");
                    (0..bodies.len()).collect::<Vec<usize>>()
                }),
                None => Ok(Vec::new()),
            }
        };
        let (index, tail) = futures::join!(queues.index.send_batch(&bodies), tail);
        let mut failed = index?;
        failed.extend(tail.unwrap_or_else(|all| all));
        let sent: Vec<i64> = chunk.iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, r)| r.id).collect();
        store.outbox_mark_sent(&sent).await?;
        run.sent += sent.len() as u32;
        run.failed += failed.len() as u32;
    }
    run.purged = store.outbox_purge(settings.keep_sent).await?;
    metrics::emit(
        &[
            ("OutboxRelayed", f64::from(run.sent), Unit::Count),
            ("OutboxRelayFailures", f64::from(run.failed), Unit::Count),
        ],
        &[("Function", "relay")],
    );
    if run.sent > 0 {
        tracing::warn!(sent = run.sent, "relayed outbox rows that were not sent after commit");
    }
    Ok(run)
}

/// One queue message handed to the indexer: its id (SQS message id) and body.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: String,
    pub body: String,
}

/// What one indexer invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexRun {
    /// Content documents written (in PostgreSQL: rows of words written).
    pub indexed: u64,
    /// Tombstones of erased entries written.
    pub erased: u64,
    /// Content writes OpenSearch refused because it holds the entry's tombstone (the entry was
    /// erased after it was read): nothing to retry.
    pub superseded: u64,
    /// Ids of the messages to retry (an entry of theirs was not read or not written, or they
    /// could not be read).
    pub failed: Vec<String>,
}

/// Indexes the entries the messages name and returns the ids of the messages that failed.
/// A message is acknowledged only when every entry it names (`first_seq..first_seq + count`)
/// was read and its document written, or refused as superseded by a tombstone. It fails alone
/// when it is malformed or one of its entries was not read or written; all of a tenant's
/// messages fail when PostgreSQL or OpenSearch is unavailable.
pub async fn index_messages(pool: &StorePool, search: &OpenSearch, messages: &[QueuedMessage]) -> IndexRun {
    let (mut run, by_tenant) = by_tenant(messages);
    for (tenant, batch) in by_tenant {
        match index_tenant(pool, search, tenant, &batch).await {
            Ok(outcome) => run.add(outcome),
            Err(error) => {
                tracing::warn!(%tenant, %error, "indexing failed; the messages are retried");
                run.failed.extend(batch.iter().map(|(m, _)| m.id.clone()));
            }
        }
    }
    emit_index_metrics(&run);
    run
}

/// The indexer where no OpenSearch is configured: writes the words of the entries the messages
/// name into PostgreSQL's own full text ([`crate::store::text`]), off the append path. A message
/// is acknowledged when every entry it names exists (an entry without content has no words);
/// all of a tenant's messages fail when PostgreSQL is unavailable.
pub async fn index_messages_in_postgres(pool: &StorePool, messages: &[QueuedMessage]) -> IndexRun {
    let (mut run, by_tenant) = by_tenant(messages);
    for (tenant, batch) in by_tenant {
        let ranges: Vec<(u64, u64)> = batch.iter().map(|(_, m)| message_range(m)).collect();
        let written = match pool.get().await {
            Ok(mut store) => store.index_text(tenant, &ranges).await,
            Err(error) => Err(error),
        };
        match written {
            Ok(text) => {
                run.indexed += text.written;
                for ((m, parsed), present) in batch.iter().zip(&text.present) {
                    if *present != u64::from(parsed.count) {
                        tracing::warn!(%tenant, message_id = %m.id, first = parsed.first_seq, count = parsed.count, present,
                            "entries of the message do not exist; it is retried");
                        run.failed.push(m.id.clone());
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%tenant, %error, "indexing failed; the messages are retried");
                run.failed.extend(batch.iter().map(|(m, _)| m.id.clone()));
            }
        }
    }
    emit_index_metrics(&run);
    run
}

type TenantBatches<'a> = BTreeMap<Uuid, Vec<(&'a QueuedMessage, IndexMessage)>>;

/// The well-formed messages by tenant; the malformed ones are failed in the returned run.
fn by_tenant(messages: &[QueuedMessage]) -> (IndexRun, TenantBatches<'_>) {
    let mut run = IndexRun::default();
    let mut by_tenant: TenantBatches<'_> = BTreeMap::new();
    for m in messages {
        match IndexMessage::parse(&m.body) {
            Ok(parsed) => by_tenant.entry(parsed.tenant_id).or_default().push((m, parsed)),
            Err(error) => {
                tracing::error!(message_id = %m.id, %error, "malformed index message; it goes to the DLQ after its retries");
                run.failed.push(m.id.clone());
            }
        }
    }
    (run, by_tenant)
}

fn emit_index_metrics(run: &IndexRun) {
    metrics::emit(
        &[("EventsIndexed", run.indexed as f64, Unit::Count), ("IndexFailures", run.failed.len() as f64, Unit::Count)],
        &[("Function", "indexer")],
    );
}

/// The seqs a message names, `[first, end)`.
fn message_range(m: &IndexMessage) -> (u64, u64) {
    (m.first_seq, m.first_seq + u64::from(m.count))
}

impl IndexRun {
    fn add(&mut self, other: IndexRun) {
        self.indexed += other.indexed;
        self.erased += other.erased;
        self.superseded += other.superseded;
        self.failed.extend(other.failed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

async fn index_tenant(
    pool: &StorePool,
    search: &OpenSearch,
    tenant: Uuid,
    batch: &[(&QueuedMessage, IndexMessage)],
) -> Result<IndexRun, IndexError> {
    let ranges: Vec<(u64, u64)> = batch.iter().map(|(_, m)| message_range(m)).collect();
    let entries = {
        let mut store = pool.get().await?;
        store.entries_in_ranges(tenant, &ranges).await?
    };
    let written = write_entries(pool, search, tenant, &entries).await?;
    let mut run = IndexRun {
        indexed: written.indexed,
        erased: written.erased,
        superseded: written.superseded,
        failed: Vec::new(),
    };
    for (m, parsed) in batch {
        let (first, end) = message_range(parsed);
        // Entries come back in seq order, one per seq: the message's are a contiguous run, and
        // every seq it names must be there. A seq that was not read was not written, whatever
        // the reason (a message naming entries that do not exist, a read that came back short).
        let read = entries.partition_point(|e| e.entry.seq < end) - entries.partition_point(|e| e.entry.seq < first);
        if read as u64 != u64::from(parsed.count) {
            tracing::warn!(%tenant, message_id = %m.id, first, end, read, "entries of the message were not read; it is retried");
            run.failed.push(m.id.clone());
        } else if written.failed.range(first..end).next().is_some() {
            run.failed.push(m.id.clone());
        }
    }
    Ok(run)
}

/// What [`write_entries`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteRun {
    pub indexed: u64,
    pub erased: u64,
    pub superseded: u64,
    /// The seqs whose document (or, for an erasure record, whose erasure) was not written.
    pub failed: BTreeSet<u64>,
}

/// Writes the documents of `entries` (as read from PostgreSQL) and applies the erasure records
/// among them:
/// 1. `_bulk`, 1,000 documents a request: each entry with content as its document at
///    [`CONTENT_VERSION`], each erased one as its tombstone at [`ERASED_VERSION`]. A content write
///    refused as superseded found the tombstone there: the entry was erased after it was read.
/// 2. The entries whose content was written are read again (their erased state only): one that
///    was erased since the read gets its tombstone now. This closes the race with an erasure that
///    commits between the read and the write: either the erasure record's step 3 finds the
///    content document (it refreshes first, so it sees every write acknowledged before it ran),
///    or the write was acknowledged after that, hence after the erasure committed, and this
///    second read sees the erasure.
/// 3. Each erasure record tombstones the documents it erased ([`OpenSearch::erase_matching`]).
pub async fn write_entries(
    pool: &StorePool,
    search: &OpenSearch,
    tenant: Uuid,
    entries: &[StoredEntry],
) -> Result<WriteRun, IndexError> {
    let mut run = WriteRun::default();
    let mut actions = Vec::with_capacity(entries.len());
    let mut seqs = Vec::with_capacity(entries.len());
    let mut erasures = Vec::new();
    for stored in entries {
        let seq = stored.entry.seq;
        if stored.content.is_none() {
            actions.push(tombstone_action(tenant, stored));
            seqs.push(seq);
            continue;
        }
        match index_document(stored) {
            Some(document) => {
                erasures.extend(erasure_clause(stored));
                actions.push(BulkAction { tenant, id: stored.entry.id, version: CONTENT_VERSION, document });
                seqs.push(seq);
            }
            None => {
                tracing::error!(%tenant, seq, "stored content is not an event object; not indexed");
                run.failed.insert(seq);
            }
        }
    }
    let outcomes = bulk_in_chunks(search, &actions).await?;
    let mut content_written = Vec::with_capacity(actions.len());
    for ((seq, action), outcome) in seqs.iter().zip(&actions).zip(outcomes) {
        let is_content = action.version == CONTENT_VERSION;
        match outcome {
            ItemOutcome::Written if is_content => {
                run.indexed += 1;
                content_written.push(*seq);
            }
            ItemOutcome::Written => run.erased += 1,
            ItemOutcome::Superseded if is_content => run.superseded += 1,
            other => {
                // A tombstone superseded means the index holds a version this indexer never
                // writes (a document from before versioned writes): not erased, so not done.
                tracing::warn!(%tenant, seq, outcome = ?other, "a document was not written");
                run.failed.insert(*seq);
            }
        }
    }
    if !content_written.is_empty() {
        let erased_since = {
            let mut store = pool.get().await?;
            store.erased_among(tenant, &content_written).await?
        };
        let late: Vec<BulkAction> = erased_since.iter().map(|stored| tombstone_action(tenant, stored)).collect();
        for (stored, outcome) in erased_since.iter().zip(bulk_in_chunks(search, &late).await?) {
            if outcome == ItemOutcome::Written {
                tracing::info!(%tenant, seq = stored.entry.seq, "erased after it was read; its tombstone is written");
                run.erased += 1;
            } else {
                tracing::warn!(%tenant, seq = stored.entry.seq, ?outcome, "the tombstone of an entry erased meanwhile was not written");
                run.failed.insert(stored.entry.seq);
            }
        }
    }
    // Erasures run after the records are indexed; a failure retries the record's message.
    for (seq, clause) in erasures {
        match search.erase_matching(tenant, clause).await {
            Ok(n) => run.erased += n,
            Err(error) => {
                tracing::warn!(%tenant, seq, %error, "applying an erasure to the index failed");
                run.failed.insert(seq);
            }
        }
    }
    Ok(run)
}

fn tombstone_action(tenant: Uuid, stored: &StoredEntry) -> BulkAction {
    let e = &stored.entry;
    BulkAction { tenant, id: e.id, version: ERASED_VERSION, document: tombstone(tenant, e.id, e.seq, &e.received_at) }
}

/// `actions` in `_bulk` requests of [`BULK_ACTIONS`], one after the other; one outcome per action.
async fn bulk_in_chunks(search: &OpenSearch, actions: &[BulkAction]) -> Result<Vec<ItemOutcome>, SearchError> {
    let mut outcomes = Vec::with_capacity(actions.len());
    for chunk in actions.chunks(BULK_ACTIONS) {
        outcomes.extend(search.bulk(chunk).await?);
    }
    Ok(outcomes)
}

/// For an erasure record, the query clause matching the documents it erased.
fn erasure_clause(stored: &StoredEntry) -> Option<(u64, Value)> {
    let content: Value = serde_json::from_str(stored.content.as_deref()?).ok()?;
    if content["action"] != ERASED_ACTION || content["source"] != "audit-log" {
        return None;
    }
    let id = content["resource"]["id"].as_str()?;
    let clause = match content["resource"]["type"].as_str()? {
        "event" => json!({ "term": { "event_id": id } }),
        "actor" => json!({ "term": { "actor_id_sha256": id.strip_prefix("sha256:")? } }),
        "retention" => {
            let before = parse_timestamp(id).ok()?;
            json!({ "range": { "received_at": { "lt": format_timestamp(&before) } } })
        }
        _ => return None,
    };
    Some((stored.entry.seq, clause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_messages_round_trip_and_garbage_is_refused() {
        let m = IndexMessage { v: 1, outbox_id: 9, tenant_id: Uuid::from_u128(1), first_seq: 5, count: 3 };
        assert_eq!(IndexMessage::parse(&m.body()), Ok(m));
        for bad in [
            "",
            "{}",
            "not json",
            r#"{"v":2,"outbox_id":1,"tenant_id":"00000000-0000-0000-0000-000000000001","first_seq":0,"count":1}"#,
            r#"{"v":1,"outbox_id":1,"tenant_id":"00000000-0000-0000-0000-000000000001","first_seq":0,"count":0}"#,
            r#"{"v":1,"outbox_id":1,"tenant_id":"x","first_seq":0,"count":1}"#,
        ] {
            assert!(IndexMessage::parse(bad).is_err(), "{bad}");
        }
    }
}
