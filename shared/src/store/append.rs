//! The append transaction ("life of a leaf", see docs/ARCHITECTURE.md).
//!
//! In one transaction: set the tenant, lock the tenant's chain head (`FOR UPDATE`), look up the
//! idempotency key, read the Merkle frontier, then insert the skeleton rows, the content rows, the
//! newly completed Merkle nodes, one outbox row and the idempotency record, and move the head.
//! Statements that do not depend on each other are pipelined on the connection, so a batch costs
//! three round trips whatever its size. Concurrent writers of one tenant queue on the head lock;
//! writers of different tenants never touch the same row. Should the lock ever be bypassed,
//! `PRIMARY KEY (tenant_id, seq)` on `chain_entries` still refuses a second entry for a seq.

use super::tree::fetch_nodes;
use super::{hash_col, seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::entry::{link_entries, Entry, SealedEvent};
use crate::chain::event::truncate_to_micros;
use crate::chain::hash::Hash;
use crate::chain::merkle;
use chrono::{DateTime, Utc};
use futures::future::{try_join_all, BoxFuture, FutureExt};
use tokio_postgres::types::ToSql;
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
    /// Tree size and root after this append (for a replay: of the original append).
    pub tree_size: u64,
}

const LOCK_HEAD: &str = "SELECT size, chain_hash, last_received_at FROM chain_heads WHERE tenant_id = $1 FOR UPDATE";
const FIND_IDEMPOTENCY: &str =
    "SELECT request_hash, first_seq, count FROM idempotency_keys WHERE tenant_id = $1 AND key = $2";
const INSERT_ENTRIES: &str = "INSERT INTO chain_entries (tenant_id, seq, event_id, received_at, content_digest, leaf_hash, chain_hash)
     SELECT $1, s, i, $2, d, l, c FROM unnest($3::bigint[], $4::uuid[], $5::bytea[], $6::bytea[], $7::bytea[]) AS t(s, i, d, l, c)";
