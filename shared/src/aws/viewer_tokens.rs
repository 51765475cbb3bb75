//! Viewer tokens: stateless bearer tokens an admin hands to a customer's browser (the embedded
//! console) that read the tenant's events through a pinned filter. A token is
//! `alv_<base64url payload>.<base64url MAC>`: the payload is JSON naming the tenant, subject,
//! scopes, pin, issue and expiry times and a random token id; the MAC is HMAC-SHA-256 under the
//! API keys' KMS HMAC key (`GenerateMac` / `VerifyMac`) over [`MAC_DOMAIN`] followed by the
//! payload bytes. The domain prefix keeps these MACs apart from API key MACs (which cover a
//! secret of 64 hex digits, which never starts with it), so neither can stand in for the other.
//!
//! Nothing is stored when a token is issued: the token carries everything, and its lifetime
//! (at most [`MAX_LIFETIME_SECONDS`]) is checked here on every use, whatever the payload claims.
//! Only a holder of the KMS key's `GenerateMac` permission can make one. A token revoked before it
//! expires (`DELETE /v1/viewer-tokens/{id}`) is listed in the API keys table, which the
//! authorizer reads (`ApiKeyStore::viewer_token_revoked`) once a token's MAC holds.

use crate::auth::{Caller, CredentialKind, Pin, Scope, PIN_FIELDS};
use aws_config::SdkConfig;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The prefix of every viewer token, so leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "alv_";
/// What every MAC of a viewer token starts with.
pub const MAC_DOMAIN: &[u8] = b"audit-log viewer token v1\n";
/// The longest a viewer token may live: 24 hours, checked on every use.
pub const MAX_LIFETIME_SECONDS: i64 = 86_400;
/// How far in the future an issue time may be (clock skew between instances).
const ISSUED_AT_SKEW_SECONDS: i64 = 60;
/// What the caller's key id of a viewer token starts with, before the token id.
pub const CALLER_KEY_PREFIX: &str = "viewer:";
/// Longer tokens are refused before any KMS call.
const MAX_TOKEN_CHARS: usize = 16 * 1024;

/// Why a token was refused or could not be made. Messages never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum ViewerTokenError {
    #[error("not a viewer token")]
    Malformed,
    #[error("the MAC does not match the payload")]
    BadMac,
    #[error("the token has expired")]
    Expired,
    #[error("the token claims a lifetime over 24 hours or an issue time in the future")]
    BadLifetime,
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
}

/// What a viewer token lets its holder do beyond reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewerScope {
    Read,
    Export,
}

/// The payload, as the token carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewerTokenPayload {
    /// Format version, 1.
    pub v: u8,
    pub tenant_id: Uuid,
    pub subject: String,
    pub scopes: Vec<ViewerScope>,
    pub filter: Pin,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// 128 random bits, hex: names the token in logs without revealing it.
    pub token_id: String,
}

impl ViewerTokenPayload {
    /// The scopes the token maps to: `events:read`, plus `exports` for `export`.
    pub fn api_scopes(&self) -> Vec<Scope> {
        let mut scopes = vec![Scope::EventsRead];
        if self.scopes.contains(&ViewerScope::Export) {
            scopes.push(Scope::Exports);
        }
        scopes
    }

    /// A fresh random token id.
    pub fn new_token_id() -> String {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        hex::encode(id)
    }
}

/// The KMS HMAC key viewer tokens are MAC'd with.
#[derive(Clone)]
pub struct ViewerTokenMac {
    kms: aws_sdk_kms::Client,
    mac_key_id: String,
}

impl fmt::Debug for ViewerTokenMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewerTokenMac").field("mac_key_id", &self.mac_key_id).finish_non_exhaustive()
    }
}

fn aws<E: ProvideErrorMetadata + fmt::Display>(operation: &'static str) -> impl Fn(E) -> ViewerTokenError {
    move |e| ViewerTokenError::Aws { operation, message: super::error_code(&e) }
}

fn mac_message(payload: &[u8]) -> Vec<u8> {
    [MAC_DOMAIN, payload].concat()
}

/// Splits a token into its payload bytes and MAC, checking the shape only.
fn split_token(token: &str) -> Result<(Vec<u8>, Vec<u8>), ViewerTokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(ViewerTokenError::Malformed);
    }
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(ViewerTokenError::Malformed)?;
    let (payload, mac) = rest.split_once('.').ok_or(ViewerTokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| ViewerTokenError::Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| ViewerTokenError::Malformed)?;
    if payload.is_empty() || mac.len() != 32 {
        return Err(ViewerTokenError::Malformed);
    }
    Ok((payload, mac))
}

/// Reads a payload whose MAC verified: strict JSON, known fields only, a sane pin.
fn parse_payload(bytes: &[u8]) -> Result<ViewerTokenPayload, ViewerTokenError> {
    crate::chain::strict_json::check(bytes).map_err(|_| ViewerTokenError::Malformed)?;
    let payload: ViewerTokenPayload = serde_json::from_slice(bytes).map_err(|_| ViewerTokenError::Malformed)?;
    let pin_ok = payload.filter.keys().all(|k| PIN_FIELDS.contains(&k.as_str()));
    if payload.v != 1 || payload.subject.is_empty() || payload.scopes.is_empty() || !pin_ok {
        return Err(ViewerTokenError::Malformed);
    }
    Ok(payload)
}

