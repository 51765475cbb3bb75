//! The append transaction ("life of a leaf", see docs/ARCHITECTURE.md).
//!
//! In one transaction: set the tenant, lock the tenant's chain head (`FOR UPDATE`; the row also
//! holds the Merkle frontier), look up the idempotency key, then insert the skeleton rows, the
//! content rows, the newly completed Merkle nodes, one outbox row and the idempotency record, move
//! the head and commit. Statements are pipelined on the connection: BEGIN travels with the lock
//! and COMMIT with the writes, so an append costs two round trips whatever its size, and the head
//! lock is held for one. Concurrent writers of one tenant queue on the head lock; writers of
//! different tenants never touch the same row. Should the lock ever be bypassed,
//! `PRIMARY KEY (tenant_id, seq)` on `chain_entries` still refuses a second entry for a seq.
//!
//! Appends to a tenant therefore commit in seq order: an append picks its seqs from the head it
//! read under the lock, and the lock is released only once its COMMIT is visible, while a
//! waiting `FOR UPDATE` (READ COMMITTED) re-reads the newest head. So the committed seqs are a
//! prefix of the chain at every moment, which readers rely on: a cursor "after seq N" neither
//! skips nor repeats (`service::query`), and the live tail's "seq > cursor" yields no entry
//! without its predecessors (`service::tail`). `store::admin::commit_change` takes the same lock,
//! and nothing else inserts into `chain_entries`.

use super::{hash_col, seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::entry::{link_entries, Entry, SealedEvent};
use crate::chain::event::truncate_to_micros;
use crate::chain::hash::Hash;
use crate::chain::merkle;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;
use uuid::Uuid;

/// The most events one append may carry.
pub const MAX_BATCH: usize = 1000;

/// An idempotency key and the hash of the request it was first used with.
#[derive(Debug, Clone)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: Hash,
}

/// One appended (or replayed) entry, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
}

/// The result of an append: the entries in request order, and whether they were written now or
/// replayed from an earlier request with the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    pub entries: Vec<Appended>,
    pub replayed: bool,
    /// Tree size after this append (for a replay: after the original append).
    pub tree_size: u64,
    /// The outbox row this append wrote, which the caller sends to the index queue after commit
    /// (None for a replay, which wrote nothing).
    pub outbox_id: Option<i64>,
}

pub(super) const LOCK_HEAD: &str =
    "SELECT size, chain_hash, last_received_at, frontier FROM chain_heads WHERE tenant_id = $1 FOR UPDATE";
pub(super) const FIND_IDEMPOTENCY: &str =
    "SELECT request_hash, first_seq, count FROM idempotency_keys WHERE tenant_id = $1 AND key = $2";
