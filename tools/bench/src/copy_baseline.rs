//! The baseline: the columns the append writes for each event (the content row, plus the
//! skeleton row's digest and hashes) loaded with one binary `COPY .. FROM STDIN` into a single
//! table without constraints, indexes, partitions, triggers or row-level security. That is about
//! the fastest way this cluster takes these bytes from one connection, so "append throughput /
//! COPY throughput" says how much of the database's raw write speed the append transaction keeps.
//!
//! Rows are built from the same event pool, sealed and hashed before the clock starts; each row
//! takes a pool event's content, salt and hashes with its own seq and a fresh event id.

use crate::appends::Measured;
use crate::db::BenchDb;
use crate::workload::Pool;
use anyhow::{Context, Result};
use chrono::Utc;
use futures::pin_mut;
use shared::chain::entry::{link_entries, Entry, SealedEvent};
use shared::chain::event::truncate_to_micros;
use shared::chain::hash::{Hash, GENESIS};
use std::time::Instant;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

const CREATE_TABLE: &str = "CREATE TABLE copy_baseline (
    tenant_id uuid, seq bigint, received_at timestamptz, event_id uuid, occurred_at timestamptz,
    action text, actor_id text, resource_type text, resource_id text, outcome text, severity text,
    source text, content text, salt bytea, content_digest bytea, leaf_hash bytea, chain_hash bytea)";
const COPY: &str = "COPY copy_baseline FROM STDIN (FORMAT binary)";
const TYPES: [Type; 17] = [
    Type::UUID,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
];

/// A sealed pool event with the leaf and chain hash an append gave it.
struct Template {
    sealed: SealedEvent,
    content: String,
    leaf_hash: Hash,
    chain_hash: Hash,
}

/// COPYs `rows` rows into a fresh table of `db` over its superuser connection.
pub async fn run(db: &BenchDb, pool: &Pool, rows: usize) -> Result<Measured> {
    let client = db.superuser();
    client.batch_execute(CREATE_TABLE).await.context("creating the baseline table")?;
    let tenant = Uuid::now_v7();
    let received_at = truncate_to_micros(Utc::now());
    let templates = templates(pool, tenant, received_at)?;
    let before = db.table_sizes().await?;

    let started = Instant::now();
    let sink = client.copy_in(COPY).await.context("starting COPY")?;
    let writer = BinaryCopyInWriter::new(sink, &TYPES);
    pin_mut!(writer);
    for i in 0..rows {
        let t = &templates[i % templates.len()];
        let e = &t.sealed.event;
        let seq = i as i64;
        let id = Uuid::now_v7();
        let resource_type = e.resource.as_ref().map(|r| r.kind.as_str());
        let resource_id = e.resource.as_ref().and_then(|r| r.id.as_deref());
        let severity = e.severity.map(|s| s.as_str());
        let row: [&(dyn ToSql + Sync); 17] = [
            &tenant,
            &seq,
            &received_at,
            &id,
            &e.occurred_at,
            &e.action,
            &e.actor.id,
            &resource_type,
            &resource_id,
            &e.outcome.as_str(),
            &severity,
            &e.source,
            &t.content,
            &t.sealed.salt.as_slice(),
            &t.sealed.digest.0.as_slice(),
            &t.leaf_hash.0.as_slice(),
            &t.chain_hash.0.as_slice(),
        ];
        writer.as_mut().write(&row).await.with_context(|| format!("copying row {i}"))?;
    }
    writer.finish().await.context("finishing COPY")?;
    let elapsed = started.elapsed();

    let growth = db.table_sizes().await?.growth_since(&before);
    Ok(Measured { events: rows, elapsed, latencies: Vec::new(), growth })
}

fn templates(pool: &Pool, tenant: Uuid, received_at: chrono::DateTime<Utc>) -> Result<Vec<Template>> {
    let sealed = pool.sealed()?;
    let entries: Vec<Entry> = sealed
        .iter()
        .enumerate()
        .map(|(i, s)| Entry {
            tenant_id: tenant,
            seq: i as u64,
            id: Uuid::now_v7(),
            received_at,
            content_digest: s.digest,
        })
        .collect();
    let linked = link_entries(GENESIS, &entries);
    sealed
        .into_iter()
        .zip(linked)
        .map(|(sealed, l)| {
            let content = String::from_utf8(sealed.content.clone()).context("canonical content is not UTF-8")?;
            Ok(Template { sealed, content, leaf_hash: l.leaf_hash, chain_hash: l.chain_hash })
        })
        .collect()
}
