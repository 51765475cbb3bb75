//! The service-wide log of tenant heads and its S3 anchor, over a real PostgreSQL and the local
//! AWS endpoint's S3 (a bucket with Object Lock per test): every signed tenant head lands in the
//! global log, the global log's checkpoint is anchored and cannot be deleted, and history removed
//! from the database is found through the global log or the anchor even when the database's own
//! checkpoints were removed with it.

mod support;

use serde_json::Value;
use shared::aws::anchors::AnchorStore;
use shared::chain::checkpoint;
use shared::chain::hash::sha256;
use shared::chain::verify::FaultKind;
use shared::service::checkpoint::{anchor_latest, checkpoint_tenant, run_checkpointer};
use shared::service::global_log::{latest_head, GLOBAL_LOG, HEAD_ACTION};
use shared::service::ingest::{ingest, Request};
use shared::service::verify::{verify_anchor, verify_range, CheckpointKey};
use shared::signer::{CheckpointSigner, LocalSigner};
use shared::store::Store;
use support::{event, rewrite_history, TestDb};
use uuid::Uuid;

const PREFIX: &str = "audit.example.com/tenants";
const KEY_NAME: &str = "audit.example.com";

async fn append(store: &mut Store, tenant: Uuid, n: usize) {
    let batch: Vec<Value> = (0..n).map(|i| event("a.b", &format!("u{i}"))).collect();
    ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
}

/// A fresh Object Lock bucket, so tests running at once never see each other's anchors.
async fn locked_bucket() -> (AnchorStore, aws_sdk_s3::Client) {
    let (sdk, _) = support::aws().await.expect("aws");
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let bucket = format!("anchors-{}", Uuid::new_v4().simple());
    localstack::bootstrap::ensure_locked_bucket(&sdk, &bucket).await.expect("bucket");
    (AnchorStore::new(&sdk, &bucket, 1), s3)
}

fn key(signer: &LocalSigner) -> CheckpointKey<'_> {
    CheckpointKey::new(KEY_NAME, signer.public_key_der())
}

#[tokio::test]
async fn every_signed_head_is_recorded_and_the_global_checkpoint_is_anchored_under_lock() {
    let db = TestDb::new().await.expect("db");
    let signer = LocalSigner::random(KEY_NAME).expect("signer");
    let (anchors, s3) = locked_bucket().await;
    let mut store = db.store().await.expect("store");
    let a = store.create_tenant("a").await.expect("a");
    let b = store.create_tenant("b").await.expect("b");
    append(&mut store, a, 5).await;
    append(&mut store, b, 2).await;

    let run = run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    assert_eq!((run.signed, run.heads_logged, run.failed.len()), (2, 2, 0), "{run:?}");
    assert_eq!(run.global_size, Some(2), "one leaf per signed head");

    // The head names the tenant, its size and root, and the exact note signed.
    let cp = store.latest_checkpoint(a).await.expect("read").expect("signed");
    let (entry, head) = latest_head(&mut store, a).await.expect("head").expect("recorded");
    assert_eq!((head.tenant, head.tree_size, head.root), (a, 5, cp.root));
    assert_eq!(head.note_sha256, sha256(&[cp.note.as_bytes()]));
    let content: Value = serde_json::from_str(entry.content.as_deref().expect("content")).expect("json");
    assert_eq!(content["action"], HEAD_ACTION);

    // The global log verifies like any chain, against its own signed checkpoint.
    let global = verify_range(&mut store, GLOBAL_LOG, 0, None, Some(key(&signer))).await.expect("verify");
    assert!(global.ok && global.verified == 2 && global.checkpoint_size == Some(2), "{global:?}");

    // Anchored once, byte for byte; anchoring again writes nothing new.
    assert_eq!(anchor_latest(&mut store, &anchors).await.expect("anchor"), Some(2));
    assert_eq!(anchor_latest(&mut store, &anchors).await.expect("anchor"), Some(2));
    let global_cp = store.latest_checkpoint(GLOBAL_LOG).await.expect("read").expect("signed");
    assert_eq!(anchors.get(2).await.expect("get").as_deref(), Some(global_cp.note.as_str()));
    let signed = checkpoint::verify(&global_cp.note, KEY_NAME, signer.public_key_der()).expect("global note verifies");
    assert_eq!(signed.origin, format!("{PREFIX}/{GLOBAL_LOG}"));
    assert_eq!(verify_anchor(&mut store, &anchors).await.expect("check"), None);

    // Compliance-mode retention: the anchored version cannot be deleted.
    let versions = s3.list_object_versions().bucket(anchors.bucket()).send().await.expect("versions");
    let versions = versions.versions();
    assert_eq!(versions.len(), 1, "anchoring twice wrote one object");
    let deleted = s3
        .delete_object()
        .bucket(anchors.bucket())
        .key(anchors.key(2))
        .version_id(versions[0].version_id().expect("version"))
        .send()
        .await;
    assert!(deleted.is_err(), "a locked anchor was deleted");

    // Unchanged trees add nothing.
    let again = run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    assert_eq!((again.signed, again.heads_logged, again.global_size), (0, 0, Some(2)), "{again:?}");
}

