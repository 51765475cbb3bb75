//! Publisher signing keys and tenant settings in the store, on real PostgreSQL: validation,
//! tenant isolation, revocation once and only revocation.

mod support;

use shared::service::admin::{register_signing_key, revoke_signing_key, update_settings, Actor, AdminError};
use shared::store::publishers::{NewPublisherKey, PublisherKey, TenantSettings};
use shared::store::{Store, StoreError};
use support::TestDb;

const KEY: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72,
    0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

const ADMIN: Actor<'static> = Actor { key_id: "k1" };

async fn register(
    store: &mut Store,
    tenant: uuid::Uuid,
    key_id: Option<&str>,
    name: &str,
) -> Result<PublisherKey, AdminError> {
    let key = NewPublisherKey::parse(key_id, name, &KEY)?;
    Ok(register_signing_key(store, ADMIN, tenant, &key, None).await?.0)
}

#[tokio::test]
async fn keys_are_validated_isolated_and_revoked_once() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let (a, b) = (store.create_tenant("a").await?, store.create_tenant("b").await?);

    let generated = register(&mut store, a, None, "billing").await?;
    assert!(generated.key_id.starts_with("pk_"), "{generated:?}");
    let named = register(&mut store, a, Some("billing-2"), "billing").await?;
    assert!(matches!(
        register(&mut store, a, Some("billing-2"), "again").await,
        Err(AdminError::Store(StoreError::Conflict(_)))
    ));
    // The same id in another tenant is another key.
    register(&mut store, b, Some("billing-2"), "b's").await?;
    for (key_id, name, raw, field) in [
        (Some("has space"), "n", &KEY[..], "key_id"),
        (Some(""), "n", &KEY[..], "key_id"),
        (Some("k"), "", &KEY[..], "name"),
        (Some("k"), "n", &KEY[..31], "public_key"),
    ] {
        match NewPublisherKey::parse(key_id, name, raw) {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{key_id:?}/{name:?}: expected Invalid {field}, got {other:?}"),
        }
    }

    let listed = store.list_publisher_keys(a).await?;
    assert_eq!(listed.len(), 2);
    assert!(store.list_publisher_keys(b).await?.iter().all(|k| k.name == "b's"));

    assert!(matches!(
        revoke_signing_key(&mut store, ADMIN, b, &generated.key_id).await,
        Err(AdminError::Store(StoreError::NotFound))
    ));
    let size = store.tree_head(a).await?.size;
    let (revoked, _) = revoke_signing_key(&mut store, ADMIN, a, &named.key_id).await?;
    let (again, replay) = revoke_signing_key(&mut store, ADMIN, a, &named.key_id).await?;
    assert_eq!(again.revoked_at, revoked.revoked_at);
    assert!(replay.replayed, "revoking twice records once");
    assert_eq!(store.tree_head(a).await?.size, size + 1);
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
    update_settings(&mut store, ADMIN, a, TenantSettings { require_signatures: true }, None).await?;
    assert!(store.tenant_settings(a).await?.require_signatures);
    assert!(!store.tenant_settings(b).await?.require_signatures);
    assert!(store.publisher_policy(a).await?.require_signatures);
    assert!(matches!(store.tenant_settings(uuid::Uuid::now_v7()).await, Err(StoreError::UnknownTenant)));
    Ok(())
}
