//! `receipts.json`: Ed25519 receipts signed with `receipt::sign_receipt` for entries of
//! `entries.json`, and tampered copies that `receipt::verify_receipt` must refuse.

use crate::{base64, entries, json_file, VectorFile};
use anyhow::{ensure, Context, Result};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use shared::chain::entry::link_entries;
use shared::chain::hash::GENESIS;
use shared::chain::receipt::{
    receipt_key_id, receipt_signing_bytes, sign_receipt, verify_receipt, Receipt, ReceiptPayload,
};

/// Seed of the service's receipt key.
pub const RECEIPT_KEY_SEED: [u8; 32] = [0x21; 32];
/// Seed of a key that is not the receipt key.
const OTHER_KEY_SEED: [u8; 32] = [0x22; 32];

#[derive(Serialize)]
struct File {
    description: &'static str,
    public_key: String,
    key_id: String,
    cases: Vec<Case>,
}

#[derive(Serialize)]
struct Case {
    name: String,
    receipt: Receipt,
    signing_bytes: String,
    valid: bool,
}

/// Changes a receipt; the second argument is the receipt of another entry.
type Tamper = fn(&mut Receipt, &Receipt) -> Result<()>;

/// The service's receipt signing key.
pub fn receipt_key() -> SigningKey {
    SigningKey::from_bytes(&RECEIPT_KEY_SEED)
}

/// The receipts of every entry of `entries.json`, in seq order.
fn signed_receipts(key: &SigningKey) -> Result<Vec<Receipt>> {
    let entries = entries::fixture_entries()?;
    let linked = link_entries(GENESIS, &entries);
    Ok(entries
        .iter()
        .zip(&linked)
        .map(|(e, l)| {
            let payload = ReceiptPayload {
                tenant_id: e.tenant_id,
                event_id: e.id,
                seq: e.seq,
                leaf_hash: l.leaf_hash,
                chain_hash: l.chain_hash,
                received_at: e.received_at,
            };
            sign_receipt(&payload, key)
        })
        .collect())
}

/// The signature with the first bit of its byte `index` flipped.
fn flip_signature(receipt: &mut Receipt, index: usize) -> Result<()> {
    use base64::Engine as _;
    let mut raw = base64::engine::general_purpose::STANDARD.decode(&receipt.sig).context("base64 signature")?;
    let byte = raw.get_mut(index).context("a 64-byte signature")?;
    *byte ^= 0x01;
    receipt.sig = base64(&raw);
    Ok(())
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let key = receipt_key();
    let verifying = key.verifying_key();
    let receipts = signed_receipts(&key)?;
    let first = receipts.first().context("at least one receipt")?.clone();
    let other_entry = receipts.get(1).context("a second receipt")?.clone();

    let mut cases: Vec<(String, Receipt)> =
        receipts.iter().map(|r| (format!("receipt_of_seq_{}", r.seq), r.clone())).collect();
    let tamper: Vec<(&str, Tamper)> = vec![
        ("changed_seq", |r, _| {
            r.seq += 1;
            Ok(())
        }),
        ("changed_tenant_id", |r, _| {
            r.tenant_id = uuid::Uuid::parse_str("01937a4c-0000-7000-8000-000000000002")?;
            Ok(())
        }),
        ("changed_event_id", |r, other| {
            r.event_id = other.event_id;
            Ok(())
        }),
        ("leaf_hash_of_another_entry", |r, other| {
            r.leaf_hash = other.leaf_hash.clone();
            Ok(())
        }),
        ("chain_hash_of_another_entry", |r, other| {
            r.chain_hash = other.chain_hash.clone();
            Ok(())
        }),
        ("leaf_hash_in_upper_case", |r, _| {
            r.leaf_hash = r.leaf_hash.to_uppercase();
            Ok(())
        }),
        ("received_at_one_microsecond_later", |r, _| {
            r.received_at = r.received_at.replacen(".000000Z", ".000001Z", 1);
            Ok(())
        }),
        ("flipped_first_signature_byte", |r, _| flip_signature(r, 0)),
        ("flipped_last_signature_byte", |r, _| flip_signature(r, 63)),
        ("signature_of_another_receipt", |r, other| {
            r.sig = other.sig.clone();
            Ok(())
        }),
        ("signed_by_another_key", |r, _| {
            let forged = sign_receipt(&payload_of(r)?, &SigningKey::from_bytes(&OTHER_KEY_SEED));
            r.sig = forged.sig;
            Ok(())
        }),
        ("names_another_key_id", |r, _| {
            r.key_id = receipt_key_id(&SigningKey::from_bytes(&OTHER_KEY_SEED).verifying_key());
            Ok(())
        }),
        ("truncated_signature", |r, _| {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD.decode(&r.sig)?;
            r.sig = base64(&raw[..63]);
            Ok(())
        }),
    ];
    for (name, change) in tamper {
        let mut tampered = first.clone();
        change(&mut tampered, &other_entry).with_context(|| format!("tampering: {name}"))?;
        ensure!(tampered != first, "case {name} changes the receipt");
        cases.push((name.to_owned(), tampered));
    }

    let mut out = Vec::new();
    for (name, receipt) in cases {
        let valid = verify_receipt(&receipt, &verifying).is_ok();
        ensure!(valid == name.starts_with("receipt_of_seq_"), "case {name}: verification gave valid = {valid}");
        let signing_bytes = String::from_utf8(receipt_signing_bytes(&receipt)).context("signing bytes are UTF-8")?;
        out.push(Case { name, receipt, signing_bytes, valid });
    }

    let file = File {
        description: "Receipts: the service's Ed25519 signature (standard base64 `sig`, 64 bytes) over the RFC 8785 \
                      form of the receipt without its `sig` member (`signing_bytes`). `public_key` is the raw \
                      32-byte public key (standard base64); `key_id` = hex of the first 8 bytes of SHA-256 of it, \
                      and a receipt naming another key id is refused. The valid receipts are those of the entries \
                      of entries.json; the tampered copies (valid = false) change one member each. `signing_bytes` \
                      of a tampered copy is recomputed from its members, so the signature does not cover it.",
        public_key: base64(verifying.as_bytes()),
        key_id: receipt_key_id(&verifying),
        cases: out,
    };
    Ok(vec![json_file("receipts.json", &file)?])
}

/// The payload a receipt states.
fn payload_of(receipt: &Receipt) -> Result<ReceiptPayload> {
    use shared::chain::hash::Hash;
    Ok(ReceiptPayload {
        tenant_id: receipt.tenant_id,
        event_id: receipt.event_id,
        seq: receipt.seq,
        leaf_hash: Hash::from_hex(&receipt.leaf_hash)?,
        chain_hash: Hash::from_hex(&receipt.chain_hash)?,
        received_at: crate::time(&receipt.received_at)?,
    })
}