/// Every write of an append in one statement (data-modifying CTEs share one snapshot and commit
/// together), so the head lock is held for one statement and COMMIT rather than five.
pub(super) const APPEND_ROWS: &str = "WITH skeleton AS (
       INSERT INTO chain_entries (tenant_id, seq, event_id, received_at, content_digest, leaf_hash, chain_hash)
       SELECT $1, s, i, $2, d, l, c FROM unnest($3::bigint[], $4::uuid[], $5::bytea[], $6::bytea[], $7::bytea[]) AS t(s, i, d, l, c)
     ), content AS (
       INSERT INTO events (tenant_id, seq, received_at, event_id, occurred_at, action, actor_id,
                           resource_type, resource_id, outcome, severity, source, content, salt)
       SELECT $1, s, $2, i, o, a, ai, rt, ri, oc, sv, so, c, sa
       FROM unnest($3::bigint[], $4::uuid[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[],
                   $13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[])
            AS t(s, i, o, a, ai, rt, ri, oc, sv, so, c, sa)
     ), nodes AS (
       INSERT INTO merkle_nodes (tenant_id, level, idx, hash)
       SELECT $1, l, i, h FROM unnest($18::smallint[], $19::bigint[], $20::bytea[]) AS t(l, i, h)
     ), outbox_row AS (
       INSERT INTO outbox (tenant_id, first_seq, count) VALUES ($1, $21, $22) RETURNING id
     ), idempotency AS (
       INSERT INTO idempotency_keys (tenant_id, key, request_hash, first_seq, count)
       SELECT $1, $23::text, $24::bytea, $21, $22 WHERE $23::text IS NOT NULL
     )
     UPDATE chain_heads SET size = $25, chain_hash = $26, last_received_at = $2, frontier = $27, updated_at = now()
      WHERE tenant_id = $1
     RETURNING (SELECT id FROM outbox_row)";
pub(super) const READ_APPENDED: &str = "SELECT seq, event_id, received_at, leaf_hash, chain_hash FROM chain_entries
     WHERE tenant_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq";

impl Store {
    /// Appends `events` to the tenant's chain, all or nothing. With an idempotency key that was
    /// used before, writes nothing and returns the original entries (or a conflict if the request
    /// differs).
    pub async fn append(
        &mut self,
        tenant: Uuid,
        events: &[SealedEvent],
        idempotency: Option<&Idempotency<'_>>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() || events.len() > MAX_BATCH {
            return Err(StoreError::InvalidRange(format!("a batch holds 1 to {MAX_BATCH} events")));
        }
        self.recover().await?;
        let statements = self.prepared([SET_TENANT, LOCK_HEAD, FIND_IDEMPOTENCY, APPEND_ROWS, READ_APPENDED]).await?;
        self.open_transaction = true;
        let result = append_in_transaction(&self.client, &statements, tenant, events, idempotency).await;
        self.end_transaction(result.is_ok()).await;
        result
    }

    /// Ends a hand-pipelined transaction after its last statement: on success COMMIT went
    /// through (or, after a failed statement, ended the transaction itself); on failure a
    /// ROLLBACK undoes any partial work (after a failed statement the pipelined COMMIT already
    /// ended it, and the ROLLBACK only draws a warning). A broken connection stays marked, so
    /// the next operation on a replacement never runs inside a stale transaction.
    pub(super) async fn end_transaction(&mut self, succeeded: bool) {
        let ended = succeeded || (!self.client.is_closed() && self.client.batch_execute("ROLLBACK").await.is_ok());
        if ended {
            self.open_transaction = false;
        }
    }
}

/// The append itself, on a connection where the caller opened nothing yet. Sends BEGIN and
/// COMMIT itself so they share round trips with the statements around them.
async fn append_in_transaction(
    client: &tokio_postgres::Client,
    statements: &[Statement; 5],
    tenant: Uuid,
    events: &[SealedEvent],
    idempotency: Option<&Idempotency<'_>>,
) -> Result<AppendResult, StoreError> {
    let [set_tenant, lock_head, find_idem, append_rows, read_appended] = statements;
    let tenant_text = tenant_param(tenant);

    // Round trip 1: BEGIN, tenant context, head lock (with the frontier), idempotency lookup.
    // Pipelined statements run in the order sent, so the lookup runs under the lock.
    let idem_key = idempotency.map(|i| i.key).unwrap_or_default();
    let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
    let lock_params: [&(dyn ToSql + Sync); 1] = [&tenant];
    let idem_params: [&(dyn ToSql + Sync); 2] = [&tenant, &idem_key];
    let (_, _, head, previous) = futures::try_join!(
        client.batch_execute("BEGIN"),
        client.execute(set_tenant, &set_params),
        client.query_opt(lock_head, &lock_params),
        async {
            match idempotency {
                Some(_) => client.query_opt(find_idem, &idem_params).await,
                None => Ok(None),
            }
        },
    )?;
    let head = ChainHead::from_row(&head.ok_or(StoreError::UnknownTenant)?)?;

    if let (Some(idem), Some(row)) = (idempotency, previous) {
        let result = replay(client, read_appended, tenant, idem, &row).await?;
        client.batch_execute("COMMIT").await?;
        return Ok(result);
    }
    let batch = PreparedBatch::new(tenant, &head, events)?;
    write_and_commit(client, append_rows, tenant, events, &batch, idempotency).await
}

/// The locked chain head: size, last chain hash, last receive time and Merkle frontier.
pub(super) struct ChainHead {
    size: u64,
    chain_hash: Hash,
    last_received: Option<DateTime<Utc>>,
    frontier: Vec<Hash>,
}

