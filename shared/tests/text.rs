//! PostgreSQL's full text, written after commit (migration V11), on real PostgreSQL: an append
//! writes no words, the indexer's write finds them, redelivery is harmless, a message naming
//! entries that do not exist is not acknowledged, erased and pruned content leaves the search,
//! an erasure racing the indexer never leaves its words behind, and an upgrade from the schema
//! before V11 moves the words of stored events.

mod support;

use serde_json::{json, Value};
use shared::service::admin::Actor;
use shared::service::erasure::erase;
use shared::service::ingest::{ingest, Request};
use shared::service::query::{list_events, EventQuery};
use shared::store::erasure::ErasureTarget;
use shared::store::Store;
use std::time::Duration;
use support::{index_text, TestDb};
use uuid::Uuid;

const K1: Actor<'static> = Actor { key_id: "k1" };

async fn append(store: &mut Store, tenant: Uuid, notes: &[&str]) -> Vec<(u64, Uuid)> {
    let batch: Vec<Value> = notes
        .iter()
        .map(|n| json!({ "action": "doc.edit", "actor": { "id": "ada" }, "metadata": { "note": n } }))
        .collect();
    let result = ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
    result.entries.iter().map(|e| (e.seq, e.id)).collect()
}

/// The seqs `q` finds, oldest first.
async fn found(store: &mut Store, tenant: Uuid, q: &str) -> Vec<u64> {
    let query = EventQuery::from_params([("q", q), ("order", "asc")]).expect("query");
    list_events(store, tenant, &query).await.expect("list").entries.iter().map(|e| e.entry.seq).collect()
}

async fn text_rows(db: &TestDb, tenant: Uuid) -> i64 {
    let su = db.superuser().await.expect("su");
    su.query_one("SELECT count(*) FROM event_text WHERE tenant_id = $1", &[&tenant]).await.expect("count").get(0)
}

#[tokio::test]
async fn words_are_written_after_commit_once_and_only_for_entries_that_exist() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    let appended = append(&mut store, t, &["quarterly budget", "holiday schedule"]).await;
    assert_eq!(text_rows(&db, t).await, 0, "the append wrote words");
    assert!(found(&mut store, t, "budget").await.is_empty());

    let size = store.tree_head(t).await?.size;
    let run = store.index_text(t, &[(0, size)]).await?;
    assert_eq!((run.written, run.present.clone()), (size, vec![size]), "{run:?}");
    assert_eq!(found(&mut store, t, "budget").await, [appended[0].0]);
    assert_eq!(found(&mut store, t, "holiday or budget").await, [appended[0].0, appended[1].0]);

    // Redelivered: nothing written twice. Naming entries past the head: reported short.
    let again = store.index_text(t, &[(appended[1].0, size), (size - 1, size + 3)]).await?;
    assert_eq!((again.written, again.present), (0, vec![1, 1]));

    // Another tenant's words are neither written nor found through this tenant.
    let other = store.create_tenant("other").await?;
    append(&mut store, other, &["budget of the other tenant"]).await;
    assert_eq!(store.index_text(t, &[(size, size + 2)]).await?.written, 0);
    index_text(&mut store, other).await?;
    assert_eq!(found(&mut store, t, "budget").await, [appended[0].0]);

    // The service role cannot write or read words but through the two functions.
    let app = db.app_client().await?;
    app.batch_execute(&format!("BEGIN; SELECT set_config('app.tenant_id', '{t}', true)")).await?;
    let forged = app
        .execute("INSERT INTO event_text (tenant_id, seq, words) VALUES ($1, 99, to_tsvector('simple', 'x'))", &[&t])
        .await;
    assert!(forged.is_err(), "wrote words directly");
    app.batch_execute("ROLLBACK").await?;
    assert!(app.query("SELECT * FROM event_text", &[]).await.is_err(), "read words directly");
    Ok(())
}

