//! The chain store on a real PostgreSQL: concurrency, isolation, tamper detection, append-only
//! enforcement, idempotency and all-or-nothing batches.

mod support;

use serde_json::{json, Value};
use shared::chain::hash::GENESIS;
use shared::chain::merkle;
use shared::chain::verify::FaultKind;
use shared::service::ingest::{ingest, IngestError, Request};
use shared::service::verify::verify_range;
use shared::store::StoreError;
use support::{event, TestDb};
use uuid::Uuid;

async fn count(db: &TestDb, table: &str) -> i64 {
    let su = db.superuser().await.expect("superuser");
    su.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_keep_one_gapless_verifiable_chain() {
    let db = TestDb::new().await.expect("db");
    let tenant = db.store().await.expect("store").create_tenant("acme").await.expect("tenant");
    let writers = (0..16).map(|w| {
        let url = db.app_url();
        tokio::spawn(async move {
            // Each writer has its own connection, as separate Lambda instances do.
            let mut store = shared::store::Store::connect(&url).await.expect("connect");
            let mut seqs = Vec::with_capacity(500);
            for i in 0..500 {
                let ev = event("doc.write", &format!("writer-{w}-{i}"));
                let r = ingest(&mut store, tenant, Request::One(&ev), None).await.expect("append");
                seqs.push(r.entries[0].seq);
            }
            seqs
        })
    });
    let mut all: Vec<u64> =
        futures::future::join_all(writers).await.into_iter().flat_map(|r| r.expect("writer")).collect();
    all.sort_unstable();
    assert_eq!(all, (0..8000).collect::<Vec<u64>>(), "every seq assigned exactly once");

    let mut store = db.store().await.expect("store");
    let report = verify_range(&mut store, tenant, 0, None, None).await.expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!((report.verified, report.tree_size), (8000, 8000));

    // The root from stored nodes equals the root rebuilt from all leaves in order.
    let mut leaves = Vec::new();
    store
        .scan_entries(tenant, 0, 8000, |e| {
            leaves.push(e.leaf_hash);
            Ok::<_, ()>(())
        })
        .await
        .expect("scan")
        .expect("visit");
    let mut tree = merkle::MemoryTree::new();
    tree.append(&leaves).expect("rebuild");
    assert_eq!(tree.root(), report.root);

    // Inclusion proofs at several sizes verify against the store's roots.
    for (seq, size) in [(0u64, 1u64), (4999, 8000), (7999, 8000), (1234, 4096), (4095, 4097)] {
        let proof = store.inclusion_proof(tenant, seq, size).await.expect("proof");
        let root = store.root_at(tenant, size).await.expect("root");
        merkle::verify_inclusion(&leaves[seq as usize], seq, size, &proof, &root).expect("inclusion verifies");
    }
    let proof = store.consistency_proof(tenant, 3001, 8000).await.expect("consistency");
    let old_root = store.root_at(tenant, 3001).await.expect("old root");
    merkle::verify_consistency(3001, 8000, &old_root, &report.root, &proof).expect("consistency verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_tenants_keep_independent_chains() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let a = store.create_tenant("a").await.expect("a");
    let b = store.create_tenant("b").await.expect("b");
    for i in 0..30 {
        let (tenant, actor) = if i % 3 == 0 { (b, "bob") } else { (a, "ann") };
        ingest(&mut store, tenant, Request::One(&event("x.y", actor)), None).await.expect("append");
    }
    let ra = verify_range(&mut store, a, 0, None, None).await.expect("a");
    let rb = verify_range(&mut store, b, 0, None, None).await.expect("b");
    assert!(ra.ok && rb.ok);
    assert_eq!((ra.tree_size, rb.tree_size), (20, 10));
    // Both chains start at seq 0 from the genesis hash.
    let first_b = store.chain_hash_before(b, 0).await.expect("genesis");
    assert_eq!(first_b, GENESIS);
    // Another tenant's event is simply not found, and row-level security hides its rows.
    let mut b_ids = Vec::new();
    store
        .scan_entries(b, 0, 10, |e| {
            b_ids.push(e.entry.id);
            Ok::<_, ()>(())
        })
        .await
        .expect("scan")
        .expect("ok");
    assert!(matches!(store.get_entry(a, b_ids[0]).await, Err(StoreError::NotFound)));
    assert_eq!(store.get_entry(b, b_ids[0]).await.expect("own").entry.tenant_id, b);
}

#[tokio::test]
async fn row_level_security_hides_rows_without_tenant_context() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let a = store.create_tenant("a").await.expect("a");
    ingest(&mut store, a, Request::One(&event("x", "u")), None).await.expect("append");
    let app = db.app_client().await.expect("app");
    for table in ["events", "chain_entries", "merkle_nodes", "chain_heads", "tenants", "outbox"] {
        let n: i64 = app.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0);
        assert_eq!(n, 0, "{table} visible without a tenant");
    }
    let other = Uuid::now_v7().to_string();
    app.execute("SELECT set_config('app.tenant_id', $1, false)", &[&other]).await.expect("set");
    let n: i64 = app.query_one("SELECT count(*) FROM events", &[]).await.expect("count").get(0);
    assert_eq!(n, 0, "another tenant's rows are invisible");
    // Writing a row for another tenant than the one set is refused by the policy.
    let err = app
        .execute("INSERT INTO outbox (tenant_id, first_seq, count) VALUES ($1, 0, 1)", &[&a])
        .await
        .expect_err("policy");
    let msg = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("row-level security"), "{msg}");
}

