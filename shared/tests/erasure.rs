//! Erasure on real PostgreSQL: content goes, the hash skeleton stays, verification and proofs
//! still pass, each erasure is recorded in the chain, and only the maintenance role can erase,
//! and nothing else.

mod support;

use serde_json::Value;
use shared::chain::hash::sha256;
use shared::chain::merkle;
use shared::service::admin::{Actor, AdminError};
use shared::service::erasure::{erase, ERASED_ACTION};
use shared::service::ingest::{ingest, Request};
use shared::service::verify::verify_range;
use shared::store::erasure::ErasureTarget;
use shared::store::{Store, StoreError};
use support::{event, TestDb};
use uuid::Uuid;

const K1: Actor<'static> = Actor { key_id: "k1" };

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// Appends one event per actor and returns their ids in order.
async fn append(store: &mut Store, tenant: Uuid, actors: &[&str]) -> Vec<Uuid> {
    let batch: Vec<Value> = actors.iter().map(|a| event("doc.read", a)).collect();
    let result = ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
    result.entries.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn erased_content_is_gone_and_the_chain_still_verifies_and_proves() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let mut maintenance = Store::connect(&db.maintenance_url()).await.expect("maintenance");
    let t = store.create_tenant("t").await.expect("t");
    let ids = append(&mut store, t, &["ada", "bob", "ada", "cy", "ada"]).await;

    let one = erase(&mut maintenance, t, &ErasureTarget::Event(ids[1]), K1, None).await.expect("erase");
    assert_eq!(one.erased, 1);
    let bob = store.get_entry(t, ids[1]).await.expect("entry");
    assert_eq!((bob.content, bob.salt), (None, None));
    let subject = ErasureTarget::Actor("ada".into());
    assert_eq!(erase(&mut maintenance, t, &subject, K1, None).await.expect("erase").erased, 3);
    assert_eq!(erase(&mut maintenance, t, &subject, K1, None).await.expect("again").erased, 0, "idempotent");
    // Filters no longer find the subject.
    let su = db.superuser().await.expect("su");
    let left: i64 = su
        .query_one("SELECT count(*) FROM events WHERE tenant_id = $1 AND actor_id = 'ada'", &[&t])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);

    // Every entry still verifies, erased ones by their skeleton, and proofs still hold.
    let report = verify_range(&mut store, t, 0, None, None).await.expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.erased, 4, "{report:?}");
    let head = store.tree_head(t).await.expect("head");
    let erased = store.get_entry(t, ids[0]).await.expect("entry");
    let path = store.inclusion_proof(t, erased.entry.seq, head.size).await.expect("proof");
    merkle::verify_inclusion(&erased.leaf_hash, erased.entry.seq, head.size, &path, &head.root).expect("proof holds");

    // Each erasure is in the chain, naming a subject only by the hash of its id.
    let last = store.entry_at(t, head.size - 1).await.expect("entry");
    let content: Value = serde_json::from_str(last.content.as_deref().expect("content")).expect("json");
    assert_eq!(content["action"], ERASED_ACTION);
    assert_eq!(content["resource"]["type"], "actor");
    assert_eq!(content["resource"]["id"], format!("sha256:{}", sha256(&[b"ada"]).to_hex()));
    assert!(!last.content.as_deref().unwrap_or_default().contains("\"ada\""));
}

#[tokio::test]
async fn a_retention_cut_off_erases_what_was_received_before_it() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let mut maintenance = Store::connect(&db.maintenance_url()).await.expect("maintenance");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, &["a", "b"]).await;
    let cut = chrono::Utc::now();
    let later = append(&mut store, t, &["c"]).await;
    let n = erase(&mut maintenance, t, &ErasureTarget::ReceivedBefore(cut), K1, None).await.expect("erase").erased;
    assert_eq!(n, 2);
    assert!(store.get_entry(t, later[0]).await.expect("entry").content.is_some());
    assert!(verify_range(&mut store, t, 0, None, None).await.expect("verify").ok);
}

