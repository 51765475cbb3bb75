//! Test support: a small tenant log built with the chain core, export bundles of it written to
//! disk, a fixed P-256 checkpoint key, and a helper that runs the built `auditlog` binary.

#![allow(dead_code)]

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use shared::chain::canonical::jcs;
use shared::chain::checkpoint::{assemble, key_id_ecdsa, verifier_key, Checkpoint};
use shared::chain::entry::{content_digest, link_entries, Entry, Linked, SALT_LEN};
use shared::chain::event::parse_timestamp;
use shared::chain::export::{build_bundle, Bundle, BundleInput, DataFormat, ExportRow};
use shared::chain::hash::{Hash, GENESIS};
use shared::chain::merkle::MemoryTree;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use uuid::Uuid;

pub const KEY_NAME: &str = "audit.example.com/log";
/// Rows 1, 4, 5 and 9 of a tree of 13: gaps at both ends and between rows.
pub const FILTERED: [u64; 4] = [1, 4, 5, 9];

pub fn tenant() -> Uuid {
    Uuid::parse_str("0190f6e2-0000-7000-8000-000000000001").expect("uuid")
}

pub fn origin() -> String {
    format!("{KEY_NAME}/{}", tenant())
}

pub fn signing_key(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).expect("a valid scalar")
}

pub fn spki(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_public_key_der().expect("encodable").as_bytes().to_vec()
}

/// The verifier key string of the key made from `byte`.
pub fn verifier(byte: u8) -> String {
    verifier_key(KEY_NAME, &spki(&signing_key(byte))).expect("verifier key")
}

/// A signed note of `origin`, `size` and `root`, by the key made from `byte`.
pub fn note(byte: u8, origin: &str, size: u64, root: Hash) -> String {
    let key = signing_key(byte);
    let checkpoint = Checkpoint::new(origin, size, root).with_timestamp(1_735_689_600);
    let signature: Signature = key.sign(checkpoint.body().as_bytes());
    assemble(checkpoint, KEY_NAME, key_id_ecdsa(&spki(&key)), signature.to_der().as_bytes().to_vec())
        .expect("valid input")
        .note
}

/// A tenant's whole log: entries with content, salt, leaf and chain hashes.
pub struct Log {
    pub entries: Vec<Entry>,
    pub contents: Vec<String>,
    pub salts: Vec<Vec<u8>>,
    pub linked: Vec<Linked>,
}

impl Log {
    pub fn new(size: u64) -> Self {
        let events: Vec<Value> = (0..size)
            .map(|seq| {
                json!({
                    "action": format!("user.login.{seq}"),
                    "actor": {"id": format!("u{seq}"), "type": "user"},
                    "metadata": {"n": seq},
                    "occurred_at": "2026-11-24T10:00:00.000000Z",
                    "outcome": "success",
                })
            })
            .collect();
        let contents: Vec<String> = events.iter().map(|e| String::from_utf8(jcs(e)).expect("UTF-8")).collect();
        let salts: Vec<Vec<u8>> = (0..contents.len()).map(|i| vec![i as u8; SALT_LEN]).collect();
        let start = parse_timestamp("2026-11-24T10:00:00.5Z").expect("time");
        let entries: Vec<Entry> = contents
            .iter()
            .zip(&salts)
            .enumerate()
            .map(|(i, (content, salt))| Entry {
                tenant_id: tenant(),
                seq: i as u64,
                id: Uuid::from_u128(0x0190f6e2_0000_7000_8000_000000001000 + i as u128),
                received_at: start + chrono::Duration::milliseconds(250 * i as i64),
                content_digest: content_digest(salt, content.as_bytes()),
            })
            .collect();
        let linked = link_entries(GENESIS, &entries);
        Log { entries, contents, salts, linked }
    }

    pub fn tree(&self) -> MemoryTree {
        let mut tree = MemoryTree::new();
        let leaves: Vec<Hash> = self.linked.iter().map(|l| l.leaf_hash).collect();
        tree.append(&leaves).expect("append");
        tree
    }

    /// The `GET /v1/events/{id}` JSON of one entry.
    pub fn entry_json(&self, seq: usize) -> Value {
        let e = &self.entries[seq];
        json!({
            "id": e.id,
            "tenant_id": e.tenant_id,
            "seq": e.seq,
            "received_at": shared::chain::event::format_timestamp(&e.received_at),
            "event": serde_json::from_str::<Value>(&self.contents[seq]).expect("JSON"),
            "erased": false,
            "salt": base64::engine::general_purpose::STANDARD.encode(&self.salts[seq]),
            "content_digest": e.content_digest.to_hex(),
            "leaf_hash": self.linked[seq].leaf_hash.to_hex(),
            "chain_hash": self.linked[seq].chain_hash.to_hex(),
        })
    }
}

/// A bundle of `rows` of a 13-entry log, signed by the key made from byte 7.
pub fn bundle(format: DataFormat, gzip: bool, rows: &[u64]) -> Bundle {
    let log = Log::new(13);
    let entries: Vec<ExportRow<'_>> = (0..log.entries.len())
        .map(|i| ExportRow {
            entry: &log.entries[i],
            leaf_hash: &log.linked[i].leaf_hash,
            chain_hash: &log.linked[i].chain_hash,
            content: Some(&log.contents[i]),
            salt: Some(&log.salts[i]),
        })
        .collect();
    let input = BundleInput {
        tenant_id: tenant(),
        export_id: Uuid::from_u128(42),
        created_at: "2026-11-24T11:00:00.000000Z".into(),
        completed_at: "2026-11-24T11:00:02.000000Z".into(),
        filter: json!({"action": "user.*"}).as_object().cloned().expect("object"),
        data_format: format,
        gzip,
        gzip_member_rows: 2,
        entries: &entries,
        rows,
        note: note(7, &origin(), 13, log.tree().root()),
    };
    build_bundle(&input).expect("bundle")
}

/// A fresh, empty folder under the target's test scratch space.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Writes the bundle's three files into a fresh folder, named as the manifest names them.
pub fn write_bundle(name: &str, bundle: &Bundle) -> PathBuf {
    let dir = scratch(name);
    let manifest: Value = serde_json::from_slice(&bundle.manifest).expect("manifest JSON");
    let file = |member: &str| {
        let key = manifest[member]["key"].as_str().expect("key");
        dir.join(key.rsplit('/').next().expect("name"))
    };
    std::fs::write(file("data"), &bundle.data).expect("write data");
    std::fs::write(file("proof"), &bundle.proof).expect("write proof");
    std::fs::write(dir.join("manifest.json"), &bundle.manifest).expect("write manifest");
    dir
}

/// Lines of a line-based file, without their newlines.
pub fn lines(file: &[u8]) -> Vec<String> {
    String::from_utf8(file.to_vec()).expect("UTF-8").lines().map(str::to_owned).collect()
}

pub fn join_lines(lines: &[String]) -> Vec<u8> {
    lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()
}

/// Runs `auditlog` with `args`.
pub fn auditlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(args)
        .env_remove("AUDIT_LOG_URL")
        .env_remove("AUDIT_LOG_API_KEY")
        .output()
        .expect("run auditlog")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code, with the output shown when an assertion on it fails.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or_else(|| panic!("killed by a signal: {}{}", stdout(o), stderr(o)))
}

pub fn json_out(o: &Output) -> Value {
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}