#[tokio::test]
async fn every_table_with_tenant_rows_has_row_level_security() {
    let db = TestDb::new().await.expect("db");
    let su = db.superuser().await.expect("su");
    let rows = su
        .query(
            "SELECT c.relname, c.relrowsecurity FROM pg_class c
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            &[],
        )
        .await
        .expect("catalog");
    assert!(rows.len() >= 7, "expected the tenant tables, found {}", rows.len());
    for row in rows {
        let (name, secured): (String, bool) = (row.get(0), row.get(1));
        assert!(secured, "{name} holds tenant rows without row-level security");
    }
}

#[tokio::test]
async fn a_row_altered_behind_the_service_is_detected_at_its_seq() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    let batch: Vec<Value> = (0..10).map(|i| event("file.read", &format!("u{i}"))).collect();
    ingest(&mut store, t, Request::Batch(&batch), None).await.expect("append");

    let su = db.superuser().await.expect("su");
    // A superuser bypasses the append-only trigger and rewrites one event's content.
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE events SET content = replace(content, '\"u6\"', '\"mallory\"') WHERE tenant_id = '{t}' AND seq = 6;"
    ))
    .await
    .expect("tamper");
    let report = verify_range(&mut store, t, 0, None, None).await.expect("verify");
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(6));
    assert_eq!(report.fault, Some(FaultKind::ContentModified));
    assert_eq!(report.verified, 6);
}

#[tokio::test]
async fn rewritten_skeleton_and_deleted_rows_are_detected() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    let batch: Vec<Value> = (0..8).map(|i| event("a", &format!("u{i}"))).collect();
    ingest(&mut store, t, Request::Batch(&batch), None).await.expect("append");
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE chain_entries SET received_at = received_at + interval '1 second' WHERE tenant_id = '{t}' AND seq = 2;"
    ))
    .await
    .expect("tamper");
    let r = verify_range(&mut store, t, 0, None, None).await.expect("verify");
    assert_eq!((r.first_bad_seq, r.fault), (Some(2), Some(FaultKind::LeafHashMismatch)));

    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE chain_entries SET received_at = received_at - interval '1 second' WHERE tenant_id = '{t}' AND seq = 2;
         DELETE FROM chain_entries WHERE tenant_id = '{t}' AND seq = 5;"
    ))
    .await
    .expect("delete");
    let r = verify_range(&mut store, t, 0, None, None).await.expect("verify");
    assert_eq!((r.first_bad_seq, r.fault), (Some(5), Some(FaultKind::SeqOutOfOrder { found: 6 })));
}

