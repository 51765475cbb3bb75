//! The Merkle tree's storage since migration V12, on real PostgreSQL: appends store only every
//! eighth level, every root and proof is the same as with every level stored, and an upgrade
//! from the schema before V12 drops the other levels' rows and changes no root or proof.

mod support;

use serde_json::json;
use shared::chain::hash::Hash;
use shared::chain::merkle::{self, is_stored_level, MemoryTree};
use shared::service::ingest::{ingest, Request};
use shared::store::Store;
use support::TestDb;
use uuid::Uuid;

async fn append(store: &mut Store, tenant: Uuid, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let batch: Vec<_> =
            chunk.iter().map(|i| json!({ "action": "doc.read", "actor": { "id": format!("u{i}") } })).collect();
        ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
    }
}

/// The tenant's leaf hashes in seq order, read as the owner.
async fn leaf_hashes(client: &tokio_postgres::Client, tenant: Uuid) -> anyhow::Result<Vec<Hash>> {
    let rows =
        client.query("SELECT leaf_hash FROM chain_entries WHERE tenant_id = $1 ORDER BY seq", &[&tenant]).await?;
    Ok(rows.iter().map(|r| Hash::from_slice(r.get::<_, &[u8]>(0))).collect::<Result<_, _>>()?)
}

/// Every root, inclusion proof (of a sample of leaves) and consistency proof (from a sample of
/// sizes) of the tenant's tree, as the store gives them.
async fn everything(store: &mut Store, tenant: Uuid) -> Vec<Vec<Hash>> {
    let size = store.tree_head(tenant).await.expect("head").size;
    let mut out = Vec::new();
    for s in [1, 7, 255, 256, 257, 511, 512, 600, size] {
        if s <= size {
            out.push(vec![store.root_at(tenant, s).await.expect("root")]);
            out.push(store.consistency_proof(tenant, s, size).await.expect("consistency"));
        }
    }
    for seq in [0, 1, 100, 255, 256, 300, 511, 512, size - 1] {
        out.push(store.inclusion_proof(tenant, seq, size).await.expect("inclusion"));
    }
    out
}

#[tokio::test]
async fn appends_store_every_eighth_level_and_everything_agrees_with_a_full_tree() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    append(&mut store, t, 1100).await;
    let size = store.tree_head(t).await?.size;

    let su = db.superuser().await?;
    let levels: Vec<i16> = su
        .query("SELECT DISTINCT level FROM merkle_nodes WHERE tenant_id = $1 ORDER BY level", &[&t])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(levels, [8], "only level 8 has complete subtrees below 65,536 leaves");
    let rows: i64 = su.query_one("SELECT count(*) FROM merkle_nodes WHERE tenant_id = $1", &[&t]).await?.get(0);
    assert_eq!(rows as u64, size / 256);

    // The same answers as a tree held in memory with every node.
    let leaves = leaf_hashes(&su, t).await?;
    let mut full = MemoryTree::new();
    full.append(&leaves)?;
    assert_eq!(store.tree_head(t).await?.root, full.root());
    for seq in [0, 255, 256, 700, size - 1] {
        let proof = store.inclusion_proof(t, seq, size).await?;
        assert_eq!(proof, merkle::inclusion_proof(seq, size, &full)?, "seq {seq}");
        merkle::verify_inclusion(&leaves[seq as usize], seq, size, &proof, &full.root())?;
    }
    for old in [1, 256, 513, size - 1] {
        assert_eq!(store.consistency_proof(t, old, size).await?, merkle::consistency_proof(old, size, &full)?);
    }

    // The database refuses a node of a level that is not stored.
    let refused = su
        .execute("INSERT INTO merkle_nodes (tenant_id, level, idx, hash) VALUES ($1, 3, 999, sha256('x'))", &[&t])
        .await;
    assert!(refused.is_err(), "a level-3 row was stored");
    Ok(())
}

#[tokio::test]
async fn an_upgrade_from_the_schema_before_v12_drops_the_derived_levels_and_changes_no_proof() -> anyhow::Result<()> {
    // The roles are the cluster's: let the template's migration create them first.
    TestDb::new().await?;
    let pg = support::postgres();
    let name = format!("upgrade_tree_{}", std::process::id());
    pg.connect_superuser("postgres").await?.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let mut owner = pg.connect_superuser(&name).await?;
    shared::store::migrate::migrate_to(&mut owner, 11).await?;
    shared::store::migrate::ensure_service_login(&owner, support::APP_USER).await?;
    let mut store = Store::connect(&pg.url(support::APP_USER, &name)).await?;
    let t = store.create_tenant("t").await?;
    append(&mut store, t, 700).await;

    // What appends before V12 stored as well: every other level's complete subtrees.
    let leaves = leaf_hashes(&owner, t).await?;
    let grown = merkle::append(&[], 0, &leaves)?;
    let mut extra = 0;
    for (id, hash) in grown.nodes.iter().filter(|(id, _)| !is_stored_level(id.level)) {
        owner
            .execute(
                "INSERT INTO merkle_nodes (tenant_id, level, idx, hash) VALUES ($1, $2, $3, $4)",
                &[&t, &i16::from(id.level), &(id.index as i64), &hash.0.as_slice()],
            )
            .await?;
        extra += 1;
    }
    assert!(extra > 600, "{extra}");
    let before = everything(&mut store, t).await;

    let applied = shared::store::migrate::migrate(&mut owner).await?;
    assert!(applied.iter().any(|m| m.contains("V12")), "{applied:?}");
    let left: Vec<(i16, i64)> = owner
        .query("SELECT level, idx FROM merkle_nodes WHERE tenant_id = $1 ORDER BY level, idx", &[&t])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(left, [(8, 0), (8, 1)], "only the level-8 subtrees remain");
    let mut store = Store::connect(&pg.url(support::APP_USER, &name)).await?;
    assert_eq!(everything(&mut store, t).await, before, "a root or proof changed");
    // Appends go on, and the tree stays the one a full tree would give.
    append(&mut store, t, 100).await;
    let mut full = MemoryTree::new();
    full.append(&leaf_hashes(&owner, t).await?)?;
    assert_eq!(store.tree_head(t).await?.root, full.root());
    Ok(())
}