#[tokio::test]
async fn a_head_the_checkpointer_did_not_record_is_recorded_by_the_next_run() {
    let db = TestDb::new().await.expect("db");
    let signer = LocalSigner::random(KEY_NAME).expect("signer");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 3).await;
    // Signed and stored, then the run stopped before recording the head.
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("checkpoint");
    assert!(latest_head(&mut store, t).await.expect("head").is_none());

    let run = run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    assert_eq!((run.signed, run.heads_logged, run.global_size), (0, 1, Some(1)), "{run:?}");
    assert_eq!(latest_head(&mut store, t).await.expect("head").expect("recorded").1.tree_size, 3);
    let again = run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    assert_eq!(again.heads_logged, 0, "recorded once");
}

#[tokio::test]
async fn a_tail_deleted_with_its_checkpoints_is_found_through_the_global_log() {
    let db = TestDb::new().await.expect("db");
    let signer = LocalSigner::random(KEY_NAME).expect("signer");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 7).await;
    run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");

    // A database administrator removes seqs 5 and 6, the head and every checkpoint of t: what
    // is left is a consistent, shorter tree with no signed checkpoint to contradict it.
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         DELETE FROM events WHERE tenant_id = '{t}' AND seq >= 5;
         DELETE FROM chain_entries WHERE tenant_id = '{t}' AND seq >= 5;
         DELETE FROM checkpoints WHERE tenant_id = '{t}';
         UPDATE chain_heads SET size = 5, chain_hash = (SELECT chain_hash FROM chain_entries WHERE tenant_id = '{t}' AND seq = 4)
          WHERE tenant_id = '{t}';"
    ))
    .await
    .expect("truncate");
    let r = verify_range(&mut store, t, 0, None, Some(key(&signer))).await.expect("verify");
    assert!(!r.ok);
    assert_eq!((r.first_bad_seq, r.fault), (Some(5), Some(FaultKind::Truncated { expected_size: 7 })));
}

#[tokio::test]
async fn a_recomputed_history_without_its_checkpoints_is_caught_by_the_logged_head() {
    let db = TestDb::new().await.expect("db");
    let signer = LocalSigner::random(KEY_NAME).expect("signer");
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 6).await;
    run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    // Seq 2 is forged, every hash and node recomputed, and t's signed checkpoints removed: the
    // tenant's own rows hold nothing that disagrees any more.
    rewrite_history(&db, t, 2).await;
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "SET session_replication_role = replica; DELETE FROM checkpoints WHERE tenant_id = '{t}';"
    ))
    .await
    .expect("delete checkpoints");
    let r = verify_range(&mut store, t, 0, None, Some(key(&signer))).await.expect("verify");
    assert!(!r.ok);
    assert_eq!(
        (r.first_bad_seq, r.fault.clone()),
        (Some(6), Some(FaultKind::GlobalLogMismatch { tree_size: 6 })),
        "{r:?}"
    );
}

#[tokio::test]
async fn the_anchor_check_reports_removed_changed_and_missing_anchored_checkpoints() {
    let db = TestDb::new().await.expect("db");
    let signer = LocalSigner::random(KEY_NAME).expect("signer");
    let (anchors, _) = locked_bucket().await;
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 2).await;
    run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    anchor_latest(&mut store, &anchors).await.expect("anchor");
    append(&mut store, t, 2).await;
    run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    anchor_latest(&mut store, &anchors).await.expect("anchor");
    assert_eq!(verify_anchor(&mut store, &anchors).await.expect("check"), None);
    let su = db.superuser().await.expect("su");

    // The stored note differs from the anchored one.
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE checkpoints SET note = note || ' ' WHERE tenant_id = '{GLOBAL_LOG}' AND tree_size = 2;"
    ))
    .await
    .expect("tamper");
    let fault = verify_anchor(&mut store, &anchors).await.expect("check").expect("fault");
    assert!(matches!(fault.kind, FaultKind::AnchorMismatch { checkpoint_size: 2, .. }), "{fault:?}");

    // The latest global checkpoint is removed from the database: S3 still has it.
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         DELETE FROM checkpoints WHERE tenant_id = '{GLOBAL_LOG}' AND tree_size = 2;"
    ))
    .await
    .expect("delete");
    let fault = verify_anchor(&mut store, &anchors).await.expect("check").expect("fault");
    assert_eq!(fault.seq, 1);
    assert!(matches!(fault.kind, FaultKind::AnchorMismatch { checkpoint_size: 2, .. }), "{fault:?}");

    // A global checkpoint signed long ago was never anchored.
    let db2 = TestDb::new().await.expect("db");
    let (fresh, _) = locked_bucket().await;
    let mut store2 = db2.store().await.expect("store");
    let u = store2.create_tenant("u").await.expect("u");
    append(&mut store2, u, 1).await;
    run_checkpointer(&mut store2, &signer, PREFIX, 100).await.expect("run");
    assert_eq!(verify_anchor(&mut store2, &fresh).await.expect("check"), None, "not due yet");
    db2.superuser()
        .await
        .expect("su")
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             UPDATE checkpoints SET signed_at = now() - interval '1 hour' WHERE tenant_id = '{GLOBAL_LOG}';"
        ))
        .await
        .expect("age");
    let fault = verify_anchor(&mut store2, &fresh).await.expect("check").expect("fault");
    assert!(
        matches!(fault.kind, FaultKind::AnchorMismatch { checkpoint_size: 1, ref reason } if reason.contains("no anchor"))
    );
}