#[tokio::test]
async fn an_inserted_row_and_two_swapped_rows_are_detected_at_their_seq() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let su = db.superuser().await.expect("su");

    // Inserted: seqs from 3 on move up by one and a forged row (a copy of seq 2 under a new id)
    // takes seq 3, with the skeleton of seq 2.
    let t = store.create_tenant("t").await.expect("t");
    let batch: Vec<Value> = (0..6).map(|i| event("a", &format!("u{i}"))).collect();
    ingest(&mut store, t, Request::Batch(&batch), None).await.expect("append");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE chain_entries SET seq = seq + 100 WHERE tenant_id = '{t}' AND seq >= 3;
         UPDATE chain_entries SET seq = seq - 99 WHERE tenant_id = '{t}' AND seq >= 100;
         UPDATE events SET seq = seq + 100 WHERE tenant_id = '{t}' AND seq >= 3;
         UPDATE events SET seq = seq - 99 WHERE tenant_id = '{t}' AND seq >= 100;
         INSERT INTO chain_entries (tenant_id, seq, event_id, received_at, content_digest, leaf_hash, chain_hash)
              SELECT tenant_id, 3, gen_random_uuid(), received_at, content_digest, leaf_hash, chain_hash
                FROM chain_entries WHERE tenant_id = '{t}' AND seq = 2;
         INSERT INTO events SELECT tenant_id, 3, received_at, gen_random_uuid(), occurred_at, action, actor_id,
                resource_type, resource_id, outcome, severity, source, content, salt, erased_at
                FROM events WHERE tenant_id = '{t}' AND seq = 2;
         UPDATE chain_heads SET size = 7 WHERE tenant_id = '{t}';"
    ))
    .await
    .expect("insert");
    let r = verify_range(&mut store, t, 0, None, None).await.expect("verify");
    assert!(!r.ok);
    assert_eq!((r.first_bad_seq, r.fault.clone()), (Some(3), Some(FaultKind::LeafHashMismatch)), "{r:?}");

    // Swapped: seqs 3 and 4 trade places, skeleton and content together.
    let u = store.create_tenant("u").await.expect("u");
    ingest(&mut store, u, Request::Batch(&batch), None).await.expect("append");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE chain_entries SET seq = CASE seq WHEN 3 THEN 1004 ELSE 1003 END WHERE tenant_id = '{u}' AND seq IN (3, 4);
         UPDATE chain_entries SET seq = seq - 1000 WHERE tenant_id = '{u}' AND seq >= 1000;
         UPDATE events SET seq = CASE seq WHEN 3 THEN 1004 ELSE 1003 END WHERE tenant_id = '{u}' AND seq IN (3, 4);
         UPDATE events SET seq = seq - 1000 WHERE tenant_id = '{u}' AND seq >= 1000;"
    ))
    .await
    .expect("swap");
    let r = verify_range(&mut store, u, 0, None, None).await.expect("verify");
    assert!(!r.ok);
    assert_eq!((r.first_bad_seq, r.fault.clone()), (Some(3), Some(FaultKind::LeafHashMismatch)), "{r:?}");
}

#[tokio::test]
async fn service_role_cannot_update_or_delete_and_owner_hits_the_trigger() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    ingest(&mut store, t, Request::One(&event("a", "u")), None).await.expect("append");
    let app = db.app_client().await.expect("app");
    app.execute("SELECT set_config('app.tenant_id', $1, false)", &[&t.to_string()]).await.expect("set");
    for sql in [
        "UPDATE events SET action = 'x'",
        "DELETE FROM events",
        "UPDATE chain_entries SET seq = seq + 1",
        "DELETE FROM chain_entries",
        "DELETE FROM merkle_nodes",
        "TRUNCATE events",
        "DROP TABLE events",
    ] {
        let err = app.batch_execute(sql).await.expect_err(sql);
        let msg = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
        assert!(msg.contains("permission denied") || msg.contains("must be owner"), "{sql}: {msg}");
    }
    // Even the schema owner is stopped by the append-only triggers.
    let su = db.superuser().await.expect("su");
    for sql in ["UPDATE events SET action = 'x'", "DELETE FROM chain_entries", "TRUNCATE chain_entries"] {
        let err = su.batch_execute(sql).await.expect_err(sql);
        let msg = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
        assert!(msg.contains("append-only"), "{sql}: {msg}");
    }
}

