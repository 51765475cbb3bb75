//! Who is calling: the scopes a credential can carry and the caller identity the authorizer hands
//! to every handler (as API Gateway's `requestContext.authorizer.lambda`). Three kinds of
//! credential end up here: API keys, viewer tokens (which pin a filter every read is ANDed with)
//! and OIDC ID tokens of an issuer the tenant registered (which map a role to scopes).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "events:write")]
    EventsWrite,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "exports")]
    Exports,
    #[serde(rename = "admin")]
    Admin,
    /// Platform operators: creating tenants, nothing inside them.
    #[serde(rename = "platform")]
    Platform,
}

impl Scope {
    pub const ALL: [Scope; 5] = [Self::EventsWrite, Self::EventsRead, Self::Exports, Self::Admin, Self::Platform];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventsWrite => "events:write",
            Self::EventsRead => "events:read",
            Self::Exports => "exports",
            Self::Admin => "admin",
            Self::Platform => "platform",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| format!("unknown scope {s:?}"))
    }
}

/// Which kind of credential the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    ApiKey,
    ViewerToken,
    Oidc,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::ViewerToken => "viewer_token",
            Self::Oidc => "oidc",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::ApiKey, Self::ViewerToken, Self::Oidc].into_iter().find(|k| k.as_str() == s)
    }
}

/// The names a viewer token's pinned filter may use: `GET /v1/events`'s filter parameters that
/// select events by what they are (not by time or text), and `action_prefix` for `action=x.*`.
pub const PIN_FIELDS: &[&str] =
    &["actor_id", "resource_type", "resource_id", "action", "action_prefix", "outcome", "severity", "source"];

/// A viewer token's pinned filter, by name (see [`PIN_FIELDS`]); `service::query` turns it into
/// an `EventFilter`.
pub type Pin = BTreeMap<String, String>;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The API key's id; a viewer token's `viewer:<token id>`; an OIDC user's `oidc:<sub>`.
    pub key_id: String,
    /// The key's tenant; `None` only for platform keys.
    pub tenant_id: Option<Uuid>,
    pub scopes: Vec<Scope>,
    pub kind: CredentialKind,
    /// Who the credential names: a viewer token's subject, an OIDC token's `sub`.
    pub subject: Option<String>,
    /// The console role an OIDC token mapped to (`admin`, `auditor`, `viewer`).
    pub role: Option<String>,
    /// A viewer token's pinned filter: every read it makes is ANDed with it.
    pub pin: Option<Pin>,
    /// When the credential stops working (viewer and OIDC tokens).
    pub expires_at: Option<DateTime<Utc>>,
}