/// The lifetime rule, checked on every use whatever the payload claims.
fn check_lifetime(payload: &ViewerTokenPayload, now: DateTime<Utc>) -> Result<(), ViewerTokenError> {
    let lifetime = payload.expires_at - payload.issued_at;
    if lifetime <= 0 || lifetime > MAX_LIFETIME_SECONDS || payload.issued_at > now.timestamp() + ISSUED_AT_SKEW_SECONDS
    {
        return Err(ViewerTokenError::BadLifetime);
    }
    if payload.expires_at <= now.timestamp() {
        return Err(ViewerTokenError::Expired);
    }
    Ok(())
}

impl ViewerTokenMac {
    pub fn new(config: &SdkConfig, mac_key_id: impl Into<String>) -> Self {
        ViewerTokenMac { kms: aws_sdk_kms::Client::new(config), mac_key_id: mac_key_id.into() }
    }

    /// Makes the token for `payload` as given: the issuing service checks what it may contain
    /// (`service::viewer_tokens`); [`ViewerTokenMac::verify`] checks the lifetime on every use.
    pub async fn sign(&self, payload: &ViewerTokenPayload) -> Result<String, ViewerTokenError> {
        let bytes = serde_json::to_vec(payload).map_err(|_| ViewerTokenError::Malformed)?;
        let out = self
            .kms
            .generate_mac()
            .key_id(&self.mac_key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(mac_message(&bytes)))
            .send()
            .await
            .map_err(aws("KMS GenerateMac"))?;
        let mac = out.mac().map(|m| m.as_ref().to_vec()).unwrap_or_default();
        Ok(format!("{TOKEN_PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(&bytes), URL_SAFE_NO_PAD.encode(mac)))
    }

    /// Checks a bearer token: well-formed, its MAC confirmed by KMS, within its lifetime.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Caller, ViewerTokenError> {
        let (payload_bytes, mac) = split_token(token)?;
        let verified = self
            .kms
            .verify_mac()
            .key_id(&self.mac_key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(mac_message(&payload_bytes)))
            .mac(Blob::new(mac))
            .send()
            .await;
        match verified {
            Ok(out) if out.mac_valid() => {}
            Ok(_) => return Err(ViewerTokenError::BadMac),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_kms_invalid_mac_exception()) => {
                return Err(ViewerTokenError::BadMac)
            }
            Err(e) => return Err(aws("KMS VerifyMac")(e)),
        }
        let payload = parse_payload(&payload_bytes)?;
        check_lifetime(&payload, now)?;
        Ok(Caller {
            key_id: format!("{CALLER_KEY_PREFIX}{}", payload.token_id),
            tenant_id: Some(payload.tenant_id),
            scopes: payload.api_scopes(),
            kind: CredentialKind::ViewerToken,
            subject: Some(payload.subject.clone()),
            role: None,
            expires_at: DateTime::from_timestamp(payload.expires_at, 0),
            pin: Some(payload.filter),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(issued_at: i64, expires_at: i64) -> ViewerTokenPayload {
        ViewerTokenPayload {
            v: 1,
            tenant_id: Uuid::nil(),
            subject: "customer-42".into(),
            scopes: vec![ViewerScope::Read],
            filter: Pin::from([("actor_id".to_owned(), "bob".to_owned())]),
            issued_at,
            expires_at,
            token_id: "00".repeat(16),
        }
    }

    #[test]
    fn splits_only_well_formed_tokens() {
        let mac = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let body = URL_SAFE_NO_PAD.encode(b"{}");
        assert!(split_token(&format!("alv_{body}.{mac}")).is_ok());
        for bad in [
            String::new(),
            format!("{body}.{mac}"),
            format!("alk_{body}.{mac}"),
            format!("alv_{body}{mac}"),
            format!("alv_.{mac}"),
            format!("alv_{body}.{}", URL_SAFE_NO_PAD.encode([7u8; 31])),
            format!("alv_{body}=.{mac}"),
            format!("alv_{}.{mac}", "A".repeat(MAX_TOKEN_CHARS)),
        ] {
            assert!(matches!(split_token(&bad), Err(ViewerTokenError::Malformed)), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_over_a_day_or_in_the_past_are_refused() {
        let now = Utc::now();
        let t = now.timestamp();
        assert!(check_lifetime(&payload(t, t + 60), now).is_ok());
        assert!(check_lifetime(&payload(t - 100, t + MAX_LIFETIME_SECONDS - 100), now).is_ok());
        assert!(matches!(
            check_lifetime(&payload(t, t + MAX_LIFETIME_SECONDS + 1), now),
            Err(ViewerTokenError::BadLifetime)
        ));
        assert!(matches!(check_lifetime(&payload(t + 3600, t + 7200), now), Err(ViewerTokenError::BadLifetime)));
        assert!(matches!(check_lifetime(&payload(t, t), now), Err(ViewerTokenError::BadLifetime)));
        assert!(matches!(check_lifetime(&payload(t - 7200, t - 3600), now), Err(ViewerTokenError::Expired)));
    }

    #[test]
    fn payloads_are_strict_and_closed() {
        let good = serde_json::to_vec(&payload(1, 2)).unwrap();
        assert_eq!(parse_payload(&good).unwrap(), payload(1, 2));
        let mut extra: serde_json::Value = serde_json::from_slice(&good).unwrap();
        extra["admin"] = true.into();
        assert!(parse_payload(extra.to_string().as_bytes()).is_err());
        let mut bad_pin = payload(1, 2);
        bad_pin.filter.insert("tenant_id".into(), "x".into());
        assert!(parse_payload(&serde_json::to_vec(&bad_pin).unwrap()).is_err());
        let duplicate = br#"{"v":1,"v":1}"#;
        assert!(parse_payload(duplicate).is_err());
    }
}
