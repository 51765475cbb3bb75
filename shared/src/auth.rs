//! Who is calling: the scopes an API key can carry and the caller identity the authorizer hands
//! to every handler (as API Gateway's `requestContext.authorizer.lambda`).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    /// The key's tenant; `None` only for platform keys.
    pub tenant_id: Option<Uuid>,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The authorizer's simple-response context: string values only (API Gateway passes them on
    /// unchanged): `key_id`, `tenant_id` (empty for platform keys) and space-separated `scopes`.
    pub fn to_context(&self) -> HashMap<String, serde_json::Value> {
        let scopes: Vec<&str> = self.scopes.iter().map(|s| s.as_str()).collect();
        HashMap::from([
            ("key_id".to_owned(), self.key_id.clone().into()),
            ("tenant_id".to_owned(), self.tenant_id.map(|t| t.to_string()).unwrap_or_default().into()),
            ("scopes".to_owned(), scopes.join(" ").into()),
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
        Some(Caller { key_id, tenant_id, scopes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips() {
        let caller = Caller {
            key_id: "k1".into(),
            tenant_id: Some(Uuid::now_v7()),
            scopes: vec![Scope::EventsWrite, Scope::Admin],
        };
        assert_eq!(Caller::from_context(&caller.to_context()), Some(caller));
        let platform = Caller { key_id: "p".into(), tenant_id: None, scopes: vec![Scope::Platform] };
        assert_eq!(Caller::from_context(&platform.to_context()), Some(platform));
    }

    #[test]
    fn rejects_malformed_contexts() {
        let ok =
            Caller { key_id: "k".into(), tenant_id: Some(Uuid::now_v7()), scopes: vec![Scope::Admin] }.to_context();
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