#[tokio::test]
async fn an_unknown_or_foreign_event_is_not_found_and_nothing_changes() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let mut maintenance = Store::connect(&db.maintenance_url()).await.expect("maintenance");
    let a = store.create_tenant("a").await.expect("a");
    let b = store.create_tenant("b").await.expect("b");
    let ids = append(&mut store, a, &["x"]).await;
    let (a_size, b_size) = (store.tree_head(a).await.expect("a").size, store.tree_head(b).await.expect("b").size);
    let foreign = erase(&mut maintenance, b, &ErasureTarget::Event(ids[0]), K1, None).await;
    assert!(matches!(foreign, Err(AdminError::Store(StoreError::NotFound))), "{foreign:?}");
    let unknown = erase(&mut maintenance, a, &ErasureTarget::Event(Uuid::now_v7()), K1, None).await;
    assert!(matches!(unknown, Err(AdminError::Store(StoreError::NotFound))), "{unknown:?}");
    // Nothing was recorded either.
    assert_eq!(store.tree_head(a).await.expect("a").size, a_size);
    assert_eq!(store.tree_head(b).await.expect("b").size, b_size);
    assert!(store.get_entry(a, ids[0]).await.expect("entry").content.is_some());
}

#[tokio::test]
async fn only_the_maintenance_role_erases_and_it_can_do_nothing_else() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let a = store.create_tenant("a").await.expect("a");
    let b = store.create_tenant("b").await.expect("b");
    let ids = append(&mut store, a, &["x"]).await;
    let set = |t: Uuid| format!("SELECT set_config('app.tenant_id', '{t}', false)");

    // The service role may not call the erasure function, nor change rows itself.
    let service = raw(&db.app_url()).await;
    service.batch_execute(&set(a)).await.expect("set");
    for sql in [
        format!("SELECT audit_erase('{a}', '{}', NULL, NULL)", ids[0]),
        format!("UPDATE events SET content = NULL, salt = NULL WHERE tenant_id = '{a}'"),
        format!("DELETE FROM events WHERE tenant_id = '{a}'"),
    ] {
        let err = service.batch_execute(&sql).await.expect_err(&sql);
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {err}");
    }

    // The maintenance role only erases, and only for the tenant it acts for.
    let maint = raw(&db.maintenance_url()).await;
    maint.batch_execute(&set(a)).await.expect("set");
    for sql in [
        format!("UPDATE events SET content = NULL, salt = NULL WHERE tenant_id = '{a}'"),
        format!("DELETE FROM events WHERE tenant_id = '{a}'"),
        format!("DELETE FROM chain_entries WHERE tenant_id = '{a}'"),
        "DROP TABLE events".to_owned(),
        format!("SELECT audit_erase('{b}', NULL, 'x', NULL)"),
    ] {
        let err = maint.batch_execute(&sql).await.expect_err(&sql);
        assert!(err.code().is_some(), "{sql}: {err}");
    }
    let two = maint.batch_execute(&format!("SELECT audit_erase('{a}', '{}', 'x', NULL)", ids[0])).await;
    assert!(two.is_err(), "two criteria at once are refused");

    // Even the owner cannot change content outside an erasure, nor anything but content in one.
    let su = db.superuser().await.expect("su");
    let plain =
        su.batch_execute(&format!("UPDATE events SET content = NULL, salt = NULL WHERE tenant_id = '{a}'")).await;
    assert!(plain.is_err(), "the guard refuses updates outside audit_erase");
    let sneaky = su
        .batch_execute(&format!(
            "BEGIN; SELECT set_config('audit.erasing', 'on', true);
             UPDATE events SET content = NULL, salt = NULL, actor_id = '', resource_id = NULL, erased_at = now(),
                    action = 'forged' WHERE tenant_id = '{a}'; COMMIT;"
        ))
        .await;
    assert!(sneaky.is_err(), "an erasure may not change other columns");
    su.batch_execute("ROLLBACK").await.ok();
    assert!(store.get_entry(a, ids[0]).await.expect("entry").content.is_some());
}