#[tokio::test]
async fn rejected_input_writes_nothing() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    let mut batch: Vec<Value> = (0..5).map(|i| event("a", &format!("u{i}"))).collect();
    batch[3] = json!({"action": "a", "actor": {"id": "u"}, "outcome": "maybe"});
    let err = ingest(&mut store, t, Request::Batch(&batch), None).await.expect_err("invalid");
    match err {
        IngestError::Invalid(v) => assert_eq!(v.field, "events[3].outcome"),
        other => panic!("unexpected {other:?}"),
    }
    let too_many: Vec<Value> = (0..1001).map(|_| event("a", "u")).collect();
    assert!(matches!(ingest(&mut store, t, Request::Batch(&too_many), None).await, Err(IngestError::Invalid(_))));
    assert!(matches!(ingest(&mut store, t, Request::Batch(&[]), None).await, Err(IngestError::Invalid(_))));
    let body_tenant = json!({"action": "a", "actor": {"id": "u"}, "tenant_id": Uuid::now_v7().to_string()});
    assert!(matches!(ingest(&mut store, t, Request::One(&body_tenant), None).await, Err(IngestError::Invalid(_))));
    for table in ["events", "chain_entries", "merkle_nodes", "outbox", "idempotency_keys"] {
        assert_eq!(count(&db, table).await, 0, "{table}");
    }
    assert_eq!(store.tree_head(t).await.expect("head").size, 0);
    // An unknown tenant is an error, not a new chain.
    assert!(matches!(
        ingest(&mut store, Uuid::now_v7(), Request::One(&event("a", "u")), None).await,
        Err(IngestError::Store(StoreError::UnknownTenant))
    ));
}

#[tokio::test]
async fn full_batch_of_1000_is_appended_in_order() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    let batch: Vec<Value> = (0..1000).map(|i| event("bulk.import", &format!("u{i}"))).collect();
    let r = ingest(&mut store, t, Request::Batch(&batch), None).await.expect("append");
    assert_eq!(r.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (0..1000).collect::<Vec<_>>());
    let stored = store.get_entry(t, r.entries[417].id).await.expect("get");
    assert!(stored.content.expect("content").contains("\"u417\""));
    assert!(verify_range(&mut store, t, 0, None, None).await.expect("verify").ok);
    assert_eq!(count(&db, "outbox").await, 1, "one outbox row per append");
}