impl ChainHead {
    pub(super) fn from_row(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        Ok(ChainHead {
            size: seq_col(row.get::<_, i64>(0))?,
            chain_hash: hash_col(row.get::<_, &[u8]>(1))?,
            last_received: row.get(2),
            frontier: row.get::<_, &[u8]>(3).chunks(Hash::LEN).map(hash_col).collect::<Result<Vec<Hash>, _>>()?,
        })
    }
}

/// The answer to a request whose idempotency key was used before: the original entries, or a
/// conflict when the request differs. Runs inside the transaction that looked the key up.
pub(super) async fn replay(
    client: &tokio_postgres::Client,
    read_appended: &Statement,
    tenant: Uuid,
    idempotency: &Idempotency<'_>,
    previous: &tokio_postgres::Row,
) -> Result<AppendResult, StoreError> {
    if hash_col(previous.get::<_, &[u8]>(0))? != idempotency.request_hash {
        return Err(StoreError::IdempotencyConflict);
    }
    let first: i64 = previous.get(1);
    let count: i32 = previous.get(2);
    let end = first + i64::from(count);
    let rows = client.query(read_appended, &[&tenant, &first, &end]).await?;
    let entries = rows.iter().map(appended_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(AppendResult { entries, replayed: true, tree_size: seq_col(end)?, outbox_id: None })
}

/// What an append computes in memory under the head lock: the entries with their seqs, ids and
/// receive time, their leaf and chain hashes, and the grown Merkle tree.
pub(super) struct PreparedBatch {
    entries: Vec<Entry>,
    linked: Vec<crate::chain::entry::Linked>,
    grown: merkle::Appended,
    last_chain: Hash,
    received_at: DateTime<Utc>,
}

impl PreparedBatch {
    pub(super) fn new(tenant: Uuid, head: &ChainHead, events: &[SealedEvent]) -> Result<Self, StoreError> {
        // Received time is taken under the lock and never goes backwards within a tenant, so seq
        // order and time order agree even across instances with skewed clocks.
        let now = truncate_to_micros(Utc::now());
        let received_at = head.last_received.map_or(now, |last| last.max(now));
        let entries: Vec<Entry> = events
            .iter()
            .enumerate()
            .map(|(i, e)| Entry {
                tenant_id: tenant,
                seq: head.size + i as u64,
                id: Uuid::now_v7(),
                received_at,
                content_digest: e.digest,
            })
            .collect();
        let linked = link_entries(head.chain_hash, &entries);
        let leaves: Vec<Hash> = linked.iter().map(|l| l.leaf_hash).collect();
        // A frontier of the wrong length for `size` is reported as corrupt by `append`.
        let grown = merkle::append(&head.frontier, head.size, &leaves).map_err(|e| match e {
            merkle::MerkleError::FrontierMismatch { .. } => StoreError::Corrupt(format!("chain head: {e}")),
            other => StoreError::Merkle(other),
        })?;
        let last_chain = linked.last().map_or(head.chain_hash, |l| l.chain_hash);
        Ok(PreparedBatch { entries, linked, grown, last_chain, received_at })
    }
}

/// Writes a prepared batch in one statement and commits, pipelined: the write is sent before
/// COMMIT. If it fails, the server aborts the transaction and answers COMMIT with a rollback, so
/// the write's error is what counts; it is checked first.
pub(super) async fn write_and_commit(
    client: &tokio_postgres::Client,
    append_rows: &Statement,
    tenant: Uuid,
    events: &[SealedEvent],
    batch: &PreparedBatch,
    idempotency: Option<&Idempotency<'_>>,
) -> Result<AppendResult, StoreError> {
    let PreparedBatch { entries, linked, grown, last_chain, received_at } = batch;
    let seqs: Vec<i64> = entries.iter().map(|e| to_i64(e.seq)).collect::<Result<_, _>>()?;
    let ids: Vec<Uuid> = entries.iter().map(|e| e.id).collect();
    let digests: Vec<&[u8]> = entries.iter().map(|e| e.content_digest.0.as_slice()).collect();
    let leaf_cols: Vec<&[u8]> = linked.iter().map(|l| l.leaf_hash.0.as_slice()).collect();
    let chain_cols: Vec<&[u8]> = linked.iter().map(|l| l.chain_hash.0.as_slice()).collect();
    let occurred: Vec<DateTime<Utc>> = events.iter().map(|e| e.event.occurred_at).collect();
    let actions: Vec<&str> = events.iter().map(|e| e.event.action.as_str()).collect();
    let actors: Vec<&str> = events.iter().map(|e| e.event.actor.id.as_str()).collect();
    let res_types: Vec<Option<&str>> =
        events.iter().map(|e| e.event.resource.as_ref().map(|r| r.kind.as_str())).collect();
    let res_ids: Vec<Option<&str>> =
        events.iter().map(|e| e.event.resource.as_ref().and_then(|r| r.id.as_deref())).collect();
    let outcomes: Vec<&str> = events.iter().map(|e| e.event.outcome.as_str()).collect();
    let severities: Vec<Option<&str>> = events.iter().map(|e| e.event.severity.map(|s| s.as_str())).collect();
    let sources: Vec<Option<&str>> = events.iter().map(|e| e.event.source.as_deref()).collect();
    let contents: Vec<&str> = events
        .iter()
        .map(|e| {
            std::str::from_utf8(&e.content).map_err(|_| StoreError::Corrupt("canonical content is not UTF-8".into()))
        })
        .collect::<Result<_, _>>()?;
    let salts: Vec<&[u8]> = events.iter().map(|e| e.salt.as_slice()).collect();
    // Only every eighth level of the tree is stored (the rest is derived when read): about one
    // row per 256 leaves.
    let stored_nodes: Vec<_> = grown.nodes.iter().filter(|(id, _)| merkle::is_stored_level(id.level)).collect();
    let node_levels: Vec<i16> = stored_nodes.iter().map(|(id, _)| i16::from(id.level)).collect();
    let node_idx: Vec<i64> = stored_nodes.iter().map(|(id, _)| to_i64(id.index)).collect::<Result<_, _>>()?;
    let node_hashes: Vec<&[u8]> = stored_nodes.iter().map(|(_, h)| h.0.as_slice()).collect();
    let new_frontier: Vec<u8> = grown.frontier.iter().flat_map(|h| h.0).collect();
    let first_seq = seqs.first().copied().ok_or_else(|| StoreError::InvalidRange("an empty batch".into()))?;
    let count = i32::try_from(events.len()).map_err(|_| StoreError::InvalidRange("batch too large".into()))?;
    let new_size = to_i64(grown.size)?;
    let idem_key_col: Option<&str> = idempotency.map(|i| i.key);
    let request_hash: Option<&[u8]> = idempotency.map(|i| i.request_hash.0.as_slice());
    let last_chain_col = last_chain.0.as_slice();
    let params: [&(dyn ToSql + Sync); 27] = [
        &tenant,
        received_at,
        &seqs,
        &ids,
        &digests,
        &leaf_cols,
        &chain_cols,
        &occurred,
        &actions,
        &actors,
        &res_types,
        &res_ids,
        &outcomes,
        &severities,
        &sources,
        &contents,
        &salts,
        &node_levels,
        &node_idx,
        &node_hashes,
        &first_seq,
        &count,
        &idem_key_col,
        &request_hash,
        &new_size,
        &last_chain_col,
        &new_frontier,
    ];
    let (written, committed) = futures::join!(client.query_one(append_rows, &params), client.batch_execute("COMMIT"));
    let outbox_id: i64 = written?.get(0);
    committed?;

    let appended = entries
        .iter()
        .zip(linked)
        .map(|(e, l)| Appended {
            seq: e.seq,
            id: e.id,
            received_at: e.received_at,
            leaf_hash: l.leaf_hash,
            chain_hash: l.chain_hash,
        })
        .collect();
    Ok(AppendResult { entries: appended, replayed: false, tree_size: grown.size, outbox_id: Some(outbox_id) })
}

fn appended_from_row(row: &tokio_postgres::Row) -> Result<Appended, StoreError> {
    Ok(Appended {
        seq: seq_col(row.get(0))?,
        id: row.get(1),
        received_at: row.get(2),
        leaf_hash: hash_col(row.get::<_, &[u8]>(3))?,
        chain_hash: hash_col(row.get::<_, &[u8]>(4))?,
    })
}
