//! `checkpoints.json`: C2SP signed-note checkpoints signed with ECDSA P-256 (signed-note type
//! 0x02), assembled with `checkpoint::assemble` over the tree of the entries in `entries.json`,
//! valid ones and ones a verifier must refuse. The expected outcome of every case is checked with
//! `checkpoint::verify` before the file is written.

use crate::{base64, entries, json_file, time, VectorFile};
use anyhow::{ensure, Context, Result};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use serde::Serialize;
use shared::chain::checkpoint::{assemble, key_id_ecdsa, verifier_key, verify, Checkpoint, CheckpointError};
use shared::chain::hash::Hash;
use shared::chain::merkle::MemoryTree;

/// The name of the log's checkpoint key; the origin of a tenant's log is `<key name>/<tenant id>`.
pub const KEY_NAME: &str = "audit.example.com/log";
/// Secret scalar of the current checkpoint key.
pub const KEY_SEED: [u8; 32] = [0x42; 32];
/// Secret scalar of the key used before the last rotation.
pub const RETIRED_KEY_SEED: [u8; 32] = [0x43; 32];
/// Secret scalar of a key nobody trusts.
const UNKNOWN_KEY_SEED: [u8; 32] = [0x44; 32];
/// Secret scalar of a witness that cosigns one note.
const WITNESS_KEY_SEED: [u8; 32] = [0x45; 32];
const WITNESS_KEY_NAME: &str = "witness.example.com/w1";
/// The signing time in the timestamp extension line.
const SIGNED_AT: &str = "2026-11-24T10:05:00Z";

#[derive(Serialize)]
struct File {
    description: &'static str,
    key: KeyInfo,
    retired_key: KeyInfo,
    cases: Vec<Case>,
}

#[derive(Serialize)]
struct KeyInfo {
    key_name: &'static str,
    public_key: String,
    key_id: String,
    verifier_key: String,
}

#[derive(Serialize)]
struct Case {
    name: &'static str,
    note: String,
    keys: Vec<&'static str>,
    valid: bool,
    origin: Option<String>,
    tree_size: Option<u64>,
    root: Option<String>,
    error: Option<&'static str>,
}

/// A P-256 key from its fixed secret scalar.
pub fn signing_key(seed: &[u8; 32]) -> Result<SigningKey> {
    SigningKey::from_slice(seed).context("a valid P-256 scalar")
}

/// The DER SubjectPublicKeyInfo of a key's public half.
pub fn spki(key: &SigningKey) -> Result<Vec<u8>> {
    Ok(key.verifying_key().to_public_key_der().context("encoding the public key")?.as_bytes().to_vec())
}

/// The origin line of the tenant log of the vectors.
pub fn origin() -> String {
    format!("{KEY_NAME}/{}", entries::TENANT_ID)
}

/// The word a case's `error` uses for a refusal: `signature` when a signature by a trusted key
/// does not verify, `no_signature` when no signature line names a trusted key (name and key ID),
/// `malformed` for every other refusal (note or checkpoint text that does not parse).
pub fn error_word(error: &CheckpointError) -> &'static str {
    match error {
        CheckpointError::InvalidSignature { .. } => "signature",
        CheckpointError::NoSignatureByKey { .. } => "no_signature",
        _ => "malformed",
    }
}

