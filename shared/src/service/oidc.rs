//! OIDC ID tokens as credentials: a JWT from the issuer a tenant registered
//! (`service::console_settings`), checked by the authorizer and mapped to the tenant's scopes
//! through the role its role claim names.
//!
//! A token is accepted when, in this order:
//! 1. its header names RS256 or ES256 (`none`, HS256 and everything else are refused before any
//!    key is looked at, so a public key can never serve as an HMAC secret);
//! 2. its (unverified) `iss` and `aud` name a registration: one `GetItem` on the registration
//!    item of that pair, which gives the tenant;
//! 3. the issuer is `https://`, or a loopback `http://` issuer where the deployment allows them
//!    (`OIDC_ALLOW_LOOPBACK_ISSUERS`, the local run);
//! 4. the issuer's key of the token's `kid` verifies the signature: keys come from the issuer's
//!    discovery document (`/.well-known/openid-configuration`, whose `issuer` must equal `iss`)
//!    and its `jwks_uri`, are kept for `OIDC_JWKS_CACHE_SECONDS`, and an unknown `kid` (a key
//!    rotation) fetches them again, at most once per `OIDC_JWKS_MIN_REFETCH_SECONDS` per issuer;
//! 5. `exp`, `nbf` and `iat` hold with 60 s of leeway, `iss` and `aud` match the registration
//!    (by `jsonwebtoken`'s validation, on the verified claims);
//! 6. the role claim (a string or an array of strings) holds a value the registration maps to a
//!    role (the most powerful one when several are mapped); none is a refusal.
//!
//! Every fetch goes through one `reqwest` client with connect and request timeouts, no
//! redirects and a size limit. A fetch that fails is a transient failure: the authorizer does
//! not cache it, and it touches no other kind of credential, so an issuer that is down locks
//! out its own users only, never API keys.

