//! Tenant console settings (`GET`/`PUT /v1/console/settings`, and the public
//! `GET /v1/console/sign-in`): the origins that may frame the console, and the OIDC issuer whose
//! ID tokens sign the tenant's people in, with the mapping of its role claim to console roles.
//!
//! A change of settings is an administrative change, recorded in the tenant's chain
//! (`audit_log.console_settings.updated`, with the new settings). The settings live in DynamoDB,
//! outside PostgreSQL's transaction, so each stored version is recorded under an idempotency
//! key derived from its version number (`console settings <version>`, with spaces no client
//! key can contain): a version is recorded at most once however often that is retried. The
//! change takes effect first (a conditional write from the version read to the next, so two
//! concurrent changes cannot both pass), and is recorded second; a failure in between leaves it
//! in effect and not yet recorded, and the next `PUT` (the retry, or any later change) records
//! it before anything else, exactly as a revocation is completed by its retry. A `PUT` of the
//! settings already in effect changes and records nothing.

use crate::auth::Scope;
use crate::aws::console_settings::{registration_key, ConsoleSettingsError, ConsoleSettingsStore, SettingsWrite};
use crate::chain::event::ValidationError;
use crate::service::admin::{request_hash, seal, Actor};
use crate::service::ingest::SystemEvent;
use crate::store::admin::AdminChange;
use crate::store::append::{AppendResult, Idempotency};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

const MAX_FRAME_ANCESTORS: usize = 20;
const MAX_ROLES: usize = 50;
const MAX_TEXT_CHARS: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Settings(#[from] ConsoleSettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A console role and the scopes it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleRole {
    Viewer,
    Auditor,
    Admin,
}

impl ConsoleRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    /// `admin`: events:read, exports, admin; `auditor`: events:read, exports; `viewer`:
    /// events:read.
    pub fn scopes(self) -> Vec<Scope> {
        match self {
            Self::Viewer => vec![Scope::EventsRead],
            Self::Auditor => vec![Scope::EventsRead, Scope::Exports],
            Self::Admin => vec![Scope::EventsRead, Scope::Exports, Scope::Admin],
        }
    }
}

/// The tenant's OIDC issuer and how its tokens map to roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRegistration {
    pub issuer: String,
    pub client_id: String,
    pub role_claim: String,
    pub roles: BTreeMap<String, ConsoleRole>,
}

/// The settings as `GET`/`PUT /v1/console/settings` show them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    pub frame_ancestors: Vec<String>,
    pub oidc: Option<OidcRegistration>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(field, message)
}

fn text(field: &str, value: &str) -> Result<(), ValidationError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS || value.chars().any(char::is_control) {
        return Err(invalid(field, format!("must be 1 to {MAX_TEXT_CHARS} characters, no control characters")));
    }
    Ok(())
}

/// Whether `host` is a loopback name or address (the only hosts served over plain HTTP).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An origin as CSP and CORS write it: `https://host[:port]`, or `http://` for a loopback host;
/// nothing after the authority.
fn check_origin(field: &str, value: &str) -> Result<reqwest::Url, ValidationError> {
    let url =
        reqwest::Url::parse(value).map_err(|_| invalid(field, "must be an origin, e.g. https://app.example.com"))?;
    let host = url.host_str().unwrap_or_default();
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(host));
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && !host.is_empty();
    if !scheme_ok || !bare {
        return Err(invalid(
            field,
            "must be an https origin (http only for localhost), without credentials, query or fragment",
        ));
    }
    Ok(url)
}

