//! Test support: one throwaway PostgreSQL cluster per test process, a template database built
//! from the production migrations once, and a fresh database cloned from it for every test.
#![allow(dead_code)]

use anyhow::{Context, Result};
use localstack::postgres::Postgres;
use shared::store::migrate::{ensure_maintenance_login, ensure_service_login, migrate};
use shared::store::Store;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The login role tests connect as: a member of `audit_service`, like the deployed service user.
pub const APP_USER: &str = "audit_app";
/// The login role of erasure: a member of `audit_maintainer`.
pub const MAINTENANCE_USER: &str = "audit_maint";
const TEMPLATE: &str = "audit_template";

pub fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(|| Postgres::start_throwaway().expect("start a throwaway PostgreSQL (run scripts/setup first)"))
}

async fn ensure_template() -> Result<()> {
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_try_init(|| async {
            let pg = postgres();
            let admin = pg.connect_superuser("postgres").await?;
            admin.batch_execute(&format!("CREATE DATABASE {TEMPLATE}")).await?;
            let mut owner = pg.connect_superuser(TEMPLATE).await?;
            migrate(&mut owner).await.context("migrating the template")?;
            ensure_service_login(&owner, APP_USER).await?;
            ensure_maintenance_login(&owner, MAINTENANCE_USER).await?;
            drop(owner);
            Ok::<_, anyhow::Error>(())
        })
        .await?;
    Ok(())
}

/// A database of its own for one test, with the full schema applied.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn new() -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        ensure_template().await?;
        let name = format!("t{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let admin = postgres().connect_superuser("postgres").await?;
        // The template's last connection may still be closing; CREATE DATABASE refuses until then.
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")).await {
                Ok(()) => break,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "template busy, retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("creating a test database"),
            }
        }
        Ok(TestDb { name })
    }

    /// Connection string for the service's login role.
    pub fn app_url(&self) -> String {
        postgres().url(APP_USER, &self.name)
    }

    /// Connection string for the maintenance login role (erasure).
    pub fn maintenance_url(&self) -> String {
        postgres().url(MAINTENANCE_USER, &self.name)
    }

    /// A store connected as the service role (row-level security and grants apply).
    pub async fn store(&self) -> Result<Store> {
        Ok(Store::connect(&self.app_url()).await?)
    }

    /// A raw connection as the service role, for checking what the role may do.
    pub async fn app_client(&self) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.app_url(), tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A superuser connection: stands for someone with database access behind the service.
    pub async fn superuser(&self) -> Result<tokio_postgres::Client> {
        postgres().connect_superuser(&self.name).await
    }
}

/// Writes PostgreSQL's full text for every entry of the tenant, as the index queue's consumer does
/// after commit where no OpenSearch is configured; returns the rows written.
pub async fn index_text(store: &mut Store, tenant: uuid::Uuid) -> Result<u64> {
    let size = store.tree_head(tenant).await?.size;
    let run = store.index_text(tenant, &[(0, size)]).await?;
    anyhow::ensure!(run.present == [size], "entries missing: {run:?}");
    Ok(run.written)
}

/// A minimal valid event.
pub fn event(action: &str, actor: &str) -> serde_json::Value {
    serde_json::json!({ "action": action, "actor": { "id": actor }, "metadata": { "n": 1 } })
}

/// The local AWS endpoint with the service's resources, bootstrapped once per test process (the
/// bootstrap is idempotent but not safe to run concurrently with itself).
pub async fn aws() -> Result<(aws_config::SdkConfig, &'static localstack::bootstrap::Resources)> {
    static RESOURCES: tokio::sync::OnceCell<localstack::bootstrap::Resources> = tokio::sync::OnceCell::const_new();
    let sdk = localstack::moto::Moto::shared()?.sdk_config();
    let resources = RESOURCES.get_or_try_init(|| localstack::bootstrap::bootstrap(&sdk)).await?;
    Ok((sdk, resources))
}

/// Rewrites the tenant's history as an attacker with full database access would: changes the
/// content of `forge_seq` and recomputes every digest, leaf, chain hash, Merkle node and the head,
/// so that every stored hash agrees with every other. Only signatures cannot be redone.
pub async fn rewrite_history(db: &TestDb, tenant: uuid::Uuid, forge_seq: i64) {
    recompute_history(db, tenant, |seq, content, _| {
        if seq == forge_seq {
            *content = content.replace("\"u2\"", "\"mallory\"");
        }
    })
    .await;
}

