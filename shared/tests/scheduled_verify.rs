//! The scheduled verifier on real PostgreSQL: it verifies only what was appended since its last
//! run, finds tampering in the new part at its seq, finds a rewrite of the part it verified
//! before (without re-reading it), and keeps alarming until the fault is dealt with.

mod support;

use serde_json::Value;
use shared::chain::verify::FaultKind;
use shared::service::ingest::{ingest, Request};
use shared::service::verify::{run_scheduled_verifier, verify_incrementally};
use shared::store::connect::DbConfig;
use shared::store::pool::StorePool;
use shared::store::Store;
use support::{event, TestDb};
use uuid::Uuid;

async fn append(store: &mut Store, tenant: Uuid, n: usize, action: &str) {
    let batch: Vec<Value> = (0..n).map(|i| event(action, &format!("u{i}"))).collect();
    ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
}

#[tokio::test]
async fn each_run_verifies_only_the_entries_appended_since_the_last() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    append(&mut store, t, 10, "a").await;
    let first = verify_incrementally(&mut store, t, None).await?;
    assert!(first.ok, "{first:?}");
    assert_eq!(first.verified, 10);
    append(&mut store, t, 5, "b").await;
    let second = verify_incrementally(&mut store, t, None).await?;
    assert!(second.ok, "{second:?}");
    assert_eq!(second.verified, 5);
    let position = store.verified_position(t).await?.expect("recorded");
    assert_eq!(position.verified_size, 15);
    assert_eq!(position.chain_hash, store.chain_hash_before(t, 15).await?);
    assert_eq!(position.last_fault, None);
    Ok(())
}

#[tokio::test]
async fn tampering_in_the_new_entries_is_found_at_its_seq_and_keeps_alarming() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    append(&mut store, t, 10, "a").await;
    assert!(verify_incrementally(&mut store, t, None).await?.ok);
    append(&mut store, t, 10, "b").await;
    db.superuser()
        .await?
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             UPDATE events SET content = replace(content, '\"u3\"', '\"mallory\"') WHERE tenant_id = '{t}' AND seq = 13;"
        ))
        .await?;
    for _ in 0..2 {
        let report = verify_incrementally(&mut store, t, None).await?;
        assert!(!report.ok);
        assert_eq!((report.first_bad_seq, report.fault), (Some(13), Some(FaultKind::ContentModified)));
        let position = store.verified_position(t).await?.expect("recorded");
        // The last good position is kept, and the fault recorded.
        assert_eq!(position.verified_size, 10);
        assert!(position.last_fault.as_deref().is_some_and(|f| f.starts_with("seq 13")), "{position:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_rewrite_of_the_verified_part_is_found_without_rereading_it() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    append(&mut store, t, 10, "a").await;
    assert!(verify_incrementally(&mut store, t, None).await?.ok);
    append(&mut store, t, 3, "b").await;
    // Someone with database access rewrites the last verified entry's chain hash. The run finds it
    // by the hash recorded at the verified position, before reading any entry.
    let su = db.superuser().await?;
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE chain_entries SET chain_hash = sha256(chain_hash) WHERE tenant_id = '{t}' AND seq = 9;"
    ))
    .await?;
    let report = verify_incrementally(&mut store, t, None).await?;
    assert!(!report.ok);
    assert_eq!(report.fault, Some(FaultKind::VerifiedPrefixChanged { verified_size: 10 }));
    assert_eq!(report.first_bad_seq, Some(10));
    Ok(())
}

#[tokio::test]
async fn a_truncated_verified_part_is_found() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    append(&mut store, t, 10, "a").await;
    assert!(verify_incrementally(&mut store, t, None).await?.ok);
    db.superuser()
        .await?
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             DELETE FROM chain_entries WHERE tenant_id = '{t}' AND seq >= 7;
             UPDATE chain_heads SET size = 7 WHERE tenant_id = '{t}';"
        ))
        .await?;
    let report = verify_incrementally(&mut store, t, None).await?;
    assert_eq!(report.fault, Some(FaultKind::Truncated { expected_size: 10 }));
    Ok(())
}

#[tokio::test]
async fn the_scheduled_run_visits_only_tenants_with_new_entries() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let (a, b, idle) =
        (store.create_tenant("a").await?, store.create_tenant("b").await?, store.create_tenant("c").await?);
    append(&mut store, a, 4, "x").await;
    append(&mut store, b, 6, "x").await;
    let pool = StorePool::new(DbConfig::plain(db.app_url()), 1);
    let run = run_scheduled_verifier(&pool, None, None, 100).await?;
    assert_eq!((run.tenants, run.entries, run.failed), (2, 10, 0));
    assert_eq!(store.verified_position(idle).await?, None);
    // Nothing new: nothing to visit.
    let run = run_scheduled_verifier(&pool, None, None, 100).await?;
    assert_eq!(run.tenants, 0);
    append(&mut store, b, 1, "y").await;
    let run = run_scheduled_verifier(&pool, None, None, 100).await?;
    assert_eq!((run.tenants, run.entries), (1, 1));
    assert_eq!(store.verified_position(a).await?.map(|p| p.verified_size), Some(4));
    Ok(())
}
