//! Signing checkpoints with a KMS key on the local AWS endpoint over a real PostgreSQL: only grown
//! trees are signed, every note verifies with the KMS public key alone, and a tree that is not an
//! extension of the last signed one is never signed.

mod support;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use localstack::moto::Moto;
use serde_json::Value;
use shared::aws::kms::KmsSigner;
use shared::chain::checkpoint;
use shared::chain::merkle;
use shared::chain::verify::FaultKind;
use shared::service::checkpoint::{
    checkpoint_tenant, run_checkpointer, tenant_origin, CheckpointOutcome, CheckpointingError,
};
use shared::service::ingest::{ingest, Request};
use shared::service::verify::{verify_incrementally, verify_range, CheckpointKey};
use support::{event, rewrite_history, TestDb};

const PREFIX: &str = "audit.example.com/tenants";
const KEY_NAME: &str = "audit.example.com";

async fn kms_signer() -> (KmsSigner, Vec<u8>) {
    let client = aws_sdk_kms::Client::new(&Moto::shared().expect("moto").sdk_config());
    let key = client
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("CreateKey");
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    let public = client.get_public_key().key_id(&key_id).send().await.expect("GetPublicKey");
    let der = public.public_key().expect("public key").as_ref().to_vec();
    (KmsSigner::new(client, key_id, KEY_NAME).await.expect("signer"), der)
}

async fn append(store: &mut shared::store::Store, tenant: uuid::Uuid, n: usize) {
    let batch: Vec<Value> = (0..n).map(|i| event("a.b", &format!("u{i}"))).collect();
    ingest(store, tenant, Request::Batch(&batch), None).await.expect("append");
}

#[tokio::test]
async fn signs_grown_trees_only_and_every_note_verifies_with_the_public_key() {
    let db = TestDb::new().await.expect("db");
    let (signer, public_der) = kms_signer().await;
    let mut store = db.store().await.expect("store");
    let a = store.create_tenant("a").await.expect("a");
    let b = store.create_tenant("b").await.expect("b");
    let idle = store.create_tenant("idle").await.expect("idle");
    append(&mut store, a, 5).await;
    append(&mut store, b, 3).await;

    let run = run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    assert_eq!((run.signed, run.failed.len()), (2, 0), "{run:?}");
    assert!(store.latest_checkpoint(idle).await.expect("idle").is_none(), "an empty tree is not signed");

    let cp = store.latest_checkpoint(a).await.expect("read").expect("signed");
    let verified = checkpoint::verify(&cp.note, KEY_NAME, &public_der).expect("verifies with the KMS public key");
    assert_eq!(verified.origin, tenant_origin(PREFIX, a));
    assert_eq!((verified.size, verified.root), (5, store.root_at(a, 5).await.expect("root")));

    // Nothing grew: nothing to sign.
    let again = run_checkpointer(&mut store, &signer, PREFIX, 100).await.expect("run");
    assert_eq!((again.signed, again.unchanged, again.failed.len()), (0, 0, 0));

    // a grows: a new checkpoint, consistent with the old one.
    append(&mut store, a, 4).await;
    let outcome = checkpoint_tenant(&mut store, &signer, PREFIX, a).await.expect("sign");
    assert!(matches!(outcome, CheckpointOutcome::Signed { tree_size: 9, .. }), "{outcome:?}");
    let new = store.checkpoint_at(a, 9).await.expect("at 9");
    let old = store.checkpoint_at(a, 5).await.expect("at 5");
    let proof = store.consistency_proof(a, 5, 9).await.expect("proof");
    merkle::verify_consistency(5, 9, &old.root, &new.root, &proof).expect("the two signed roots are consistent");
    assert!(matches!(
        checkpoint_tenant(&mut store, &signer, PREFIX, a).await,
        Ok(CheckpointOutcome::Unchanged { tree_size: 9 })
    ));
}

#[tokio::test]
async fn refuses_to_sign_a_tree_whose_signed_history_was_rewritten() {
    let db = TestDb::new().await.expect("db");
    let (signer, _) = kms_signer().await;
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 8).await;
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("first checkpoint");
    append(&mut store, t, 2).await;

    // Someone with database access replaces a stored hash under the 8 signed leaves (the leaf
    // hash of seq 3, from which the subtree at level 3, index 0 is derived): every node is
    // present and proofs can be built, but the tree is no longer the one that was signed.
    let su = db.superuser().await.expect("su");
    let changed = su
        .execute("UPDATE chain_entries SET leaf_hash = sha256('forged') WHERE tenant_id = $1 AND seq = 3", &[&t])
        .await;
    assert!(changed.is_err(), "the append-only trigger refuses even the owner");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE chain_entries SET leaf_hash = sha256('forged') WHERE tenant_id = '{t}' AND seq = 3;"
    ))
    .await
    .expect("rewrite");
    let err = checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect_err("must refuse");
    assert!(matches!(err, CheckpointingError::NotAnExtension { signed_size: 8, size: 10, .. }), "{err}");
    assert!(store.checkpoint_at(t, 10).await.is_err(), "nothing was signed over the rewrite");
    let run = run_checkpointer(&mut store, &signer, PREFIX, 10).await.expect("run");
    assert_eq!((run.signed, run.failed.len()), (0, 1));
}