const INSERT_EVENTS: &str = "INSERT INTO events (tenant_id, seq, received_at, event_id, occurred_at, action, actor_id,
         resource_type, resource_id, outcome, severity, source, content, salt)
     SELECT $1, s, $2, i, o, a, ai, rt, ri, oc, sv, so, c, sa
     FROM unnest($3::bigint[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[],
                 $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[])
          AS t(s, i, o, a, ai, rt, ri, oc, sv, so, c, sa)";
const INSERT_NODES: &str = "INSERT INTO merkle_nodes (tenant_id, level, idx, hash)
     SELECT $1, l, i, h FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS t(l, i, h)";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (tenant_id, first_seq, count) VALUES ($1, $2, $3)";
const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency_keys (tenant_id, key, request_hash, first_seq, count) VALUES ($1, $2, $3, $4, $5)";
const UPDATE_HEAD: &str =
    "UPDATE chain_heads SET size = $2, chain_hash = $3, last_received_at = $4, updated_at = now() WHERE tenant_id = $1";
const READ_APPENDED: &str = "SELECT seq, event_id, received_at, leaf_hash, chain_hash FROM chain_entries
     WHERE tenant_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq";

type Exec<'a> = BoxFuture<'a, Result<u64, tokio_postgres::Error>>;

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
        let [set_tenant, lock_head, find_idem, ins_entries, ins_events, ins_nodes, ins_outbox, ins_idem, upd_head, read_appended] =
            self.prepared([
                SET_TENANT,
                LOCK_HEAD,
                FIND_IDEMPOTENCY,
                INSERT_ENTRIES,
                INSERT_EVENTS,
                INSERT_NODES,
                INSERT_OUTBOX,
                INSERT_IDEMPOTENCY,
                UPDATE_HEAD,
                READ_APPENDED,
            ])
            .await?;
        let tx = self.client.transaction().await?;
        let tenant_text = tenant_param(tenant);

        // Round trip 1: tenant context, head lock, idempotency lookup (pipelined, run in order).
        let idem_key = idempotency.map(|i| i.key).unwrap_or_default();
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let lock_params: [&(dyn ToSql + Sync); 1] = [&tenant];
        let idem_params: [&(dyn ToSql + Sync); 2] = [&tenant, &idem_key];
        let (_, head, previous) =
            futures::try_join!(tx.execute(&set_tenant, &set_params), tx.query_opt(&lock_head, &lock_params), async {
                match idempotency {
                    Some(_) => tx.query_opt(&find_idem, &idem_params).await,
                    None => Ok(None),
                }
            },)?;
        let head = head.ok_or(StoreError::UnknownTenant)?;
        let size = seq_col(head.get::<_, i64>(0))?;
        let prev_chain = hash_col(head.get::<_, &[u8]>(1))?;
        let last_received: Option<DateTime<Utc>> = head.get(2);

        if let (Some(idem), Some(row)) = (idempotency, previous) {
            if hash_col(row.get::<_, &[u8]>(0))? != idem.request_hash {
                return Err(StoreError::IdempotencyConflict);
            }
            let first: i64 = row.get(1);
            let count: i32 = row.get(2);
            let end = first + i64::from(count);
            let rows = tx.query(&read_appended, &[&tenant, &first, &end]).await?;
            let entries = rows.iter().map(appended_from_row).collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            return Ok(AppendResult { entries, replayed: true, tree_size: seq_col(end)? });
        }

        // Round trip 2: the Merkle frontier (perfect subtrees of the current tree).
        let frontier_ids = merkle::root_nodes(size);
        let known = fetch_nodes(&tx, tenant, &frontier_ids).await?;
        let frontier = frontier_ids
            .iter()
            .map(|id| known.get(id).copied().ok_or_else(|| StoreError::Corrupt(format!("missing Merkle node {id:?}"))))
            .collect::<Result<Vec<Hash>, _>>()?;

        // Received time is taken under the lock and never goes backwards within a tenant, so seq
        // order and time order agree even across instances with skewed clocks.
        let now = truncate_to_micros(Utc::now());
        let received_at = last_received.map_or(now, |last| last.max(now));
        let entries: Vec<Entry> = events
            .iter()
            .enumerate()
            .map(|(i, e)| Entry {
                tenant_id: tenant,
                seq: size + i as u64,
                id: Uuid::now_v7(),
                received_at,
                content_digest: e.digest,
            })
            .collect();
        let linked = link_entries(prev_chain, &entries);
        let leaves: Vec<Hash> = linked.iter().map(|l| l.leaf_hash).collect();
        let grown = merkle::append(&frontier, size, &leaves)?;
        let new_size = size + events.len() as u64;
        let last_chain = linked.last().map_or(prev_chain, |l| l.chain_hash);

        // Round trip 3: every insert, the head update and COMMIT, pipelined.
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
                std::str::from_utf8(&e.content)
                    .map_err(|_| StoreError::Corrupt("canonical content is not UTF-8".into()))
            })
            .collect::<Result<_, _>>()?;
        let salts: Vec<&[u8]> = events.iter().map(|e| e.salt.as_slice()).collect();
        let node_levels: Vec<i16> = grown.nodes.iter().map(|(id, _)| i16::from(id.level)).collect();
        let node_idx: Vec<i64> = grown.nodes.iter().map(|(id, _)| to_i64(id.index)).collect::<Result<_, _>>()?;
        let node_hashes: Vec<&[u8]> = grown.nodes.iter().map(|(_, h)| h.0.as_slice()).collect();
        let first_seq = to_i64(size)?;
        let count = i32::try_from(events.len()).map_err(|_| StoreError::InvalidRange("batch too large".into()))?;
        let new_size_i = to_i64(new_size)?;
        let request_hash = idempotency.map(|i| i.request_hash.0.to_vec()).unwrap_or_default();

        let entry_params: [&(dyn ToSql + Sync); 7] =
            [&tenant, &received_at, &seqs, &ids, &digests, &leaf_cols, &chain_cols];
        let event_params: [&(dyn ToSql + Sync); 14] = [
            &tenant,
            &received_at,
            &seqs,
            &ids,
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
        ];
        let outbox_params: [&(dyn ToSql + Sync); 3] = [&tenant, &first_seq, &count];
        let last_chain_col = last_chain.0.as_slice();
        let head_params: [&(dyn ToSql + Sync); 4] = [&tenant, &new_size_i, &last_chain_col, &received_at];
        let node_params: [&(dyn ToSql + Sync); 4] = [&tenant, &node_levels, &node_idx, &node_hashes];
        let idem_insert_params: [&(dyn ToSql + Sync); 5] = [&tenant, &idem_key, &request_hash, &first_seq, &count];
        let mut writes: Vec<Exec<'_>> = vec![
            tx.execute(&ins_entries, &entry_params).boxed(),
            tx.execute(&ins_events, &event_params).boxed(),
            tx.execute(&ins_outbox, &outbox_params).boxed(),
            tx.execute(&upd_head, &head_params).boxed(),
        ];
        if !grown.nodes.is_empty() {
            writes.push(tx.execute(&ins_nodes, &node_params).boxed());
        }
        if idempotency.is_some() {
            writes.push(tx.execute(&ins_idem, &idem_insert_params).boxed());
        }
        try_join_all(writes).await?;
        tx.commit().await?;

        let appended = entries
            .iter()
            .zip(&linked)
            .map(|(e, l)| Appended {
                seq: e.seq,
                id: e.id,
                received_at: e.received_at,
                leaf_hash: l.leaf_hash,
                chain_hash: l.chain_hash,
            })
            .collect();
        Ok(AppendResult { entries: appended, replayed: false, tree_size: new_size })
    }
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