impl ConsoleSettings {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.frame_ancestors.len() > MAX_FRAME_ANCESTORS {
            return Err(invalid("frame_ancestors", format!("at most {MAX_FRAME_ANCESTORS} origins")));
        }
        for (i, origin) in self.frame_ancestors.iter().enumerate() {
            let field = format!("frame_ancestors[{i}]");
            let url = check_origin(&field, origin)?;
            if url.path() != "/" || origin.ends_with('/') {
                return Err(invalid(&field, "must be an origin without a path, e.g. https://app.example.com"));
            }
        }
        if let Some(oidc) = &self.oidc {
            // The issuer is compared with tokens' `iss` exactly, so it is kept as written.
            check_origin("oidc.issuer", &oidc.issuer)?;
            if oidc.issuer.ends_with('/') || oidc.issuer.contains(char::is_whitespace) {
                return Err(invalid(
                    "oidc.issuer",
                    "must be the issuer exactly as its tokens' iss, without a trailing '/'",
                ));
            }
            text("oidc.client_id", &oidc.client_id)?;
            text("oidc.role_claim", &oidc.role_claim)?;
            if oidc.roles.is_empty() || oidc.roles.len() > MAX_ROLES {
                return Err(invalid("oidc.roles", format!("must map 1 to {MAX_ROLES} claim values to roles")));
            }
            for value in oidc.roles.keys() {
                text(&format!("oidc.roles.{value}"), value)?;
            }
        }
        Ok(())
    }

    fn to_json(&self) -> String {
        json!(self).to_string()
    }

    fn parse(text: &str) -> Result<Self, ConsoleSettingsError> {
        serde_json::from_str(text).map_err(|e| ConsoleSettingsError::Corrupt(e.to_string()))
    }
}

/// The tenant's settings (the defaults when it never set any).
pub async fn get_settings(settings: &ConsoleSettingsStore, tenant: Uuid) -> Result<ConsoleSettings, ConsoleError> {
    Ok(match settings.get(tenant).await? {
        Some(stored) => ConsoleSettings::parse(&stored.settings)?,
        None => ConsoleSettings::default(),
    })
}

/// What a browser needs to start the tenant's sign-in: the issuer and client id, or nothing.
/// An unknown tenant reads like one without OIDC, so the route reveals no tenant's existence.
pub async fn sign_in(settings: &ConsoleSettingsStore, tenant: Uuid) -> Result<Value, ConsoleError> {
    let oidc = get_settings(settings, tenant).await?.oidc;
    Ok(json!({
        "tenant_id": tenant,
        "oidc": oidc.map(|o| json!({ "issuer": o.issuer, "client_id": o.client_id })),
    }))
}

