//! Partition maintenance on real PostgreSQL and the local AWS endpoint's S3: the service role
//! creates missing future partitions and nothing more; the maintenance role archives partitions
//! older than the retention to S3 and drops them, and the chain still verifies while each archive
//! verifies offline against it. Legal holds keep partitions.

mod support;

use chrono::{TimeZone, Utc};
use flate2::read::GzDecoder;
use serde_json::{json, Value};
use shared::aws::archives::ArchiveStore;
use shared::chain::archive::{verify_archive, ArchiveError, ArchiveLine};
use shared::chain::hash::{sha256, Hash};
use shared::chain::verify::FaultKind;
use shared::service::checkpoint::run_checkpointer;
use shared::service::ingest::{ingest, Request};
use shared::service::partitions::run_partition_maintenance;
use shared::service::pruning::prune;
use shared::service::verify::{verify_range, CheckpointKey};
use shared::signer::{CheckpointSigner, LocalSigner};
use shared::store::connect::DbConfig;
use shared::store::pool::StorePool;
use shared::store::Store;
use std::io::Read;
use support::{backdate_history, event, TestDb};
use uuid::Uuid;

async fn archive_bucket() -> ArchiveStore {
    let (sdk, _) = support::aws().await.expect("aws");
    let bucket = format!("archives-{}", Uuid::new_v4().simple());
    localstack::bootstrap::ensure_bucket(&sdk, &bucket).await.expect("bucket");
    ArchiveStore::new(&sdk, &bucket)
}

async fn append(store: &mut Store, tenant: Uuid, n: usize) {
    let batch: Vec<Value> = (0..n).map(|i| event("doc.read", &format!("u{i}"))).collect();
    ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
}

/// A tenant whose first `old` entries were received in January 2024, then `new` entries now.
async fn tenant_with_old_entries(db: &TestDb, store: &mut Store, name: &str, old: usize, new: usize) -> Uuid {
    let su = db.superuser().await.expect("su");
    su.batch_execute("SELECT audit_ensure_event_partitions('2024-01-01', 1)").await.expect("old partition");
    let t = store.create_tenant(name).await.expect("tenant");
    append(store, t, old).await;
    backdate_history(db, t, Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap()).await;
    append(store, t, new).await;
    t
}

fn lines(gz: &[u8]) -> Vec<ArchiveLine> {
    let mut text = String::new();
    GzDecoder::new(gz).read_to_string(&mut text).expect("gunzip");
    text.lines().map(|l| serde_json::from_str(l).expect("line")).collect()
}

fn hash(v: &Value) -> Hash {
    Hash::from_hex(v.as_str().expect("hex")).expect("hash")
}

#[tokio::test]
async fn the_service_role_recreates_missing_future_partitions_but_cannot_drop_one() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    let future: String = su
        .query_one(
            "SELECT format('events_%s', to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months', 'YYYY_MM'))",
            &[],
        )
        .await?
        .get(0);
    su.batch_execute(&format!("DROP TABLE {future}")).await?;

    let pool = StorePool::new(DbConfig::plain(db.app_url()), 1);
    let maintenance = StorePool::new(DbConfig::plain(db.maintenance_url()), 1);
    let archives = archive_bucket().await;
    let run = run_partition_maintenance(&pool, &maintenance, &archives, 24).await?;
    assert_eq!(run.created, 1);
    let exists: bool = su.query_one("SELECT to_regclass($1) IS NOT NULL", &[&future]).await?.get(0);
    assert!(exists, "{future} was not recreated");
    // Nothing missing: nothing created.
    assert_eq!(run_partition_maintenance(&pool, &maintenance, &archives, 24).await?.created, 0);

    let app = db.app_client().await?;
    assert!(app.batch_execute(&format!("DROP TABLE {future}")).await.is_err(), "the service role dropped a partition");
    assert!(
        app.batch_execute("SELECT audit_ensure_event_partitions('2000-01-01', 1)").await.is_ok(),
        "creating partitions is the one schema change the service role may make"
    );
    Ok(())
}

