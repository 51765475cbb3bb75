//! `run_vectors`: the shared test vectors (`test-vectors/v1/*.json`, see test-vectors/README.md)
//! run through this build of the chain core, each case reported pass or fail, so a browser test
//! can show that the WebAssembly module computes what the Rust code does.
//!
//! The input names each file by its name (`"merkle.json"`) and gives its text (or its parsed
//! JSON). The files are read leniently on purpose: `strict-json.json` holds inputs that strict
//! JSON refuses, written with escapes the file's own reader must accept.

use crate::chain::canonical::{content_bytes, jcs, signing_bytes};
use crate::chain::entry::{content_digest, Entry};
use crate::chain::event::{parse_event_value, parse_timestamp};
use crate::chain::hash::{chain_link, Hash, GENESIS};
use crate::chain::merkle::{verify_consistency, verify_inclusion, CompactRange};
use crate::chain::publisher::{parse_public_key, verify_publisher_signature};
use crate::chain::receipt::{receipt_key_id, receipt_signing_bytes, verify_receipt, Receipt};
use crate::chain::strict_json;
use crate::keys::{parse_verifier_key, verify_note};
use crate::ApiError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The vector files this runner knows, in the order it runs them.
pub const FILES: [&str; 7] = [
    "canonical.json",
    "strict-json.json",
    "events.json",
    "entries.json",
    "merkle.json",
    "checkpoints.json",
    "receipts.json",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorInput {
    files: BTreeMap<String, Value>,
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub pass: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every case of every file given. A file that does not read, or that holds no cases, is one
/// failed case of its own, so nothing passes by being skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VectorReport {
    pub files: Vec<String>,
    pub cases: Vec<CaseResult>,
    pub passed: usize,
    pub failed: usize,
}

pub fn run_vectors_bytes(input: &[u8]) -> Result<VectorReport, ApiError> {
    let input: VectorInput = serde_json::from_slice(input)?;
    let mut report = Cases::default();
    for (name, content) in &input.files {
        let file = match content {
            Value::String(text) => serde_json::from_str::<Value>(text),
            other => Ok(other.clone()),
        };
        let before = report.cases.len();
        let outcome = match file {
            Err(e) => Err(format!("the file does not parse: {e}")),
            Ok(file) => match name.as_str() {
                "canonical.json" => canonical(&file, &mut report.at(name)),
                "strict-json.json" => strict(&file, &mut report.at(name)),
                "events.json" => events(&file, &mut report.at(name)),
                "entries.json" => entries(&file, &mut report.at(name)),
                "merkle.json" => merkle(&file, &mut report.at(name)),
                "checkpoints.json" => checkpoints(&file, &mut report.at(name)),
                "receipts.json" => receipts(&file, &mut report.at(name)),
                _ => Err(format!("no runner for this file; known: {}", FILES.join(", "))),
            },
        };
        if let Err(message) = outcome {
            report.at(name).fail("(file)", message);
        } else if report.cases.len() == before {
            report.at(name).fail("(file)", "the file holds no cases".into());
        }
    }
    let failed = report.cases.iter().filter(|c| !c.pass).count();
    Ok(VectorReport {
        files: input.files.keys().cloned().collect(),
        passed: report.cases.len() - failed,
        failed,
        cases: report.cases,
    })
}

#[derive(Default)]
struct Cases {
    cases: Vec<CaseResult>,
}

impl Cases {
    fn at<'a>(&'a mut self, file: &'a str) -> FileCases<'a> {
        FileCases { cases: &mut self.cases, file }
    }
}

struct FileCases<'a> {
    cases: &'a mut Vec<CaseResult>,
    file: &'a str,
}

impl FileCases<'_> {
    /// Records a case: `check` returns `Err(message)` when the case fails.
    fn case(&mut self, name: impl Into<String>, check: impl FnOnce() -> Result<(), String>) {
        let result = check();
        self.cases.push(CaseResult {
            file: self.file.to_owned(),
            name: name.into(),
            pass: result.is_ok(),
            message: result.err(),
        });
    }

    fn fail(&mut self, name: &str, message: String) {
        self.case(name, || Err(message));
    }
}