/// Moves every entry of the tenant to `received_at` (into an older partition), recomputing every
/// hash as [`rewrite_history`] does: a log whose entries were received back then, for tests of
/// pruning old partitions.
pub async fn backdate_history(db: &TestDb, tenant: uuid::Uuid, received_at: chrono::DateTime<chrono::Utc>) {
    recompute_history(db, tenant, |_, _, at| *at = received_at).await;
}

/// Applies `edit` (seq, content, received_at) to every entry of the tenant and recomputes the
/// skeleton, the Merkle nodes, the head and the stored checkpoint roots to agree with it.
async fn recompute_history(
    db: &TestDb,
    tenant: uuid::Uuid,
    edit: impl Fn(i64, &mut String, &mut chrono::DateTime<chrono::Utc>),
) {
    use shared::chain::entry::{content_digest, Entry};
    use shared::chain::hash::{chain_link, GENESIS};
    let su = db.superuser().await.expect("su");
    su.batch_execute("SET session_replication_role = replica").await.expect("replica");
    let rows = su
        .query(
            "SELECT c.seq, c.event_id, c.received_at, e.content, e.salt FROM chain_entries c
               JOIN events e USING (tenant_id, seq, received_at) WHERE c.tenant_id = $1 ORDER BY c.seq",
            &[&tenant],
        )
        .await
        .expect("read");
    let mut prev = GENESIS;
    let mut leaves = Vec::new();
    for row in rows {
        let seq: i64 = row.get(0);
        let mut content: String = row.get(3);
        let mut received_at: chrono::DateTime<chrono::Utc> = row.get(2);
        edit(seq, &mut content, &mut received_at);
        let salt: Vec<u8> = row.get(4);
        let entry = Entry {
            tenant_id: tenant,
            seq: seq as u64,
            id: row.get(1),
            received_at,
            content_digest: content_digest(&salt, content.as_bytes()),
        };
        let leaf = entry.leaf_hash();
        prev = chain_link(&prev, &leaf);
        leaves.push(leaf);
        su.execute(
            "UPDATE events SET content = $3, received_at = $4 WHERE tenant_id = $1 AND seq = $2",
            &[&tenant, &seq, &content, &received_at],
        )
        .await
        .expect("content");
        su.execute(
            "UPDATE chain_entries SET content_digest = $3, leaf_hash = $4, chain_hash = $5, received_at = $6
              WHERE tenant_id = $1 AND seq = $2",
            &[&tenant, &seq, &entry.content_digest.0.as_slice(), &leaf.0.as_slice(), &prev.0.as_slice(), &received_at],
        )
        .await
        .expect("skeleton");
    }
    let grown = shared::chain::merkle::append(&[], 0, &leaves).expect("tree");
    su.execute("DELETE FROM merkle_nodes WHERE tenant_id = $1", &[&tenant]).await.expect("nodes");
    for (id, hash) in grown.nodes.iter().filter(|(id, _)| shared::chain::merkle::is_stored_level(id.level)) {
        su.execute(
            "INSERT INTO merkle_nodes (tenant_id, level, idx, hash) VALUES ($1, $2, $3, $4)",
            &[&tenant, &i16::from(id.level), &(id.index as i64), &hash.0.as_slice()],
        )
        .await
        .expect("node");
    }
    let frontier: Vec<u8> = grown.frontier.iter().flat_map(|h| h.0).collect();
    su.execute(
        "UPDATE chain_heads SET chain_hash = $2, frontier = $3 WHERE tenant_id = $1",
        &[&tenant, &prev.0.as_slice(), &frontier],
    )
    .await
    .expect("head");
    // The attacker also makes the stored checkpoint rows agree; the signed notes stay as signed.
    su.execute(
        "UPDATE checkpoints SET root_hash = $2 WHERE tenant_id = $1 AND tree_size = $3",
        &[&tenant, &grown.root.0.as_slice(), &(leaves.len() as i64)],
    )
    .await
    .expect("checkpoint rows");
}
