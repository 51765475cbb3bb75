//! API keys, the authorizer and receipt keys against the local AWS endpoint (DynamoDB and KMS).

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use localstack::bootstrap::Resources;
use shared::auth::Scope;
use shared::aws::api_keys::{ApiKeyError, ApiKeyStore};
use shared::aws::receipt_keys::{list_receipt_keys, ReceiptSigner};
use shared::chain::hash::Hash;
use shared::chain::receipt::{verify_receipt, ReceiptPayload};
use shared::service::authorizer::Authorizer;
use std::time::Duration;
use uuid::Uuid;

async fn setup() -> anyhow::Result<(aws_config::SdkConfig, &'static Resources)> {
    support::aws().await
}

fn keys(sdk: &aws_config::SdkConfig, r: &Resources) -> ApiKeyStore {
    ApiKeyStore::new(sdk, &r.api_keys_table, &r.api_key_mac_key_id)
}

#[tokio::test]
async fn a_created_key_authenticates_as_its_tenant_with_its_scopes() -> anyhow::Result<()> {
    let (sdk, r) = setup().await?;
    let store = keys(&sdk, r);
    let tenant = Uuid::now_v7();
    let key = store.create(Some(tenant), "writer", &[Scope::EventsWrite, Scope::EventsRead], None).await?;
    let caller = store.authenticate(&key.secret).await?;
    assert_eq!(caller.tenant_id, Some(tenant));
    assert_eq!(caller.key_id, key.record.key_id);
    assert_eq!(caller.scopes, vec![Scope::EventsWrite, Scope::EventsRead]);
    Ok(())
}

#[tokio::test]
async fn wrong_secrets_unknown_ids_and_malformed_tokens_are_refused() -> anyhow::Result<()> {
    let (sdk, r) = setup().await?;
    let store = keys(&sdk, r);
    let key = store.create(Some(Uuid::now_v7()), "k", &[Scope::EventsRead], None).await?;
    // Same key id, another secret of the right shape.
    let (prefix, secret) = key.secret.rsplit_once('_').expect("token shape");
    let flipped: String = secret.chars().rev().collect();
    assert!(matches!(store.authenticate(&format!("{prefix}_{flipped}")).await, Err(ApiKeyError::BadSecret)));
    let unknown = format!("alk_{}_{}", "0".repeat(24), secret);
    assert!(matches!(store.authenticate(&unknown).await, Err(ApiKeyError::Unknown)));
    for bad in ["", "alk_", "Bearer x", "alk_é_é", &key.secret[..key.secret.len() - 1]] {
        assert!(matches!(store.authenticate(bad).await, Err(ApiKeyError::Malformed)), "{bad:?}");
    }
    Ok(())
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused() -> anyhow::Result<()> {
    let (sdk, r) = setup().await?;
    let store = keys(&sdk, r);
    let tenant = Uuid::now_v7();
    let key = store.create(Some(tenant), "k", &[Scope::Admin], None).await?;
    let revoked = store.revoke(tenant, &key.record.key_id).await?;
    let first = revoked.revoked_at.expect("revoked");
    assert!(matches!(store.authenticate(&key.secret).await, Err(ApiKeyError::Revoked)));
    // Revoking again keeps the first time.
    assert_eq!(store.revoke(tenant, &key.record.key_id).await?.revoked_at, Some(first));

    let short = store.create(Some(tenant), "k", &[Scope::Admin], Some(Utc::now() + ChronoDuration::seconds(1))).await?;
    store.authenticate(&short.secret).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(store.authenticate(&short.secret).await, Err(ApiKeyError::Expired)));
    Ok(())
}

