//! Trusted checkpoint keys from the command line: every `--public-key` names one or more P-256
//! keys in one of the forms the service and its tools hand out, and [`resolve`] turns them into
//! the [`TrustedKey`]s the verifiers take.
//!
//! Accepted forms of one `--public-key` value:
//! - a verifier key string `<key name>+<key ID, 8 hex>+base64(0x02 || DER SPKI)` (given inline or
//!   in a file);
//! - a file holding a PEM public key (`-----BEGIN PUBLIC KEY-----`);
//! - a file holding the standard base64 of the DER SubjectPublicKeyInfo;
//! - a file holding the JSON of `GET /v1/checkpoints/public-key`: its current key and every
//!   retired key are trusted, all under its `key_name`.
//!
//! PEM and base64 keys carry no key name. A signed note names its key by name and key ID, and
//! the key ID is a digest of the key itself, so such a key takes the name of the note's
//! signature line whose key ID is its own. The verifiers still check the note's origin against
//! that name, and `--key-name` sets the name explicitly.

use crate::UsageError;
use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;
use shared::chain::checkpoint::{key_id_ecdsa, public_key_der_from_pem, validate_public_key, SIGNATURE_TYPE_ECDSA};
use shared::chain::export::TrustedKey;
use std::path::Path;

/// A key as given: with the name it was published under, or only its DER SPKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub key_name: Option<String>,
    pub spki_der: Vec<u8>,
}

/// Reads every `--public-key` value; a value that is neither a readable file nor a verifier key
/// string is a usage error.
pub fn load(values: &[String]) -> Result<Vec<KeySpec>> {
    let mut keys = Vec::new();
    for value in values {
        keys.extend(load_one(value)?);
    }
    Ok(keys)
}

fn load_one(value: &str) -> Result<Vec<KeySpec>> {
    let path = Path::new(value);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the public key file {value}"))
            .map_err(|e| UsageError(format!("{e:#}")))?;
        return parse_key_text(&text).map_err(|e| UsageError(format!("public key file {value}: {e:#}")).into());
    }
    if value.contains('+') {
        return parse_verifier_key(value.trim())
            .map(|key| vec![key])
            .map_err(|e| UsageError(format!("public key {value:?}: {e:#}")).into());
    }
    Err(UsageError(format!(
        "public key {value:?} is neither a file nor a verifier key string (<name>+<key id>+<base64 key>)"
    ))
    .into())
}

/// Parses the contents of a key file in any of the accepted forms.
pub fn parse_key_text(text: &str) -> Result<Vec<KeySpec>> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let json =
            crate::parse_strict_json(trimmed).map_err(|e| anyhow::anyhow!("the file looks like JSON but is {e}"))?;
        return parse_public_key_json(&json);
    }
    if trimmed.contains("-----BEGIN") {
        let spki_der = public_key_der_from_pem(trimmed).context("not a P-256 public key in PEM")?;
        return Ok(vec![KeySpec { key_name: None, spki_der }]);
    }
    if trimmed.contains('+') && !trimmed.contains('\n') && trimmed.matches('+').count() >= 2 {
        if let Ok(key) = parse_verifier_key(trimmed) {
            return Ok(vec![key]);
        }
    }
    let spki_der = BASE64
        .decode(trimmed.split_whitespace().collect::<String>())
        .context("not a verifier key string, PEM, base64 DER or the public-key JSON")?;
    validate_public_key(&spki_der).context("the base64 does not hold a P-256 SubjectPublicKeyInfo")?;
    Ok(vec![KeySpec { key_name: None, spki_der }])
}

/// The JSON of `GET /v1/checkpoints/public-key`: the current key and its `retired` keys, all
/// named `key_name`.
fn parse_public_key_json(json: &Value) -> Result<Vec<KeySpec>> {
    let key_name = json.get("key_name").and_then(Value::as_str).map(str::to_owned);
    let mut keys = vec![describe_key(json, key_name.clone()).context("the current key")?];
    if let Some(retired) = json.get("retired") {
        let retired = retired.as_array().context("`retired` is not an array")?;
        for (i, key) in retired.iter().enumerate() {
            keys.push(describe_key(key, key_name.clone()).with_context(|| format!("retired key {i}"))?);
        }
    }
    Ok(keys)
}