#[tokio::test]
async fn idempotent_retry_returns_the_original_and_writes_nothing() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    let batch = vec![event("a", "u1"), event("a", "u2")];
    let first = ingest(&mut store, t, Request::Batch(&batch), Some("key-1")).await.expect("first");
    assert!(!first.replayed);
    let again = ingest(&mut store, t, Request::Batch(&batch), Some("key-1")).await.expect("retry");
    assert!(again.replayed);
    assert_eq!(again.entries, first.entries);
    assert_eq!(count(&db, "chain_entries").await, 2);
    let different = vec![event("a", "u1"), event("a", "u3")];
    assert!(matches!(
        ingest(&mut store, t, Request::Batch(&different), Some("key-1")).await,
        Err(IngestError::Store(StoreError::IdempotencyConflict))
    ));
    // Keys are per tenant: another tenant may use the same key.
    let other = store.create_tenant("o").await.expect("o");
    let o = ingest(&mut store, other, Request::Batch(&batch), Some("key-1")).await.expect("other tenant");
    assert!(!o.replayed);
    assert_eq!(count(&db, "chain_entries").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_key_append_once() {
    let db = TestDb::new().await.expect("db");
    let t = db.store().await.expect("store").create_tenant("t").await.expect("t");
    let tasks = (0..8).map(|_| {
        let url = db.app_url();
        tokio::spawn(async move {
            let mut store = shared::store::Store::connect(&url).await.expect("connect");
            ingest(&mut store, t, Request::One(&event("pay", "u")), Some("same")).await.expect("append")
        })
    });
    let results: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert!(results.iter().all(|r| r.entries == results[0].entries));
    assert_eq!(count(&db, "chain_entries").await, 1);
}

#[tokio::test]
async fn stored_times_and_hashes_round_trip_exactly() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    let ev = json!({"action": "a", "actor": {"id": "u"}, "occurred_at": "2026-01-02T03:04:05.123456789+01:00"});
    let r = ingest(&mut store, t, Request::One(&ev), None).await.expect("append");
    let stored = store.get_entry(t, r.entries[0].id).await.expect("get");
    // What comes back from PostgreSQL hashes to what was committed: microsecond UTC times.
    assert_eq!(stored.entry.received_at, r.entries[0].received_at);
    assert_eq!(stored.entry.leaf_hash(), r.entries[0].leaf_hash);
    assert_eq!(stored.leaf_hash, r.entries[0].leaf_hash);
    assert!(stored.content.expect("content").contains(r#""occurred_at":"2026-01-02T02:04:05.123456Z""#));
}

#[tokio::test]
async fn migrating_twice_applies_nothing() {
    let db = TestDb::new().await.expect("db");
    let mut su = db.superuser().await.expect("su");
    let applied = shared::store::migrate::migrate(&mut su).await.expect("again");
    assert!(applied.is_empty(), "{applied:?}");
}

#[tokio::test]
async fn a_write_failing_mid_pipeline_commits_nothing_and_the_connection_stays_usable() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    ingest(&mut store, t, Request::One(&event("a", "u0")), None).await.expect("first");
    // Someone behind the service plants a skeleton row at the next seq: the append's skeleton
    // insert then violates the primary key while the content insert after it was already sent.
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "INSERT INTO chain_entries SELECT tenant_id, 1, gen_random_uuid(), received_at, content_digest, leaf_hash, chain_hash
           FROM chain_entries WHERE tenant_id = '{t}' AND seq = 0"
    ))
    .await
    .expect("plant");
    let err =
        ingest(&mut store, t, Request::Batch(&[event("a", "u1"), event("a", "u2")]), None).await.expect_err("fork");
    match err {
        IngestError::Store(StoreError::Database(e)) => {
            assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION), "{e}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(count(&db, "events").await, 1, "no content row of the failed append survives");
    assert_eq!(count(&db, "outbox").await, 1);
    // The same connection works on: the failed transaction did not linger.
    assert_eq!(store.tree_head(t).await.expect("head").size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_cancelled_while_waiting_for_the_lock_leaves_nothing_behind() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    // Another session holds the tenant's head lock.
    let mut su = db.superuser().await.expect("su");
    let holder = su.transaction().await.expect("tx");
    holder.execute("SELECT 1 FROM chain_heads WHERE tenant_id = $1 FOR UPDATE", &[&t]).await.expect("lock");
    let ev = event("a", "u");
    let cancelled =
        tokio::time::timeout(std::time::Duration::from_millis(300), ingest(&mut store, t, Request::One(&ev), None))
            .await;
    assert!(cancelled.is_err(), "the append waited for the lock and was cancelled");
    holder.rollback().await.expect("release");
    // The same store rolls the abandoned transaction back before its next append.
    let r = ingest(&mut store, t, Request::One(&ev), None).await.expect("append after cancel");
    assert_eq!(r.entries[0].seq, 0);
    assert_eq!(count(&db, "chain_entries").await, 1);
    assert!(verify_range(&mut store, t, 0, None, None).await.expect("verify").ok);
}
