//! Publisher signing keys and tenant settings in the store, on real PostgreSQL: validation,
//! tenant isolation, revocation once and only revocation.

mod support;

use shared::store::publishers::TenantSettings;
use shared::store::StoreError;
use support::TestDb;

const KEY: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72,
    0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

#[tokio::test]
async fn keys_are_validated_isolated_and_revoked_once() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let (a, b) = (store.create_tenant("a").await?, store.create_tenant("b").await?);

    let generated = store.register_publisher_key(a, None, "billing", &KEY).await?;
    assert!(generated.key_id.starts_with("pk_"), "{generated:?}");
    let named = store.register_publisher_key(a, Some("billing-2"), "billing", &KEY).await?;
    assert!(matches!(
        store.register_publisher_key(a, Some("billing-2"), "again", &KEY).await,
        Err(StoreError::Conflict(_))
    ));
    // The same id in another tenant is another key.
    store.register_publisher_key(b, Some("billing-2"), "b's", &KEY).await?;
    for (key_id, name, raw, field) in [
        (Some("has space"), "n", &KEY[..], "key_id"),
        (Some(""), "n", &KEY[..], "key_id"),
        (Some("k"), "", &KEY[..], "name"),
        (Some("k"), "n", &KEY[..31], "public_key"),
    ] {
        match store.register_publisher_key(a, key_id, name, raw).await {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{key_id:?}/{name:?}: expected Invalid {field}, got {other:?}"),
        }
    }

    let listed = store.list_publisher_keys(a).await?;
    assert_eq!(listed.len(), 2);
    assert!(store.list_publisher_keys(b).await?.iter().all(|k| k.name == "b's"));

    assert!(matches!(store.revoke_publisher_key(b, &generated.key_id).await, Err(StoreError::NotFound)));
    let revoked = store.revoke_publisher_key(a, &named.key_id).await?;
    let again = store.revoke_publisher_key(a, &named.key_id).await?;
    assert_eq!(again.revoked_at, revoked.revoked_at);
    let policy = store.publisher_policy(a).await?;
    assert!(policy.active_keys.contains_key(&generated.key_id));
    assert!(!policy.active_keys.contains_key(&named.key_id));

    // Even the service role cannot un-revoke, rename or delete a key.
    let app = db.app_client().await?;
    let set = format!("SELECT set_config('app.tenant_id', '{a}', false)");
    app.batch_execute(&set).await?;
    for sql in [
        format!("UPDATE publisher_keys SET revoked_at = NULL WHERE key_id = '{}'", named.key_id),
        format!("UPDATE publisher_keys SET name = 'x' WHERE key_id = '{}'", generated.key_id),
        format!("DELETE FROM publisher_keys WHERE key_id = '{}'", generated.key_id),
    ] {
        assert!(app.batch_execute(&sql).await.is_err(), "{sql}");
    }
    Ok(())
}

#[tokio::test]
async fn settings_change_only_for_their_tenant() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let (a, b) = (store.create_tenant("a").await?, store.create_tenant("b").await?);
    assert_eq!(store.tenant_settings(a).await?, TenantSettings { require_signatures: false });
    store.update_tenant_settings(a, &TenantSettings { require_signatures: true }).await?;
    assert!(store.tenant_settings(a).await?.require_signatures);
    assert!(!store.tenant_settings(b).await?.require_signatures);
    assert!(store.publisher_policy(a).await?.require_signatures);
    assert!(matches!(store.tenant_settings(uuid::Uuid::now_v7()).await, Err(StoreError::UnknownTenant)));
    Ok(())
}