/// Verifies a note against several trusted keys that share a key name (the current key and
/// retired ones): each signature line is judged by the key its key ID names, so the note is valid
/// when one trusted key verifies it, and a key that finds no signature of its own defers to the
/// others.
pub fn verify_with_trusted(note: &str, key_name: &str, trusted: &[Vec<u8>]) -> Result<Checkpoint, CheckpointError> {
    let mut last = None;
    for spki_der in trusted {
        match verify(note, key_name, spki_der) {
            Ok(checkpoint) => return Ok(checkpoint),
            Err(error @ CheckpointError::NoSignatureByKey { .. }) => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or(CheckpointError::NoSignatureByKey { key_name: key_name.to_owned(), key_id: String::new() }))
}

fn key_info(key: &SigningKey) -> Result<KeyInfo> {
    let spki_der = spki(key)?;
    Ok(KeyInfo {
        key_name: KEY_NAME,
        public_key: base64(&spki_der),
        key_id: hex::encode(key_id_ecdsa(&spki_der)),
        verifier_key: verifier_key(KEY_NAME, &spki_der).map_err(anyhow::Error::msg)?,
    })
}

fn der_signature(key: &SigningKey, text: &str) -> Vec<u8> {
    let signature: Signature = key.sign(text.as_bytes());
    signature.to_der().as_bytes().to_vec()
}

/// The signed note of `checkpoint` with one signature by `key` under `key_name`.
pub(crate) fn signed_note(key: &SigningKey, key_name: &str, checkpoint: &Checkpoint) -> Result<String> {
    let key_id = key_id_ecdsa(&spki(key)?);
    let signed = assemble(checkpoint.clone(), key_name, key_id, der_signature(key, &checkpoint.body()))
        .map_err(anyhow::Error::msg)?;
    Ok(signed.note)
}

/// A note whose text `assemble` would refuse, signed properly: the signature verifies, so only the
/// strict parse of the text can refuse it.
fn signed_malformed_text(key: &SigningKey, text: &str) -> Result<String> {
    let mut field = key_id_ecdsa(&spki(key)?).to_vec();
    field.extend(der_signature(key, text));
    Ok(format!("{text}\n\u{2014} {KEY_NAME} {}\n", base64(&field)))
}

fn replace_once(note: &str, from: &str, to: &str) -> Result<String> {
    ensure!(note.contains(from), "the note contains {from:?}");
    Ok(note.replacen(from, to, 1))
}

/// The note with the last byte of the signature of its first signature line flipped.
fn flip_signature_byte(note: &str) -> Result<String> {
    use base64::Engine as _;
    let (text, line) = note.split_once("\n\n").context("a blank line")?;
    let (prefix, encoded) = line.trim_end_matches('\n').rsplit_once(' ').context("a signature line")?;
    let mut field = base64::engine::general_purpose::STANDARD.decode(encoded).context("base64")?;
    let last = field.last_mut().context("a signature")?;
    *last ^= 0x01;
    Ok(format!("{text}\n\n{prefix} {}\n", base64(&field)))
}

fn tree_roots() -> Result<Vec<Hash>> {
    let leaves: Vec<Hash> = entries::fixture_entries()?.iter().map(|e| e.leaf_hash()).collect();
    let mut tree = MemoryTree::new();
    let mut roots = vec![tree.root()];
    for leaf in &leaves {
        roots.push(tree.append(std::slice::from_ref(leaf))?);
    }
    Ok(roots)
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let key = signing_key(&KEY_SEED)?;
    let retired = signing_key(&RETIRED_KEY_SEED)?;
    let unknown = signing_key(&UNKNOWN_KEY_SEED)?;
    let witness = signing_key(&WITNESS_KEY_SEED)?;
    let roots = tree_roots()?;
    let signed_at = u64::try_from(time(SIGNED_AT)?.timestamp()).context("a time after 1970")?;
    let full = Checkpoint::new(origin(), 10, roots[10]).with_timestamp(signed_at);
    let half = Checkpoint::new(origin(), 5, roots[5]);
    let earlier = Checkpoint::new(origin(), 3, roots[3]).with_timestamp(signed_at - 300);

    let good = signed_note(&key, KEY_NAME, &full)?;
    let witness_note = signed_note(&witness, WITNESS_KEY_NAME, &full)?;
    let witness_line = witness_note.rsplit_once("\n\n").context("a blank line")?.1;
    let retired_note = signed_note(&retired, KEY_NAME, &earlier)?;
    let root_10 = base64(&roots[10].0);
    let root_9 = base64(&roots[9].0);
    let forged = {
        let key_id = key_id_ecdsa(&spki(&key)?);
        let signature = der_signature(&unknown, &full.body());
        assemble(full.clone(), KEY_NAME, key_id, signature).map_err(anyhow::Error::msg)?.note
    };
    let valid_body = full.body();

    let current = &["key"][..];
    let both = &["key", "retired_key"][..];
    let (valid, signature, no_signature, malformed) =
        (None, Some("signature"), Some("no_signature"), Some("malformed"));
    let changed_timestamp =
        replace_once(&good, &format!("timestamp {signed_at}"), &format!("timestamp {}", signed_at + 1))?;
    // (name, note, trusted keys, expected error word or None for a valid note)
    let cases: Vec<(&'static str, String, &[&'static str], Option<&'static str>)> = vec![
        ("signed_checkpoint_with_timestamp", good.clone(), current, valid),
        ("signed_checkpoint_without_extension_lines", signed_note(&key, KEY_NAME, &half)?, current, valid),
        ("cosigned_by_a_witness_whose_signature_is_ignored", format!("{good}{witness_line}"), current, valid),
        ("signed_by_the_retired_key_trusted_beside_the_current_one", retired_note.clone(), both, valid),
        ("changed_tree_size", replace_once(&good, "\n10\n", "\n11\n")?, current, signature),
        ("changed_root", replace_once(&good, &root_10, &root_9)?, current, signature),
        ("changed_timestamp", changed_timestamp, current, signature),
        ("flipped_signature_byte", flip_signature_byte(&good)?, current, signature),
        ("signature_by_another_key_under_the_trusted_name_and_key_id", forged, current, signature),
        ("signed_only_by_an_unknown_key", signed_note(&unknown, KEY_NAME, &full)?, current, no_signature),
        ("signed_by_the_retired_key_when_only_the_current_key_is_trusted", retired_note, current, no_signature),
        ("signed_under_another_key_name", signed_note(&key, "audit.example.com/other", &full)?, current, no_signature),
        ("missing_blank_line", replace_once(&good, "\n\n\u{2014}", "\n\u{2014}")?, current, malformed),
        ("signature_line_without_em_dash", replace_once(&good, "\u{2014} ", "- ")?, current, malformed),
        ("signature_line_without_final_newline", good.trim_end_matches('\n').to_owned(), current, malformed),
        ("carriage_return_line_endings", good.replace('\n', "\r\n"), current, malformed),
        (
            "signed_text_with_leading_zero_in_tree_size",
            signed_malformed_text(&key, &valid_body.replacen("\n10\n", "\n010\n", 1))?,
            current,
            malformed,
        ),
        (
            "signed_text_with_root_in_hex",
            signed_malformed_text(&key, &valid_body.replacen(&root_10, &roots[10].to_hex(), 1))?,
            current,
            malformed,
        ),
        (
            "signed_text_without_root_line",
            signed_malformed_text(&key, &format!("{}\n10\n", origin()))?,
            current,
            malformed,
        ),
        (
            "signed_text_with_empty_extension_line",
            signed_malformed_text(&key, &format!("{valid_body}\n"))?,
            current,
            malformed,
        ),
    ];

    let trusted = |names: &[&str]| -> Result<Vec<Vec<u8>>> {
        names.iter().map(|&name| spki(if name == "key" { &key } else { &retired })).collect()
    };
    let mut out = Vec::new();
    for (name, note, keys, expected_error) in cases {
        let result = verify_with_trusted(&note, KEY_NAME, &trusted(keys)?);
        let error = result.as_ref().err().map(error_word);
        ensure!(error == expected_error, "case {name}: expected {expected_error:?}, verification gave {result:?}");
        out.push(match result {
            Ok(checkpoint) => Case {
                name,
                note,
                keys: keys.to_vec(),
                valid: true,
                origin: Some(checkpoint.origin),
                tree_size: Some(checkpoint.size),
                root: Some(checkpoint.root.to_hex()),
                error: None,
            },
            Err(error) => Case {
                name,
                note,
                keys: keys.to_vec(),
                valid: false,
                origin: None,
                tree_size: None,
                root: None,
                error: Some(error_word(&error)),
            },
        });
    }

    let file = File {
        description: "C2SP signed-note checkpoints (c2sp.org/tlog-checkpoint, signed-note type 0x02: ECDSA P-256, \
                      key ID = first 4 bytes of SHA-256(DER SPKI), signature = DER ECDSA-Sig-Value over SHA-256 of \
                      the note text including its final newline). `public_key` is the standard base64 DER \
                      SubjectPublicKeyInfo, `key_id` its key ID in hex, `verifier_key` the Go sumdb/note verifier \
                      string. Verify each `note` trusting the keys its `keys` names (`key`, and `retired_key` where \
                      listed; both have the key name `key_name`): a signature line counts for a trusted key when \
                      both its key name and its key ID match; signature lines of other keys are ignored; every \
                      signature line of a trusted key must verify and at least one must exist; the text must then \
                      parse strictly (origin, tree size in decimal without leading zeros, padded base64 of a 32-byte \
                      root, non-empty extension lines, every line ending in \\n, no other control characters). Valid \
                      cases give the parsed `origin`, `tree_size` and `root` (hex). Invalid cases give `error`: \
                      `signature` = a signature line of a trusted key does not verify; `no_signature` = no \
                      signature line names a trusted key (name and key ID); `malformed` = the note or its text \
                      does not parse (no blank line, a bad signature line, a bad checkpoint body, a carriage \
                      return). A verifier whose errors are finer maps them onto these three words.",
        key: key_info(&key)?,
        retired_key: key_info(&retired)?,
        cases: out,
    };
    Ok(vec![json_file("checkpoints.json", &file)?])
}
