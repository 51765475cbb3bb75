//! Publisher signing keys and the tenant's `require_signatures` setting, and the per-connection
//! cache of both that ingest consults (one query per tenant per TTL, not one per request).

use super::{tenant_param, Store, StoreError, SET_TENANT};
use crate::chain::event::limits::MAX_KEY_ID_CHARS;
use crate::chain::publisher::parse_public_key;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a connection keeps a tenant's policy unless configured otherwise.
pub const DEFAULT_POLICY_TTL: Duration = Duration::from_secs(10);

fn base64_key<S: Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&STANDARD.encode(key))
}

/// A registered publisher key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublisherKey {
    pub key_id: String,
    pub name: String,
    /// Standard base64 of the raw 32-byte Ed25519 public key.
    #[serde(serialize_with = "base64_key")]
    pub public_key: [u8; 32],
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Tenant settings an admin may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Every event must carry a valid signature by an active publisher key.
    pub require_signatures: bool,
}

/// What ingest checks signatures against: the setting and the active keys.
#[derive(Debug, Clone, Default)]
pub struct PublisherPolicy {
    pub require_signatures: bool,
    pub active_keys: HashMap<String, VerifyingKey>,
}

pub(super) fn key_from_row(row: &tokio_postgres::Row) -> Result<PublisherKey, StoreError> {
    let raw: &[u8] = row.get(2);
    Ok(PublisherKey {
        key_id: row.get(0),
        name: row.get(1),
        public_key: raw.try_into().map_err(|_| StoreError::Corrupt("a publisher key is not 32 bytes".into()))?,
        created_at: row.get(3),
        revoked_at: row.get(4),
    })
}

pub(super) const KEY_COLUMNS: &str = "key_id, name, public_key, created_at, revoked_at";

fn invalid(field: &str, message: &str) -> StoreError {
    StoreError::Invalid { field: field.into(), message: message.into() }
}

/// A signing key to register, checked: `key_id` defaults to one derived from the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPublisherKey {
    pub key_id: String,
    pub name: String,
    pub public_key: [u8; 32],
}

impl NewPublisherKey {
    pub fn parse(key_id: Option<&str>, name: &str, public_key: &[u8]) -> Result<Self, StoreError> {
        let name_ok = (1..=200).contains(&name.chars().count()) && !name.chars().any(char::is_control);
        if !name_ok {
            return Err(invalid("name", "must be 1 to 200 characters, no control characters"));
        }
        let key = parse_public_key(public_key)
            .map_err(|_| invalid("public_key", "must be a 32-byte Ed25519 public key (standard base64)"))?;
        let key_id = match key_id {
            Some(id) => {
                let ok = !id.is_empty()
                    && id.len() <= MAX_KEY_ID_CHARS
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
                if !ok {
                    return Err(invalid("key_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"));
                }
                id.to_owned()
            }
            None => format!("pk_{}", &hex::encode(crate::chain::hash::sha256(&[key.as_bytes()]).0)[..16]),
        };
        Ok(NewPublisherKey { key_id, name: name.to_owned(), public_key: key.to_bytes() })
    }
}

impl Store {
    pub(super) fn set_policy_ttl(&mut self, ttl: Duration) {
        self.policy_ttl = ttl;
    }

    /// Opens a transaction acting for `tenant`.
    async fn begin_for(&mut self, tenant: Uuid) -> Result<tokio_postgres::Transaction<'_>, StoreError> {
        self.recover().await?;
        let tx = self.client.transaction().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        Ok(tx)
    }

    pub async fn list_publisher_keys(&mut self, tenant: Uuid) -> Result<Vec<PublisherKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM publisher_keys WHERE tenant_id = $1 ORDER BY created_at, key_id");
        let tx = self.begin_for(tenant).await?;
        let rows = tx.query(&sql, &[&tenant]).await?;
        tx.commit().await?;
        rows.iter().map(key_from_row).collect()
    }

    pub async fn tenant_settings(&mut self, tenant: Uuid) -> Result<TenantSettings, StoreError> {
        let tx = self.begin_for(tenant).await?;
        let row = tx.query_opt("SELECT require_signatures FROM tenants WHERE tenant_id = $1", &[&tenant]).await?;
        tx.commit().await?;
        Ok(TenantSettings { require_signatures: row.ok_or(StoreError::UnknownTenant)?.get(0) })
    }

    /// The tenant's policy, from this connection's cache when younger than its TTL. A change made
    /// through another connection (another function instance) is seen within the TTL.
    pub async fn publisher_policy(&mut self, tenant: Uuid) -> Result<Arc<PublisherPolicy>, StoreError> {
        if let Some((at, policy)) = self.policy_cache.get(&tenant) {
            if at.elapsed() < self.policy_ttl {
                return Ok(policy.clone());
            }
        }
        let tx = self.begin_for(tenant).await?;
        let settings = tx.query_opt("SELECT require_signatures FROM tenants WHERE tenant_id = $1", &[&tenant]).await?;
        let rows = tx
            .query(
                "SELECT key_id, public_key FROM publisher_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
                &[&tenant],
            )
            .await?;
        tx.commit().await?;
        let require_signatures = settings.ok_or(StoreError::UnknownTenant)?.get(0);
        let mut active_keys = HashMap::new();
        for row in rows {
            let raw: &[u8] = row.get(1);
            let key =
                parse_public_key(raw).map_err(|_| StoreError::Corrupt("a stored publisher key is invalid".into()))?;
            active_keys.insert(row.get::<_, String>(0), key);
        }
        let policy = Arc::new(PublisherPolicy { require_signatures, active_keys });
        if !self.policy_ttl.is_zero() {
            self.policy_cache.insert(tenant, (Instant::now(), policy.clone()));
        }
        Ok(policy)
    }
}