#[tokio::test]
async fn a_tenant_can_neither_list_nor_revoke_another_tenants_keys() -> anyhow::Result<()> {
    let (sdk, r) = setup().await?;
    let store = keys(&sdk, r);
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let key_a = store.create(Some(a), "a", &[Scope::Admin], None).await?;
    store.create(Some(b), "b", &[Scope::Admin], None).await?;
    let listed_b = store.list(b).await?;
    assert_eq!(listed_b.len(), 1);
    assert!(listed_b.iter().all(|k| k.tenant_id == Some(b)));
    assert!(matches!(store.revoke(b, &key_a.record.key_id).await, Err(ApiKeyError::NotFound)));
    assert!(matches!(store.revoke(b, "no-such-key").await, Err(ApiKeyError::NotFound)));
    store.authenticate(&key_a.secret).await?;
    let listed_a = store.list(a).await?;
    assert_eq!(listed_a, vec![key_a.record.clone()]);
    Ok(())
}

#[tokio::test]
async fn platform_keys_have_no_tenant_and_only_the_platform_scope() -> anyhow::Result<()> {
    let (sdk, r) = setup().await?;
    let store = keys(&sdk, r);
    let key = store.create(None, "platform", &[Scope::Platform], None).await?;
    let caller = store.authenticate(&key.secret).await?;
    assert_eq!((caller.tenant_id, caller.scopes), (None, vec![Scope::Platform]));
    assert!(matches!(store.create(None, "x", &[Scope::Admin], None).await, Err(ApiKeyError::InvalidInput(_))));
    assert!(matches!(
        store.create(Some(Uuid::now_v7()), "x", &[Scope::Platform], None).await,
        Err(ApiKeyError::InvalidInput(_))
    ));
    assert!(matches!(
        store.create(None, "x", &[Scope::Platform, Scope::Admin], None).await,
        Err(ApiKeyError::InvalidInput(_))
    ));
    Ok(())
}

#[tokio::test]
async fn the_authorizer_refuses_a_revoked_key_once_its_cache_expires() -> anyhow::Result<()> {
    let (sdk, r) = setup().await?;
    let tenant = Uuid::now_v7();
    let key = keys(&sdk, r).create(Some(tenant), "k", &[Scope::EventsRead], None).await?;
    let authorizer = Authorizer::new(keys(&sdk, r), Duration::from_millis(700));
    let header = format!("Bearer {}", key.secret);
    assert_eq!(authorizer.authorize(Some(&header)).await.map(|c| c.tenant_id), Some(Some(tenant)));
    keys(&sdk, r).revoke(tenant, &key.record.key_id).await?;
    // Within the TTL the cached decision stands; after it, the revocation is seen.
    assert!(authorizer.authorize(Some(&header)).await.is_some());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(authorizer.authorize(Some(&header)).await.is_none());
    for bad in [None, Some(""), Some("Basic abc"), Some(key.secret.as_str())] {
        assert!(authorizer.authorize(bad).await.is_none(), "{bad:?}");
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_cold_starts_agree_on_one_receipt_key_that_verifies() -> anyhow::Result<()> {
    // Its own table, so this test sees a first start whatever else ran.
    let (sdk, r) = setup().await?;
    let table = format!("receipts-{}", Uuid::now_v7().simple());
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;
    let starts = (0..8).map(|_| ReceiptSigner::load_or_create(&sdk, &table, &r.receipt_key_kms_key_id));
    let signers = futures::future::try_join_all(starts).await?;
    let key_id = signers[0].public_key().key_id.clone();
    assert!(signers.iter().all(|s| s.public_key().key_id == key_id));

    // A later start decrypts the same key; its receipts verify with the published public key.
    let later = ReceiptSigner::load_or_create(&sdk, &table, &r.receipt_key_kms_key_id).await?;
    assert_eq!(later.public_key().key_id, key_id);
    let published = list_receipt_keys(&sdk, &table).await?;
    assert!(published[0].current);
    assert_eq!(published[0].key_id, key_id);
    let raw: [u8; 32] = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &published[0].public_key)?
        .try_into()
        .expect("32 bytes");
    let public = ed25519_dalek::VerifyingKey::from_bytes(&raw)?;
    let receipt = later.sign(&ReceiptPayload {
        tenant_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        seq: 7,
        leaf_hash: Hash([1; 32]),
        chain_hash: Hash([2; 32]),
        received_at: Utc::now(),
    });
    verify_receipt(&receipt, &public)?;
    Ok(())
}