#[tokio::test]
async fn refuses_when_the_stored_checkpoint_no_longer_matches_its_note() {
    let db = TestDb::new().await.expect("db");
    let (signer, _) = kms_signer().await;
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 4).await;
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("first");
    append(&mut store, t, 1).await;
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE checkpoints SET root_hash = sha256('other') WHERE tenant_id = '{t}';"
    ))
    .await
    .expect("tamper");
    let err = checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect_err("must refuse");
    assert!(matches!(err, CheckpointingError::StoredCheckpointInvalid { size: 4, .. }), "{err}");
}

#[tokio::test]
async fn a_fully_recomputed_history_is_caught_only_by_the_signed_checkpoint() {
    let db = TestDb::new().await.expect("db");
    let (signer, public_der) = kms_signer().await;
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 6).await;
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("checkpoint");
    rewrite_history(&db, t, 2).await;

    let key = CheckpointKey::new(KEY_NAME, &public_der);
    let without_key = verify_range(&mut store, t, 0, None, None).await.expect("verify");
    assert!(without_key.ok, "every stored hash agrees after the rewrite: {without_key:?}");
    let with_key = verify_range(&mut store, t, 0, None, Some(key)).await.expect("verify");
    assert!(!with_key.ok);
    assert_eq!(with_key.fault, Some(FaultKind::CheckpointMismatch { checkpoint_size: 6 }), "{with_key:?}");
    // And the checkpointer refuses to sign over it.
    append(&mut store, t, 1).await;
    assert!(checkpoint_tenant(&mut store, &signer, PREFIX, t).await.is_err());
}

#[tokio::test]
async fn rows_removed_after_a_checkpoint_are_reported_as_a_truncated_tail() {
    let db = TestDb::new().await.expect("db");
    let (signer, public_der) = kms_signer().await;
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 7).await;
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("checkpoint");
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         DELETE FROM events WHERE tenant_id = '{t}' AND seq >= 5;
         DELETE FROM chain_entries WHERE tenant_id = '{t}' AND seq >= 5;
         UPDATE chain_heads SET size = 5, chain_hash = (SELECT chain_hash FROM chain_entries WHERE tenant_id = '{t}' AND seq = 4)
          WHERE tenant_id = '{t}';"
    ))
    .await
    .expect("truncate");
    let key = CheckpointKey::new(KEY_NAME, &public_der);
    let r = verify_range(&mut store, t, 0, None, Some(key)).await.expect("verify");
    assert_eq!((r.first_bad_seq, r.fault.clone()), (Some(5), Some(FaultKind::Truncated { expected_size: 7 })), "{r:?}");
}

#[tokio::test]
async fn a_tampered_checkpoint_note_is_reported() {
    let db = TestDb::new().await.expect("db");
    let (signer, public_der) = kms_signer().await;
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 3).await;
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("checkpoint");
    let su = db.superuser().await.expect("su");
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE checkpoints SET note = replace(note, E'\\n3\\n', E'\\n2\\n'), tree_size = 2 WHERE tenant_id = '{t}';"
    ))
    .await
    .expect("tamper");
    let key = CheckpointKey::new(KEY_NAME, &public_der);
    let r = verify_range(&mut store, t, 0, None, Some(key)).await.expect("verify");
    assert!(!r.ok);
    assert!(matches!(r.fault, Some(FaultKind::CheckpointInvalid { checkpoint_size: 2, .. })), "{r:?}");
}

#[tokio::test]
async fn the_incremental_verifier_checks_the_signed_root_against_the_stored_tree() {
    let db = TestDb::new().await.expect("db");
    let (signer, public_der) = kms_signer().await;
    let key = CheckpointKey::new(KEY_NAME, &public_der);
    let mut store = db.store().await.expect("store");
    let t = store.create_tenant("t").await.expect("t");
    append(&mut store, t, 2).await;
    assert!(verify_incrementally(&mut store, t, Some(key)).await.expect("verify").ok);
    append(&mut store, t, 4).await;
    checkpoint_tenant(&mut store, &signer, PREFIX, t).await.expect("checkpoint");

    // Seq 4 (actor u2) is forged and every later hash and every node recomputed. The verified
    // part (seqs 0 and 1) still ends in the recorded chain hash and the entries after it all
    // check, so only the signed root can tell.
    rewrite_history(&db, t, 4).await;
    append(&mut store, t, 1).await;
    let without_key = verify_range(&mut store, t, 2, None, None).await.expect("verify");
    assert!(without_key.ok, "the recomputed entries check by themselves: {without_key:?}");
    let caught = verify_incrementally(&mut store, t, Some(key)).await.expect("verify");
    assert!(!caught.ok);
    assert_eq!(caught.fault, Some(FaultKind::CheckpointMismatch { checkpoint_size: 6 }), "{caught:?}");
    assert_eq!(caught.checkpoint_size, Some(6));
}