use crate::auth::{Caller, CredentialKind};
use crate::aws::console_settings::{ConsoleSettingsError, ConsoleSettingsStore};
use crate::config::OidcSettings;
use crate::service::console_settings::{is_loopback_host, ConsoleRole, OidcRegistration};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allowed clock difference for `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 60;
/// The largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The most `aud` values looked up.
const MAX_AUDIENCES: usize = 5;
/// Issuers whose keys are kept at once (a bound on memory, not a limit anyone should meet).
const MAX_ISSUERS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("not a JWT")]
    Malformed,
    #[error("the algorithm {0} is not accepted (RS256 and ES256 are)")]
    Algorithm(String),
    #[error("no tenant registered this issuer and audience")]
    Unregistered,
    #[error("the issuer {0} is not https")]
    InsecureIssuer(String),
    #[error("the issuer has no key {0:?}")]
    UnknownKey(Option<String>),
    #[error("the token does not verify: {0}")]
    Invalid(String),
    #[error("the token maps to no console role")]
    NoRole,
    #[error("fetching the issuer's keys failed: {0}")]
    Fetch(String),
    #[error(transparent)]
    Registrations(#[from] ConsoleSettingsError),
}

impl OidcError {
    /// A failure a later request may not meet (the issuer or the table unreachable): not to be
    /// cached as a refusal.
    pub fn is_transient(&self) -> bool {
        matches!(self, OidcError::Fetch(_) | OidcError::Registrations(ConsoleSettingsError::Aws { .. }))
    }
}

/// Whether `token` has the shape of a JWT (three base64url segments, a JSON header): the
/// authorizer's cue to check it here.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or_default();
    token.len() <= 16 * 1024 && parts.count() == 2 && header.starts_with("eyJ")
}

#[derive(Debug, Deserialize)]
struct Unverified {
    iss: Option<String>,
    aud: Option<Value>,
}

/// The `iss` and `aud` values of a token whose signature is not checked yet: only to find the
/// registration, never trusted until the signature and claims verify against it.
fn unverified_claims(token: &str) -> Result<(String, Vec<String>), OidcError> {
    let payload = token.split('.').nth(1).ok_or(OidcError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| OidcError::Malformed)?;
    let claims: Unverified = serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed)?;
    let issuer = claims.iss.ok_or(OidcError::Malformed)?;
    let audiences = match claims.aud {
        Some(Value::String(a)) => vec![a],
        Some(Value::Array(list)) => list.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => return Err(OidcError::Malformed),
    };
    Ok((issuer, audiences.into_iter().take(MAX_AUDIENCES).collect()))
}

/// The role a token's claims map to: the most powerful of the mapped values of the role claim.
pub fn mapped_role(claims: &Value, registration: &OidcRegistration) -> Option<ConsoleRole> {
    let values: Vec<&str> = match claims.get(&registration.role_claim) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    values.into_iter().filter_map(|v| registration.roles.get(v).copied()).max()
}

#[derive(Debug)]
struct IssuerKeys {
    keys: JwkSet,
    fetched: Instant,
}

#[derive(Debug, Default)]
struct KeyCache {
    issuers: HashMap<String, IssuerKeys>,
    /// When each issuer's keys were last asked for (whatever came of it).
    attempts: HashMap<String, Instant>,
}

/// Checks ID tokens; build once per authorizer instance.
#[derive(Debug)]
pub struct OidcVerifier {
    registrations: ConsoleSettingsStore,
    http: reqwest::Client,
    settings: OidcSettings,
    cache: Mutex<KeyCache>,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl OidcVerifier {
    pub fn new(registrations: ConsoleSettingsStore, settings: OidcSettings) -> Result<Self, OidcError> {
        let timeout = Duration::from_millis(settings.http_timeout_ms.max(1));
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Fetch(e.to_string()))?;
        Ok(OidcVerifier { registrations, http, settings, cache: Mutex::new(KeyCache::default()) })
    }

    /// Checks a bearer token that [`looks_like_jwt`].
    pub async fn verify(&self, token: &str) -> Result<Caller, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => OidcError::Algorithm("not RS256 or ES256".into()),
            _ => OidcError::Malformed,
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(OidcError::Algorithm(format!("{:?}", header.alg)));
        }
        let (issuer, audiences) = unverified_claims(token)?;
        let mut found = None;
        for audience in &audiences {
            if let Some(stored) = self.registrations.registration(&issuer, audience).await? {
                found = Some(stored);
                break;
            }
        }
        let stored = found.ok_or(OidcError::Unregistered)?;
        let registration: OidcRegistration = serde_json::from_str(&stored.registration)
            .map_err(|e| OidcError::Registrations(ConsoleSettingsError::Corrupt(e.to_string())))?;
        // The item is found by a hash of the pair; the pair itself must match too.
        if registration.issuer != issuer || !audiences.contains(&registration.client_id) {
            return Err(OidcError::Unregistered);
        }
        self.check_issuer_url(&issuer)?;
        let key = self.key_for(&issuer, header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&registration.issuer]);
        validation.set_audience(&[&registration.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| OidcError::Invalid(format!("{:?}", e.kind())))?;
        let claims = data.claims;
        let now = chrono::Utc::now().timestamp();
        let iat = claims.get("iat").and_then(Value::as_i64).ok_or_else(|| OidcError::Invalid("iat".into()))?;
        if iat > now + LEEWAY_SECONDS as i64 {
            return Err(OidcError::Invalid("issued in the future".into()));
        }
        let subject = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 255);
        let subject = subject.ok_or_else(|| OidcError::Invalid("sub".into()))?.to_owned();
        let role = mapped_role(&claims, &registration).ok_or(OidcError::NoRole)?;
        let expires_at = claims.get("exp").and_then(Value::as_i64).and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        Ok(Caller {
            key_id: format!("oidc:{subject}"),
            tenant_id: Some(stored.tenant_id),
            scopes: role.scopes(),
            kind: CredentialKind::Oidc,
            subject: Some(subject),
            role: Some(role.as_str().to_owned()),
            pin: None,
            expires_at,
        })
    }

    fn check_issuer_url(&self, issuer: &str) -> Result<(), OidcError> {
        let url = reqwest::Url::parse(issuer).map_err(|_| OidcError::InsecureIssuer(issuer.to_owned()))?;
        let loopback = url.host_str().is_some_and(is_loopback_host);
        match url.scheme() {
            "https" => Ok(()),
            "http" if loopback && self.settings.allow_loopback_issuers => Ok(()),
            _ => Err(OidcError::InsecureIssuer(issuer.to_owned())),
        }
    }

    /// The issuer's key `kid` for `alg`, from the cache or a fetch.
    async fn key_for(&self, issuer: &str, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, OidcError> {
        let ttl = Duration::from_secs(self.settings.jwks_cache_seconds);
        let min_refetch = Duration::from_secs(self.settings.jwks_min_refetch_seconds);
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = cache.issuers.get(issuer).filter(|k| k.fetched.elapsed() < ttl);
            let key = fresh.map(|k| find_key(&k.keys, kid, alg));
            let may_fetch = cache.attempts.get(issuer).is_none_or(|at| at.elapsed() >= min_refetch);
            (key, may_fetch)
        };
        match cached {
            (Some(Some(key)), _) => return key,
            // A fresh set without the kid: a rotation, unless the issuer was asked just now.
            (Some(None), false) => return Err(OidcError::UnknownKey(kid.map(str::to_owned))),
            // No fresh set and one was fetched (or tried) just now: an issuer that is down is
            // not asked again on every request.
            (None, false) => return Err(OidcError::Fetch("the issuer's keys were fetched moments ago".into())),
            _ => {}
        }
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.attempts.insert(issuer.to_owned(), Instant::now());
        }
        let keys = self.fetch_keys(issuer).await?;
        let key = find_key(&keys, kid, alg);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.issuers.len() >= MAX_ISSUERS {
            cache.issuers.clear();
            cache.attempts.retain(|i, _| i == issuer);
        }
        cache.issuers.insert(issuer.to_owned(), IssuerKeys { keys, fetched: Instant::now() });
        key.unwrap_or_else(|| Err(OidcError::UnknownKey(kid.map(str::to_owned))))
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let fail = |e: &dyn std::fmt::Display| OidcError::Fetch(format!("{url}: {e}"));
        let response = self.http.get(url).send().await.map_err(|e| fail(&e))?;
        if !response.status().is_success() {
            return Err(fail(&response.status()));
        }
        if response.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(fail(&"the document is too large"));
        }
        let bytes = response.bytes().await.map_err(|e| fail(&e))?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(fail(&"the document is too large"));
        }
        serde_json::from_slice(&bytes).map_err(|e| fail(&e))
    }

    async fn fetch_keys(&self, issuer: &str) -> Result<JwkSet, OidcError> {
        let discovery: Discovery = self.fetch_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
        if discovery.issuer != issuer {
            return Err(OidcError::Fetch(format!("the discovery document names another issuer: {}", discovery.issuer)));
        }
        self.check_issuer_url(&discovery.jwks_uri)
            .map_err(|_| OidcError::Fetch(format!("the jwks_uri {} is not https", discovery.jwks_uri)))?;
        let keys: JwkSet = self.fetch_json(&discovery.jwks_uri).await?;
        tracing::info!(issuer, keys = keys.keys.len(), "fetched an OIDC issuer's keys");
        Ok(keys)
    }
}

/// The key of `kid` usable for `alg` (`None`: no such key; an error: a key that cannot be used).
fn find_key(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Result<DecodingKey, OidcError>> {
    use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm};
    let fits = |jwk: &&jsonwebtoken::jwk::Jwk| {
        let family = matches!(
            (&jwk.algorithm, alg),
            (AlgorithmParameters::RSA(_), Algorithm::RS256) | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
        );
        let declared = match jwk.common.key_algorithm {
            None => true,
            Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
            Some(_) => false,
        };
        family && declared && jwk.common.key_id.as_deref() == kid
    };
    let jwk = keys.keys.iter().find(fits)?;
    Some(DecodingKey::from_jwk(jwk).map_err(|e| OidcError::Invalid(format!("the issuer's key: {:?}", e.kind()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registration() -> OidcRegistration {
        serde_json::from_value(json!({
            "issuer": "https://idp.example.com", "client_id": "c", "role_claim": "groups",
            "roles": { "admins": "admin", "auditors": "auditor", "staff": "viewer" },
        }))
        .unwrap()
    }

    #[test]
    fn the_role_claim_maps_a_string_or_the_strongest_of_an_array() {
        let r = registration();
        assert_eq!(mapped_role(&json!({ "groups": "staff" }), &r), Some(ConsoleRole::Viewer));
        assert_eq!(mapped_role(&json!({ "groups": ["staff", "admins", "x"] }), &r), Some(ConsoleRole::Admin));
        assert_eq!(mapped_role(&json!({ "groups": ["x"] }), &r), None);
        assert_eq!(mapped_role(&json!({ "roles": "admins" }), &r), None);
        assert_eq!(mapped_role(&json!({ "groups": 7 }), &r), None);
    }

    #[test]
    fn jwts_are_told_apart_from_other_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt("alk_0123_abcd"));
        assert!(!looks_like_jwt("alv_eyJ2IjoxfQ.bWFj"));
        assert!(!looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0"));
    }

    #[test]
    fn unverified_claims_read_a_string_or_array_audience() {
        let token = |claims: Value| format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()));
        assert_eq!(
            unverified_claims(&token(json!({ "iss": "i", "aud": "a" }))).unwrap(),
            ("i".into(), vec!["a".into()])
        );
        assert_eq!(
            unverified_claims(&token(json!({ "iss": "i", "aud": ["a", "b"] }))).unwrap(),
            ("i".into(), vec!["a".into(), "b".into()])
        );
        assert!(unverified_claims(&token(json!({ "aud": "a" }))).is_err());
        assert!(unverified_claims(&token(json!({ "iss": "i" }))).is_err());
    }
}
