//! The authorizer's decision: a bearer token in, a caller or nothing out. Decisions are cached
//! in-process for a short TTL, keyed by the token's SHA-256 (the token itself is never kept), so
//! a warm authorizer answers repeated requests without DynamoDB or KMS calls. A revoked key is
//! therefore refused within the TTL, the same bound API Gateway's own authorizer cache sets.

use crate::auth::Caller;
use crate::aws::api_keys::{ApiKeyError, ApiKeyStore};
use crate::chain::hash::sha256;
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
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, Decision)>>,
}

impl Authorizer {
    pub fn new(keys: ApiKeyStore, cache_ttl: Duration) -> Self {
        Authorizer { keys, ttl: cache_ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// Takes the raw `Authorization` header value (`Bearer <token>`); `Some(caller)` if allowed.
    pub async fn authorize(&self, authorization: Option<&str>) -> Option<Caller> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let fingerprint = sha256(&[token.as_bytes()]).0;
        if let Some(decision) = self.cached(&fingerprint) {
            return decision;
        }
        let decision = match self.keys.authenticate(token).await {
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
        };
        self.remember(fingerprint, decision.clone());
        decision
    }

    fn cached(&self, fingerprint: &[u8; 32]) -> Option<Decision> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(fingerprint).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, d)| d.clone())
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