impl Caller {
    /// An API key's caller.
    pub fn api_key(key_id: String, tenant_id: Option<Uuid>, scopes: Vec<Scope>) -> Caller {
        Caller {
            key_id,
            tenant_id,
            scopes,
            kind: CredentialKind::ApiKey,
            subject: None,
            role: None,
            pin: None,
            expires_at: None,
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The authorizer's simple-response context: string values only (API Gateway passes them on
    /// unchanged): `key_id`, `tenant_id` (empty for platform keys), space-separated `scopes`,
    /// `kind`, and `subject`, `role`, `filter` (the pin as JSON text) and `expires_at` (RFC 3339),
    /// each empty when the credential has none.
    pub fn to_context(&self) -> HashMap<String, serde_json::Value> {
        let scopes: Vec<&str> = self.scopes.iter().map(|s| s.as_str()).collect();
        let pin = self.pin.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default()).unwrap_or_default();
        let expires = self.expires_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default();
        HashMap::from([
            ("key_id".to_owned(), self.key_id.clone().into()),
            ("tenant_id".to_owned(), self.tenant_id.map(|t| t.to_string()).unwrap_or_default().into()),
            ("scopes".to_owned(), scopes.join(" ").into()),
            ("kind".to_owned(), self.kind.as_str().into()),
            ("subject".to_owned(), self.subject.clone().unwrap_or_default().into()),
            ("role".to_owned(), self.role.clone().unwrap_or_default().into()),
            ("filter".to_owned(), pin.into()),
            ("expires_at".to_owned(), expires.into()),
        ])
    }

    /// Reads the context back; `None` if anything is missing or malformed, which handlers treat
    /// as unauthenticated.
    pub fn from_context(context: &HashMap<String, serde_json::Value>) -> Option<Caller> {
        let key_id = context.get("key_id")?.as_str().filter(|k| !k.is_empty())?.to_owned();
        let tenant = context.get("tenant_id")?.as_str()?;
        let tenant_id = if tenant.is_empty() { None } else { Some(Uuid::parse_str(tenant).ok()?) };
        let scopes = context
            .get("scopes")?
            .as_str()?
            .split_whitespace()
            .map(Scope::from_str)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        // Only platform keys lack a tenant; a platform key has no tenant.
        if tenant_id.is_none() != scopes.contains(&Scope::Platform) {
            return None;
        }
        let text = |name: &str| -> Option<Option<String>> {
            match context.get(name) {
                None => Some(None),
                Some(v) => v.as_str().map(|s| Some(s.to_owned()).filter(|s| !s.is_empty())),
            }
        };
        // A context without `kind` is an API key's, as every context was before there were others.
        let kind = match text("kind")? {
            None => CredentialKind::ApiKey,
            Some(k) => CredentialKind::parse(&k)?,
        };
        let pin = match text("filter")? {
            None => None,
            Some(json) => {
                let pin: Pin = serde_json::from_str(&json).ok()?;
                if pin.keys().any(|k| !PIN_FIELDS.contains(&k.as_str())) {
                    return None;
                }
                Some(pin)
            }
        };
        let expires_at = match text("expires_at")? {
            None => None,
            Some(t) => Some(DateTime::parse_from_rfc3339(&t).ok()?.with_timezone(&Utc)),
        };
        // Only API keys are platform keys, and only viewer tokens carry a pin.
        if (kind != CredentialKind::ApiKey && tenant_id.is_none())
            || (kind == CredentialKind::ViewerToken) != pin.is_some()
        {
            return None;
        }
        Some(Caller {
            key_id,
            tenant_id,
            scopes,
            kind,
            subject: text("subject")?,
            role: text("role")?,
            pin,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips() {
        let caller = Caller::api_key("k1".into(), Some(Uuid::now_v7()), vec![Scope::EventsWrite, Scope::Admin]);
        assert_eq!(Caller::from_context(&caller.to_context()), Some(caller));
        let platform = Caller::api_key("p".into(), None, vec![Scope::Platform]);
        assert_eq!(Caller::from_context(&platform.to_context()), Some(platform));
        let viewer = Caller {
            kind: CredentialKind::ViewerToken,
            subject: Some("customer-42".into()),
            pin: Some(Pin::from([("actor_id".to_owned(), "bob".to_owned())])),
            expires_at: Some(DateTime::from_timestamp(1_900_000_000, 0).unwrap()),
            ..Caller::api_key("viewer:ab".into(), Some(Uuid::now_v7()), vec![Scope::EventsRead])
        };
        let context = viewer.to_context();
        assert!(context.values().all(|v| v.is_string()), "{context:?}");
        assert_eq!(Caller::from_context(&context), Some(viewer));
        let oidc = Caller {
            kind: CredentialKind::Oidc,
            subject: Some("u1".into()),
            role: Some("auditor".into()),
            ..Caller::api_key("oidc:u1".into(), Some(Uuid::now_v7()), vec![Scope::EventsRead, Scope::Exports])
        };
        assert_eq!(Caller::from_context(&oidc.to_context()), Some(oidc));
    }

    #[test]
    fn a_context_without_a_kind_is_an_api_keys() {
        let caller = Caller::api_key("k1".into(), Some(Uuid::now_v7()), vec![Scope::Admin]);
        let mut context = caller.to_context();
        for name in ["kind", "subject", "role", "filter", "expires_at"] {
            context.remove(name);
        }
        assert_eq!(Caller::from_context(&context), Some(caller));
    }

    #[test]
    fn a_viewer_context_needs_its_pin_and_a_pin_needs_a_viewer() {
        let tenant = Some(Uuid::now_v7());
        let mut viewer = Caller::api_key("viewer:ab".into(), tenant, vec![Scope::EventsRead]).to_context();
        viewer.insert("kind".into(), "viewer_token".into());
        assert_eq!(Caller::from_context(&viewer), None);
        viewer.insert("filter".into(), r#"{"tenant_id":"x"}"#.into());
        assert_eq!(Caller::from_context(&viewer), None);
        let mut pinned_key = Caller::api_key("k".into(), tenant, vec![Scope::EventsRead]).to_context();
        pinned_key.insert("filter".into(), "{}".into());
        assert_eq!(Caller::from_context(&pinned_key), None);
    }

    #[test]
    fn rejects_malformed_contexts() {
        let ok = Caller::api_key("k".into(), Some(Uuid::now_v7()), vec![Scope::Admin]).to_context();
        for (field, value) in [
            ("tenant_id", "not-a-uuid"),
            ("scopes", "admin root"),
            ("key_id", ""),
            // A tenant key claiming the platform scope, and a platform key without it.
            ("scopes", "platform"),
        ] {
            let mut bad = ok.clone();
            bad.insert(field.into(), value.into());
            assert_eq!(Caller::from_context(&bad), None, "{field}={value}");
        }
        let mut no_tenant = ok.clone();
        no_tenant.insert("tenant_id".into(), "".into());
        assert_eq!(Caller::from_context(&no_tenant), None);
        assert_eq!(Caller::from_context(&HashMap::new()), None);
    }

    #[test]
    fn scopes_parse_from_their_names_only() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(serde_json::to_value(scope).unwrap(), scope.as_str());
        }
        assert!("Admin".parse::<Scope>().is_err());
    }
}