type FileResult = Result<(), String>;

fn str_of<'a>(value: &'a Value, key: &str) -> Result<&'a str, String> {
    value[key].as_str().ok_or_else(|| format!("{key} is not a string"))
}

fn u64_of(value: &Value, key: &str) -> Result<u64, String> {
    value[key].as_u64().ok_or_else(|| format!("{key} is not an integer"))
}

fn array_of<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    value[key].as_array().ok_or_else(|| format!("{key} is not an array"))
}

fn hash_of(value: &Value, key: &str) -> Result<Hash, String> {
    Hash::from_hex(str_of(value, key)?).map_err(|e| format!("{key}: {e}"))
}

fn hashes_of(value: &Value, key: &str) -> Result<Vec<Hash>, String> {
    array_of(value, key)?
        .iter()
        .map(|h| h.as_str().and_then(|s| Hash::from_hex(s).ok()).ok_or_else(|| format!("{key} holds a bad hash")))
        .collect()
}

fn base64_of(value: &Value, key: &str) -> Result<Vec<u8>, String> {
    BASE64.decode(str_of(value, key)?).map_err(|e| format!("{key}: {e}"))
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> FileResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

fn name_of(case: &Value) -> String {
    case["name"].as_str().unwrap_or("(unnamed)").to_owned()
}

fn canonical(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    for case in array_of(file, "cases")? {
        out.case(name_of(case), || {
            let input: Value = serde_json::from_str(str_of(case, "input")?).map_err(|e| e.to_string())?;
            let got = String::from_utf8(jcs(&input)).map_err(|e| e.to_string())?;
            expect_eq("canonical", got.as_str(), str_of(case, "canonical")?)
        });
    }
    Ok(())
}

fn strict(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    for case in array_of(file, "cases")? {
        out.case(name_of(case), || {
            let verdict = strict_json::check(str_of(case, "input")?.as_bytes());
            match (case["valid"].as_bool(), verdict) {
                (Some(true), Ok(())) => Ok(()),
                (Some(true), Err(e)) => Err(format!("refused: {e}")),
                (Some(false), Ok(())) => Err("accepted, but it is not strict JSON".into()),
                (Some(false), Err(e)) => {
                    expect_eq("error", e.kind.as_str(), str_of(case, "error")?)?;
                    expect_eq("path", e.path.map_or(Value::Null, Value::String), case["path"].clone())
                }
                (None, _) => Err("valid is not a boolean".into()),
            }
        });
    }
    Ok(())
}

fn events(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    let publisher = &file["publisher"];
    for case in array_of(file, "cases")? {
        out.case(name_of(case), || {
            let received_at = parse_timestamp(str_of(case, "received_at")?)?;
            let event = parse_event_value(&case["input"])
                .and_then(|e| e.validate(received_at))
                .map_err(|e| format!("the event is refused: {e}"))?;
            let content = content_bytes(&event).map_err(|e| e.to_string())?;
            expect_eq("content", content.as_slice(), str_of(case, "content")?.as_bytes())?;
            expect_eq("signing bytes", signing_bytes(&event).as_slice(), str_of(case, "signing_bytes")?.as_bytes())?;
            expect_eq(
                "content digest",
                content_digest(&base64_of(case, "salt")?, &content),
                hash_of(case, "content_digest")?,
            )?;
            if event.signature.is_some() {
                let key = parse_public_key(&base64_of(publisher, "public_key")?).map_err(|e| e.to_string())?;
                verify_publisher_signature(&event, &key).map_err(|e| format!("publisher signature: {e}"))?;
            }
            Ok(())
        });
    }
    for case in array_of(publisher, "cases")? {
        out.case(format!("publisher {}", name_of(case)), || {
            let received_at = parse_timestamp("2026-11-24T10:00:00Z")?;
            let mut event = parse_event_value(&case["event"])
                .and_then(|e| e.validate(received_at))
                .map_err(|e| format!("the event is refused: {e}"))?;
            expect_eq("signing bytes", signing_bytes(&event).as_slice(), str_of(case, "signing_bytes")?.as_bytes())?;
            event.signature = Some(crate::chain::event::PublisherSignature {
                key_id: str_of(publisher, "key_id")?.to_owned(),
                alg: "ed25519".into(),
                sig: str_of(case, "signature")?.to_owned(),
            });
            let key = parse_public_key(&base64_of(publisher, "public_key")?).map_err(|e| e.to_string())?;
            verify_publisher_signature(&event, &key).map_err(|e| format!("signature: {e}"))?;
            event.action.push_str(".changed");
            match verify_publisher_signature(&event, &key) {
                Ok(()) => Err("the signature also verifies a changed event".into()),
                Err(_) => Ok(()),
            }
        });
    }
    Ok(())
}

fn entries(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    for e in array_of(file, "entries")? {
        out.case(format!("entry seq {}", e["seq"]), || {
            let entry = Entry {
                tenant_id: Uuid::parse_str(str_of(e, "tenant_id")?).map_err(|e| e.to_string())?,
                seq: u64_of(e, "seq")?,
                id: Uuid::parse_str(str_of(e, "id")?).map_err(|e| e.to_string())?,
                received_at: parse_timestamp(str_of(e, "received_at")?)?,
                content_digest: hash_of(e, "content_digest")?,
            };
            expect_eq("canonical entry", entry.canonical_bytes().as_slice(), str_of(e, "canonical_entry")?.as_bytes())?;
            expect_eq("leaf hash", entry.leaf_hash(), hash_of(e, "leaf_hash")?)
        });
    }
    let mut previous = GENESIS;
    for link in array_of(file, "chain")? {
        out.case(format!("chain seq {}", link["seq"]), || {
            previous = chain_link(&previous, &hash_of(link, "leaf_hash")?);
            expect_eq("chain hash", previous, hash_of(link, "chain_hash")?)
        });
    }
    Ok(())
}

fn merkle(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    let leaves = hashes_of(file, "leaves")?;
    let mut roots = BTreeMap::new();
    let mut compact = CompactRange::default();
    let mut pushed = 0u64;
    for r in array_of(file, "roots")? {
        let size = u64_of(r, "size")?;
        let root = hash_of(r, "root")?;
        roots.insert(size, root);
        out.case(format!("root of size {size}"), || {
            while pushed < size {
                let leaf = leaves.get(pushed as usize).ok_or("more roots than leaves")?;
                compact.push(*leaf);
                pushed += 1;
            }
            expect_eq("size", compact.size(), size)?;
            expect_eq("root", compact.root(), root)
        });
    }
    let root_at = |size: u64| roots.get(&size).copied().ok_or_else(|| format!("no root of size {size}"));
    for p in array_of(file, "inclusion")? {
        out.case(format!("inclusion of {} in {}", p["index"], p["size"]), || {
            let (index, size) = (u64_of(p, "index")?, u64_of(p, "size")?);
            let leaf = leaves.get(index as usize).ok_or("index beyond the leaves")?;
            verify_inclusion(leaf, index, size, &hashes_of(p, "path")?, &root_at(size)?).map_err(|e| e.to_string())
        });
    }
    for p in array_of(file, "consistency")? {
        out.case(format!("consistency from {} to {}", p["old_size"], p["new_size"]), || {
            let (old, new) = (u64_of(p, "old_size")?, u64_of(p, "new_size")?);
            verify_consistency(old, new, &root_at(old)?, &root_at(new)?, &hashes_of(p, "proof")?)
                .map_err(|e| e.to_string())
        });
    }
    for p in array_of(file, "invalid")? {
        out.case(format!("invalid {}", name_of(p)), || {
            let result = match str_of(p, "kind")? {
                "inclusion" => {
                    let index = u64_of(p, "index")?;
                    let leaf = match p.get("leaf_hash") {
                        Some(_) => hash_of(p, "leaf_hash")?,
                        None => leaves.get(index as usize).copied().unwrap_or_default(),
                    };
                    verify_inclusion(&leaf, index, u64_of(p, "size")?, &hashes_of(p, "path")?, &hash_of(p, "root")?)
                }
                "consistency" => verify_consistency(
                    u64_of(p, "old_size")?,
                    u64_of(p, "new_size")?,
                    &hash_of(p, "old_root")?,
                    &hash_of(p, "new_root")?,
                    &hashes_of(p, "proof")?,
                ),
                other => return Err(format!("unknown kind {other:?}")),
            };
            match result {
                Ok(()) => Err("accepted, but it must be rejected".into()),
                Err(_) => Ok(()),
            }
        });
    }
    Ok(())
}

fn checkpoints(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    let mut keys = BTreeMap::new();
    for which in ["key", "retired_key"] {
        let key = &file[which];
        out.case(format!("{which} verifier key"), || {
            let parsed = parse_verifier_key(str_of(key, "verifier_key")?)?;
            expect_eq("key name", parsed.key_name.as_str(), str_of(key, "key_name")?)?;
            expect_eq("public key", parsed.spki_der.clone(), base64_of(key, "public_key")?)?;
            expect_eq(
                "key id",
                hex::encode(crate::chain::checkpoint::key_id_ecdsa(&parsed.spki_der)),
                str_of(key, "key_id")?.to_owned(),
            )?;
            keys.insert(which, parsed);
            Ok(())
        });
    }
    for case in array_of(file, "cases")? {
        out.case(name_of(case), || {
            let trusted = match case.get("keys") {
                Some(names) => names
                    .as_array()
                    .ok_or("keys is not an array")?
                    .iter()
                    .map(|n| n.as_str().and_then(|n| keys.get(n)).cloned().ok_or_else(|| format!("unknown key {n}")))
                    .collect::<Result<Vec<_>, _>>()?,
                None => vec![keys.get("key").cloned().ok_or("the key did not parse")?],
            };
            match (case["valid"].as_bool(), verify_note(str_of(case, "note")?, &trusted)) {
                (Some(true), Ok(v)) => {
                    expect_eq("origin", v.checkpoint.origin.as_str(), str_of(case, "origin")?)?;
                    expect_eq("tree size", v.checkpoint.size, u64_of(case, "tree_size")?)?;
                    expect_eq("root", v.checkpoint.root, hash_of(case, "root")?)
                }
                (Some(true), Err(f)) => Err(format!("refused: {f:?}")),
                (Some(false), Ok(_)) => Err("verified, but it must be refused".into()),
                (Some(false), Err(f)) => expect_eq("error", f.word(), str_of(case, "error")?),
                (None, _) => Err("valid is not a boolean".into()),
            }
        });
    }
    Ok(())
}

fn receipts(file: &Value, out: &mut FileCases<'_>) -> FileResult {
    let raw: [u8; 32] = base64_of(file, "public_key")?.try_into().map_err(|_| "the public key is not 32 bytes")?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|e| e.to_string())?;
    out.case("key id", || expect_eq("key id", receipt_key_id(&key), str_of(file, "key_id")?.to_owned()));
    for case in array_of(file, "cases")? {
        out.case(name_of(case), || {
            let receipt: Receipt = serde_json::from_value(case["receipt"].clone()).map_err(|e| e.to_string())?;
            expect_eq(
                "signing bytes",
                receipt_signing_bytes(&receipt).as_slice(),
                str_of(case, "signing_bytes")?.as_bytes(),
            )?;
            match (case["valid"].as_bool(), verify_receipt(&receipt, &key)) {
                (Some(true), Ok(())) | (Some(false), Err(_)) => Ok(()),
                (Some(true), Err(e)) => Err(format!("refused: {e}")),
                (Some(false), Ok(())) => Err("verified, but it must be refused".into()),
                (None, _) => Err("valid is not a boolean".into()),
            }
        });
    }
    Ok(())
}