#[tokio::test]
async fn erased_content_leaves_the_search() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let mut maintenance = Store::connect(&db.maintenance_url()).await?;
    let t = store.create_tenant("t").await?;
    let appended = append(&mut store, t, &["secret merger", "secret picnic"]).await;
    index_text(&mut store, t).await?;
    assert_eq!(found(&mut store, t, "secret").await.len(), 2);

    erase(&mut maintenance, t, &ErasureTarget::Event(appended[0].1), K1, None).await?;
    assert_eq!(found(&mut store, t, "secret").await, [appended[1].0]);
    assert!(found(&mut store, t, "merger").await.is_empty());
    // Indexing the erased entry again writes nothing.
    assert_eq!(store.index_text(t, &[(appended[0].0, appended[0].0 + 1)]).await?.written, 0);
    assert!(found(&mut store, t, "merger").await.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_erasure_committing_while_the_indexer_reads_leaves_no_words() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let t = store.create_tenant("t").await?;
    let appended = append(&mut store, t, &["secret merger"]).await;
    let (seq, id) = appended[0];

    // An erasure holds the row (as `audit_erase` does, uncommitted) while the indexer reads it.
    let (maintenance, conn) = tokio_postgres::connect(&db.maintenance_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    maintenance.batch_execute(&format!("BEGIN; SELECT set_config('app.tenant_id', '{t}', true)")).await?;
    let erased: i64 = maintenance.query_one("SELECT audit_erase($1, $2, NULL, NULL)", &[&t, &id]).await?.get(0);
    assert_eq!(erased, 1);

    let indexer = tokio::spawn(async move { store.index_text(t, &[(seq, seq + 1)]).await.map(|run| (run, store)) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!indexer.is_finished(), "the indexer read a row an uncommitted erasure holds");
    maintenance.batch_execute("COMMIT").await?;
    let (run, mut store) = indexer.await??;
    assert_eq!((run.written, run.present), (0, vec![1]), "the indexer wrote the erased words");
    assert_eq!(text_rows(&db, t).await, 0);
    assert!(found(&mut store, t, "merger").await.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_upgrade_from_the_schema_before_v11_moves_the_words_of_stored_events() -> anyhow::Result<()> {
    // The roles are the cluster's: let the template's migration create them first.
    TestDb::new().await?;
    let pg = support::postgres();
    let name = format!("upgrade_{}", std::process::id());
    pg.connect_superuser("postgres").await?.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let mut owner = pg.connect_superuser(&name).await?;
    shared::store::migrate::migrate_to(&mut owner, 10).await?;
    shared::store::migrate::ensure_service_login(&owner, support::APP_USER).await?;
    let expression_index: bool = owner.query_one("SELECT to_regclass('events_text') IS NOT NULL", &[]).await?.get(0);
    assert!(expression_index, "V10 has the expression index");

    let mut store = Store::connect(&pg.url(support::APP_USER, &name)).await?;
    let t = store.create_tenant("t").await?;
    let appended = append(&mut store, t, &["stored before the upgrade", "another note"]).await;
    let head = store.tree_head(t).await?;
    let proof = store.inclusion_proof(t, appended[0].0, head.size).await?;

    let applied = shared::store::migrate::migrate(&mut owner).await?;
    assert!(applied.first().is_some_and(|m| m.contains("V11")), "{applied:?}");
    let gone: bool = owner.query_one("SELECT to_regclass('events_text') IS NULL", &[]).await?.get(0);
    assert!(gone, "the expression index is still there");
    // Searchable without any indexer run, and the tree is untouched.
    let mut store = Store::connect(&pg.url(support::APP_USER, &name)).await?;
    assert_eq!(found(&mut store, t, "upgrade").await, [appended[0].0]);
    assert_eq!(store.tree_head(t).await?, head);
    assert_eq!(store.inclusion_proof(t, appended[0].0, head.size).await?, proof);
    // Appends after the upgrade wait for the indexer, as on a fresh schema.
    append(&mut store, t, &["after the upgrade"]).await;
    assert_eq!(found(&mut store, t, "upgrade").await, [appended[0].0]);
    Ok(())
}