/// Records version `version` of the settings (`values`), once: a version recorded before is
/// replayed, not recorded again.
async fn record_version(
    store: &mut Store,
    actor: Actor<'_>,
    tenant: Uuid,
    version: u64,
    values: &ConsoleSettings,
) -> Result<Option<AppendResult>, ConsoleError> {
    let tenant_text = tenant.to_string();
    let metadata = json!({ "version": version, "settings": values });
    let key = format!("console settings {version}");
    let hash = request_hash("PUT /v1/console/settings", &metadata);
    let records = [SystemEvent {
        action: "audit_log.console_settings.updated".to_owned(),
        actor_id: actor.key_id.to_owned(),
        resource_type: "tenant".to_owned(),
        resource_id: tenant_text,
        metadata: Some(metadata),
    }];
    let idempotency = Idempotency { key: &key, request_hash: hash };
    let committed = store.commit_change(tenant, AdminChange::RecordOnly, Some(&idempotency), |_| seal(&records)).await;
    match committed {
        Ok(c) => Ok(Some(c.recorded)),
        // Recorded already, with other values: cannot happen while versions only move forward
        // through conditional writes; reported, and the version counts as recorded.
        Err(StoreError::IdempotencyConflict) => {
            tracing::error!(%tenant, version, "a console settings version was recorded with other values");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Changes the tenant's settings (see the module's notes); returns the settings now and what was
/// appended to the chain (for the index queue).
pub async fn put_settings(
    store: &mut Store,
    settings: &ConsoleSettingsStore,
    actor: Actor<'_>,
    tenant: Uuid,
    new: ConsoleSettings,
) -> Result<(ConsoleSettings, Vec<AppendResult>), ConsoleError> {
    new.validate()?;
    let mut recorded = Vec::new();
    let current = settings.get(tenant).await?;
    let (version, old_key) = match &current {
        Some(stored) => {
            let values = ConsoleSettings::parse(&stored.settings)?;
            // A change that took effect and whose record failed is recorded first.
            if stored.recorded_version < stored.version {
                recorded.extend(record_version(store, actor, tenant, stored.version, &values).await?);
                settings.mark_recorded(tenant, stored.version).await?;
            }
            if values == new {
                return Ok((new, recorded));
            }
            (stored.version, stored.oidc_key.clone())
        }
        None if new == ConsoleSettings::default() => return Ok((new, recorded)),
        None => (0, None),
    };
    let registration = new.oidc.as_ref().map(|o| (registration_key(&o.issuer, &o.client_id), json!(o).to_string()));
    let text = new.to_json();
    let write = SettingsWrite {
        settings: &text,
        expected_version: version,
        old_oidc_key: old_key.as_deref(),
        oidc: registration.as_ref().map(|(k, r)| (k.clone(), r.as_str())),
    };
    settings.put(tenant, &write).await?;
    recorded.extend(record_version(store, actor, tenant, version + 1, &new).await?);
    settings.mark_recorded(tenant, version + 1).await?;
    tracing::info!(%tenant, version = version + 1, oidc = new.oidc.is_some(), "console settings changed");
    Ok((new, recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(value: Value) -> ConsoleSettings {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn accepts_origins_and_a_registration() {
        let ok = settings(json!({
            "frame_ancestors": ["https://app.example.com", "https://app.example.com:8443", "http://localhost:5173"],
            "oidc": { "issuer": "https://idp.example.com/realms/a", "client_id": "console", "role_claim": "roles",
                      "roles": { "audit-admins": "admin", "auditors": "auditor", "staff": "viewer" } },
        }));
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ConsoleSettings::default().validate(), Ok(()));
    }

    #[test]
    fn refuses_each_bad_field_by_name() {
        let oidc = |issuer: &str, roles: Value| json!({ "frame_ancestors": [], "oidc": { "issuer": issuer, "client_id": "c", "role_claim": "roles", "roles": roles } });
        for (value, field) in [
            (json!({ "frame_ancestors": ["http://app.example.com"], "oidc": null }), "frame_ancestors[0]"),
            (json!({ "frame_ancestors": ["https://app.example.com/path"], "oidc": null }), "frame_ancestors[0]"),
            (json!({ "frame_ancestors": ["https://app.example.com/"], "oidc": null }), "frame_ancestors[0]"),
            (json!({ "frame_ancestors": ["*"], "oidc": null }), "frame_ancestors[0]"),
            (json!({ "frame_ancestors": ["https://a.example.com?x=1"], "oidc": null }), "frame_ancestors[0]"),
            (oidc("http://idp.example.com", json!({ "a": "admin" })), "oidc.issuer"),
            (oidc("https://idp.example.com/", json!({ "a": "admin" })), "oidc.issuer"),
            (oidc("https://idp.example.com", json!({})), "oidc.roles"),
        ] {
            assert_eq!(settings(value.clone()).validate().unwrap_err().field, field, "{value}");
        }
        assert!(serde_json::from_value::<ConsoleSettings>(oidc("https://i", json!({ "a": "root" }))).is_err());
    }

    #[test]
    fn roles_map_to_the_contracts_scopes() {
        assert_eq!(ConsoleRole::Admin.scopes(), [Scope::EventsRead, Scope::Exports, Scope::Admin]);
        assert_eq!(ConsoleRole::Auditor.scopes(), [Scope::EventsRead, Scope::Exports]);
        assert_eq!(ConsoleRole::Viewer.scopes(), [Scope::EventsRead]);
        assert!(ConsoleRole::Admin > ConsoleRole::Auditor && ConsoleRole::Auditor > ConsoleRole::Viewer);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "127.0.0.1", "[::1]", "127.1.2.3"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
