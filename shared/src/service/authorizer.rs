//! The authorizer's decision: a bearer token in, a caller or nothing out. The token's form picks
//! the check: `alk_...` API keys (DynamoDB + KMS `VerifyMac`), `alv_...` viewer tokens (KMS
//! `VerifyMac`, then one DynamoDB read for a revocation), and JWTs (OIDC ID tokens of an issuer a
//! tenant registered, `service::oidc`). Decisions are cached in-process for a short TTL, keyed by
//! the token's SHA-256 (the token itself is never kept), so a warm authorizer answers repeated
//! requests without DynamoDB or KMS calls. A revoked key is therefore refused within the TTL, the
//! same bound API Gateway's own authorizer cache sets; a cached token is refused once it expires.

use crate::auth::Caller;
use crate::aws::api_keys::{ApiKeyError, ApiKeyStore};
use crate::aws::viewer_tokens::{ViewerTokenError, ViewerTokenMac, CALLER_KEY_PREFIX, TOKEN_PREFIX as VIEWER_PREFIX};
use crate::chain::hash::sha256;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Cached decisions beyond this many are dropped (all expired ones first, then everything).
const MAX_CACHED: usize = 10_000;

type Decision = Option<Caller>;

/// Decides requests; build once per instance.
#[derive(Debug)]
pub struct Authorizer {
    keys: ApiKeyStore,
    viewer_tokens: Option<ViewerTokenMac>,
    oidc: Option<crate::service::oidc::OidcVerifier>,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, Decision)>>,
}

impl Authorizer {
    pub fn new(keys: ApiKeyStore, cache_ttl: Duration) -> Self {
        Authorizer { keys, viewer_tokens: None, oidc: None, ttl: cache_ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// Also accepts viewer tokens MAC'd with `mac`.
    pub fn with_viewer_tokens(mut self, mac: ViewerTokenMac) -> Self {
        self.viewer_tokens = Some(mac);
        self
    }

    /// Also accepts OIDC ID tokens of the issuers tenants registered.
    pub fn with_oidc(mut self, oidc: crate::service::oidc::OidcVerifier) -> Self {
        self.oidc = Some(oidc);
        self
    }

    /// Takes the raw `Authorization` header value (`Bearer <token>`); `Some(caller)` if allowed.
    pub async fn authorize(&self, authorization: Option<&str>) -> Option<Caller> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let fingerprint = sha256(&[token.as_bytes()]).0;
        if let Some(decision) = self.cached(&fingerprint) {
            return decision;
        }
        let decision = if token.starts_with(VIEWER_PREFIX) {
            match self.check_viewer_token(token).await {
                Some(decision) => decision,
                None => return None,
            }
        } else if let (Some(oidc), true) = (&self.oidc, crate::service::oidc::looks_like_jwt(token)) {
            match oidc.verify(token).await {
                Ok(caller) => Some(caller),
                Err(e) if e.is_transient() => {
                    // Not cached: an issuer that is down for a moment must not lock its users out.
                    tracing::warn!(error = %e, "OIDC token check failed");
                    return None;
                }
                Err(e) => {
                    tracing::info!(reason = %e, "OIDC token refused");
                    None
                }
            }
        } else {
            match self.keys.authenticate(token).await {
                Ok(caller) => Some(caller),
                Err(e @ (ApiKeyError::Aws { .. } | ApiKeyError::Corrupt(_))) => {
                    // Not cached: a transient failure must not lock a valid key out for the TTL.
                    tracing::error!(error = %e, "API key check failed");
                    return None;
                }
                Err(e) => {
                    tracing::info!(reason = %e, "API key refused");
                    None
                }
            }
        };
        self.remember(fingerprint, decision.clone());
        decision
    }

    /// A viewer token's decision; `None` for a failure not to cache.
    async fn check_viewer_token(&self, token: &str) -> Option<Decision> {
        let Some(mac) = &self.viewer_tokens else {
            tracing::info!("viewer token refused: this authorizer does not accept them");
            return Some(None);
        };
        let caller = match mac.verify(token, Utc::now()).await {
            Ok(caller) => caller,
            Err(e @ ViewerTokenError::Aws { .. }) => {
                tracing::error!(error = %e, "viewer token check failed");
                return None;
            }
            Err(e) => {
                tracing::info!(reason = %e, "viewer token refused");
                return Some(None);
            }
        };
        let token_id = caller.key_id.strip_prefix(CALLER_KEY_PREFIX).unwrap_or_default();
        let Some(tenant) = caller.tenant_id else { return Some(None) };
        match self.keys.viewer_token_revoked(tenant, token_id).await {
            Ok(false) => Some(Some(caller)),
            Ok(true) => {
                tracing::info!(%tenant, token_id, "viewer token refused: revoked");
                Some(None)
            }
            Err(e) => {
                tracing::error!(error = %e, "viewer token revocation check failed");
                None
            }
        }
    }

    fn cached(&self, fingerprint: &[u8; 32]) -> Option<Decision> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        // A token's decision lasts the TTL or until the token expires, whichever is sooner.
        let live = |d: &Decision| d.as_ref().and_then(|c| c.expires_at).is_none_or(|t| t > now);
        cache.get(fingerprint).filter(|(at, d)| at.elapsed() < self.ttl && live(d)).map(|(_, d)| d.clone())
    }

    fn remember(&self, fingerprint: [u8; 32], decision: Decision) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(fingerprint, (Instant::now(), decision));
    }
}