/// One key object of the public-key JSON: `verifier_key`, else `public_key` (base64 DER), else
/// `public_key_pem`.
fn describe_key(key: &Value, key_name: Option<String>) -> Result<KeySpec> {
    if let Some(verifier) = key.get("verifier_key").and_then(Value::as_str) {
        return parse_verifier_key(verifier);
    }
    if let Some(b64) = key.get("public_key").and_then(Value::as_str) {
        let spki_der = BASE64.decode(b64).context("`public_key` is not base64")?;
        validate_public_key(&spki_der).context("`public_key` is not a P-256 SubjectPublicKeyInfo")?;
        return Ok(KeySpec { key_name, spki_der });
    }
    if let Some(pem) = key.get("public_key_pem").and_then(Value::as_str) {
        let spki_der = public_key_der_from_pem(pem).context("`public_key_pem` is not a P-256 public key")?;
        return Ok(KeySpec { key_name, spki_der });
    }
    anyhow::bail!("no verifier_key, public_key or public_key_pem member")
}

/// Parses `<key name>+<key ID as 8 hex>+base64(0x02 || DER SPKI)` and checks that the key ID is
/// the key's.
pub fn parse_verifier_key(text: &str) -> Result<KeySpec> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("a verifier key string has three parts separated by '+'");
    };
    shared::chain::checkpoint::validate_key_name(name).context("bad key name")?;
    let id = hex::decode(id).ok().filter(|id| id.len() == 4).context("the key ID is not 8 hex digits")?;
    let material = BASE64.decode(material).context("the key is not standard base64")?;
    let Some((&kind, spki_der)) = material.split_first() else { anyhow::bail!("the key is empty") };
    if kind != SIGNATURE_TYPE_ECDSA {
        anyhow::bail!("signature type {kind:#04x} is not ECDSA P-256 (0x02)");
    }
    validate_public_key(spki_der).context("not a P-256 SubjectPublicKeyInfo")?;
    if key_id_ecdsa(spki_der)[..] != id[..] {
        anyhow::bail!("the key ID {} is not the key's ({})", hex::encode(&id), hex::encode(key_id_ecdsa(spki_der)));
    }
    Ok(KeySpec { key_name: Some(name.to_owned()), spki_der: spki_der.to_vec() })
}

/// The `(key name, key ID)` of each signature line of a signed note, in order. Lines that do not
/// parse are skipped; the note verifier reports them.
pub fn note_signers(note: &str) -> Vec<(String, [u8; 4])> {
    let Some(split) = note.rfind("\n\n") else { return Vec::new() };
    note[split + 2..]
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("\u{2014} ")?;
            let (name, signature) = rest.split_once(' ')?;
            let raw = BASE64.decode(signature).ok()?;
            let id: [u8; 4] = raw.get(..4)?.try_into().ok()?;
            Some((name.to_owned(), id))
        })
        .collect()
}

/// The trusted keys for checking `notes`: named keys as given (or renamed by `key_name`), and
/// unnamed keys under the name of the signature line with their key ID.
pub fn resolve(keys: &[KeySpec], key_name: Option<&str>, notes: &[&str]) -> Vec<TrustedKey> {
    let signers: Vec<(String, [u8; 4])> = notes.iter().flat_map(|note| note_signers(note)).collect();
    let mut trusted: Vec<TrustedKey> = Vec::new();
    for key in keys {
        let id = key_id_ecdsa(&key.spki_der);
        let name = match (key_name, &key.key_name) {
            (Some(name), _) => name.to_owned(),
            (None, Some(name)) => name.clone(),
            (None, None) => signers
                .iter()
                .find(|(_, signer_id)| *signer_id == id)
                .or(signers.first())
                .map_or_else(|| "unnamed".to_owned(), |(name, _)| name.clone()),
        };
        let key = TrustedKey { key_name: name, spki_der: key.spki_der.clone() };
        if !trusted.contains(&key) {
            trusted.push(key);
        }
    }
    trusted
}
