//! Checkpoint key rotation, as a restarted local run goes through it (the local AWS endpoint
//! forgets its keys) and as an operator does it in AWS: notes name their key id, the earlier
//! key is trusted only once configured as retired, and then both the checkpointer and the
//! verifier check every note with the key it names.

mod support;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use base64::Engine;
use reqwest::{Method, StatusCode};
use shared::aws::kms::KmsSigner;
use shared::chain::verify::FaultKind;
use shared::service::verify::{verify_range, CheckpointKey};
use shared::signer::CheckpointSigner;
use support::{event, Stack};

#[tokio::test]
async fn notes_by_a_retired_key_verify_once_it_is_configured_and_not_before() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, key) = stack.tenant("acme").await?;
    let tenant = uuid::Uuid::parse_str(&tenant)?;
    let keys_file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint-keys-{}", uuid::Uuid::new_v4()));
    let mut first_env = stack.env.clone();
    let retired = local_run::retire_earlier_checkpoint_keys(&keys_file, &mut first_env, &stack.sdk).await?;
    assert_eq!(retired, 0, "the first run has no earlier key");
    local_run::checkpoint_once(&first_env, &stack.sdk).await?;
    let old = stack.call(Method::GET, "/v1/checkpoints/latest", Some(&key), None).await?;
    assert_eq!(old.status, StatusCode::OK);

    // A new key, and the tree grows.
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let created = kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await?;
    let new_key_id = created.key_metadata().expect("metadata").key_id().to_owned();
    let mut env = stack.env.clone();
    env.insert("CHECKPOINT_KEY_ID".into(), new_key_id.clone());
    let new_key = KmsSigner::from_config(&stack.sdk, &new_key_id, local_run::LOCAL_ORIGIN).await?;
    let r = stack.call(Method::POST, "/v1/events", Some(&key), Some(&event("a.b", "u"))).await?;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut store = stack.db.store().await?;

    // Not configured: the old note is not trusted, by the verifier nor by the checkpointer.
    let unconfigured = CheckpointKey::new(new_key.key_name(), new_key.public_key_der());
    let report = verify_range(&mut store, tenant, 0, None, Some(unconfigured)).await?;
    assert!(!report.ok);
    assert!(
        matches!(&report.fault, Some(FaultKind::CheckpointInvalid { reason, .. }) if reason.contains("not a trusted")),
        "{report:?}"
    );
    let refused = local_run::checkpoint_once(&env, &stack.sdk).await?;
    assert!(refused.failed >= 1 && refused.signed == 0, "{refused:?}");

    // Configured as retired (what a restarted local run does from its key file): trusted.
    let retired = local_run::retire_earlier_checkpoint_keys(&keys_file, &mut env, &stack.sdk).await?;
    assert_eq!(retired, 1);
    let signed = local_run::checkpoint_once(&env, &stack.sdk).await?;
    assert_eq!((signed.signed, signed.failed), (1, 0), "{signed:?}");
    let old_der: Vec<Vec<u8>> = std::fs::read_to_string(&keys_file)?
        .lines()
        .take(1)
        .map(|l| base64::engine::general_purpose::STANDARD.decode(l))
        .collect::<Result<_, _>>()?;
    let ring = CheckpointKey { name: new_key.key_name(), spki_der: new_key.public_key_der(), retired: &old_der };
    let report = verify_range(&mut store, tenant, 0, None, Some(ring)).await?;
    assert!(report.ok, "{report:?}");
    // The old note itself still verifies, with the retired key its key id names.
    let old_size = old.body["tree_size"].as_u64().unwrap();
    let old_note = store.checkpoint_at(tenant, old_size).await?;
    let der = ring.named(old_note.key_id).expect("the old note names the retired key");
    shared::chain::checkpoint::verify(&old_note.note, new_key.key_name(), der)?;
    std::fs::remove_file(&keys_file)?;
    Ok(())
}