#[tokio::test]
async fn an_old_partition_is_archived_then_dropped_and_everything_still_verifies() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let mut maintenance = Store::connect(&db.maintenance_url()).await.expect("maintenance");
    let archives = archive_bucket().await;
    let t = tenant_with_old_entries(&db, &mut store, "t", 3, 2).await;
    let signer = LocalSigner::random("audit.example.com").expect("signer");
    run_checkpointer(&mut store, &signer, "audit.example.com", 10).await.expect("checkpoint");

    assert_eq!(support::index_text(&mut store, t).await.expect("words"), 5);

    let cutoff = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    let run = prune(&mut maintenance, &archives, cutoff).await.expect("prune");
    assert_eq!((run.dropped, run.held, run.archived), (1, 0, 3), "{run:?}");
    let su = db.superuser().await.expect("su");
    let gone: bool = su.query_one("SELECT to_regclass('events_2024_01') IS NULL", &[]).await.expect("q").get(0);
    assert!(gone, "the partition was dropped");
    // Its words went with it: only the two entries still stored are searchable.
    let words: Vec<i64> = su
        .query("SELECT seq FROM event_text WHERE tenant_id = $1 ORDER BY seq", &[&t])
        .await
        .expect("words")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(words, [3, 4]);
    let recorded: Value = su
        .query_one("SELECT archives FROM pruned_partitions WHERE name = 'events_2024_01'", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(recorded[0]["tenant_id"], json!(t));

    // The chain still verifies, against its signed checkpoint; pruned entries read as erased.
    let key = CheckpointKey::new(signer.key_name(), signer.public_key_der());
    let report = verify_range(&mut store, t, 0, None, Some(key)).await.expect("verify");
    assert!(report.ok && report.erased == 3 && report.verified == 5, "{report:?}");

    // The archive verifies offline against the chain: its manifest's hashes are the log's own.
    let (data_key, manifest_key) = ArchiveStore::keys(t, "events_2024_01");
    let manifest: Value = serde_json::from_slice(&archives.get(&manifest_key).await.expect("manifest")).expect("json");
    let data = archives.get(&data_key).await.expect("data");
    assert_eq!(hash(&manifest["sha256"]), sha256(&[&data]));
    assert_eq!(
        (manifest["first_seq"].clone(), manifest["last_seq"].clone(), manifest["count"].clone()),
        (json!(0), json!(2), json!(3))
    );
    assert_eq!(hash(&manifest["last_chain_hash"]), store.chain_hash_before(t, 3).await.expect("chain"));
    assert!(manifest["checkpoint"]["tree_size"].as_u64().expect("covering checkpoint") > 2);
    let archived = lines(&data);
    assert!(archived.iter().all(|l| l.content.is_some()), "the archive holds the content");
    let (before, last) = (hash(&manifest["chain_hash_before"]), hash(&manifest["last_chain_hash"]));
    let verified = verify_archive(t, &archived, before, last).expect("archive verifies");
    assert_eq!(verified.count, 3);

    // One changed byte of content, a reordering, or a dropped last line is reported.
    let mut changed = archived.clone();
    changed[1].content = changed[1].content.as_ref().map(|c| c.replace("u1", "u9"));
    let err = verify_archive(t, &changed, before, last).expect_err("changed content");
    assert!(matches!(err, ArchiveError::Fault(ref f) if f.seq == 1 && f.kind == FaultKind::ContentModified), "{err:?}");
    let mut swapped = archived.clone();
    swapped.swap(0, 1);
    assert!(verify_archive(t, &swapped, before, last).is_err());
    let short = &archived[..2];
    assert!(matches!(verify_archive(t, short, before, last), Err(ArchiveError::EndMismatch { .. })));
}

#[tokio::test]
async fn a_legal_hold_keeps_a_partition_and_the_database_refuses_unsafe_drops() {
    let db = TestDb::new().await.expect("db");
    let mut store = db.store().await.expect("store");
    let mut maintenance = Store::connect(&db.maintenance_url()).await.expect("maintenance");
    let archives = archive_bucket().await;
    let t = tenant_with_old_entries(&db, &mut store, "t", 2, 1).await;
    let su = db.superuser().await.expect("su");
    su.execute("UPDATE tenants SET legal_hold_until = now() + interval '1 year' WHERE tenant_id = $1", &[&t])
        .await
        .expect("hold");
    let cutoff = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    let run = prune(&mut maintenance, &archives, cutoff).await.expect("prune");
    assert_eq!((run.dropped, run.held), (0, 1), "{run:?}");
    let kept: bool = su.query_one("SELECT to_regclass('events_2024_01') IS NOT NULL", &[]).await.expect("q").get(0);
    assert!(kept);

    // The database itself refuses: a held partition, an unarchived tenant, a cutoff into this
    // month; and the service role may not drop at all.
    assert!(maintenance.drop_event_partition("events_2024_01", cutoff, &json!([{ "tenant_id": t }])).await.is_err());
    su.execute("UPDATE tenants SET legal_hold_until = NULL WHERE tenant_id = $1", &[&t]).await.expect("release");
    assert!(maintenance.drop_event_partition("events_2024_01", cutoff, &json!([])).await.is_err(), "not archived");
    let this_month = Utc::now() + chrono::TimeDelta::days(40);
    assert!(maintenance
        .drop_event_partition("events_2024_01", this_month, &json!([{ "tenant_id": t }]))
        .await
        .is_err());
    let app = db.app_client().await.expect("app");
    let denied =
        app.batch_execute(&format!("SELECT audit_drop_event_partition('events_2024_01', '{cutoff}', '[]')")).await;
    assert!(denied.is_err());
    let kept: bool = su.query_one("SELECT to_regclass('events_2024_01') IS NOT NULL", &[]).await.expect("q").get(0);
    assert!(kept, "nothing was dropped");
}
