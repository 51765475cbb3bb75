//! A restarted local run gets a new checkpoint key (the local AWS endpoint keeps no state); it
//! records the change in each tenant whose latest checkpoint used another key, so that the next
//! checkpoint, by the new key, makes verification pass again.

mod support;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use reqwest::{Method, StatusCode};
use shared::aws::kms::KmsSigner;
use shared::service::verify::{verify_range, CheckpointKey};
use shared::signer::CheckpointSigner;
use support::{event, Stack};

#[tokio::test]
async fn a_new_checkpoint_key_is_recorded_and_used_for_the_next_checkpoint() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, key) = stack.tenant("acme").await?;
    let tenant = uuid::Uuid::parse_str(&tenant)?;
    assert_eq!(
        stack.call(Method::POST, "/v1/events", Some(&key), Some(&event("a.b", "u"))).await?.status,
        StatusCode::CREATED
    );
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;

    // The same as a restart: another checkpoint key.
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let created = kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await?;
    let new_key_id = created.key_metadata().expect("metadata").key_id().to_owned();
    let mut env = stack.env.clone();
    env.insert("CHECKPOINT_KEY_ID".into(), new_key_id.clone());
    let new_key = KmsSigner::from_config(&stack.sdk, &new_key_id, local_run::LOCAL_ORIGIN).await?;
    let check = CheckpointKey { name: new_key.key_name(), spki_der: new_key.public_key_der() };
    let mut store = stack.db.store().await?;
    let stale = verify_range(&mut store, tenant, 0, None, Some(check)).await?;
    assert!(!stale.ok, "the old checkpoint cannot verify with the new key");

    let owner = stack.db.superuser().await?;
    // The tenant and the service-wide log of tenant heads.
    assert_eq!(local_run::record_checkpoint_key_change(&owner, &env, &stack.sdk).await?, 2);
    // Done once: a second start with the same key finds nothing to record.
    local_run::checkpoint_once(&env, &stack.sdk).await?;
    assert_eq!(local_run::record_checkpoint_key_change(&owner, &env, &stack.sdk).await?, 0);
    let report = verify_range(&mut store, tenant, 0, None, Some(check)).await?;
    assert!(report.ok, "{report:?}");
    let listed =
        stack.call(Method::GET, "/v1/events?action=audit_log.checkpoint_key.changed", Some(&key), None).await?;
    assert_eq!(listed.body["events"].as_array().map(Vec::len), Some(1));
    Ok(())
}
