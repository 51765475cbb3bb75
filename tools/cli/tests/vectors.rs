//! `auditlog verify-export` on every case of `test-vectors/v1/exports/` (when that folder
//! exists), compared with the case's `expected.json`, so the CLI reports each committed bundle
//! exactly as the other verifiers must.
//!
//! The layout read here: one folder per case holding the bundle's files and `expected.json`
//! (`{"valid":true}` or `{"valid":false,"code":..,"row":..,"seq":..}`, optionally under an
//! `expected` member). The trusted key is taken from the first of: `expected.json`'s
//! `public_key`/`verifier_key`/`key` member, a key file in the case folder, or a key file in
//! `exports/` itself (`public-key.json`, `key.json`, `public_key.pem`, ...).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/v1/exports")
}

/// A key file among `dir`'s files, by name.
fn key_file(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    names.into_iter().find(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        p.is_file() && (name.contains("key") || name.ends_with(".pem")) && !name.starts_with("manifest")
    })
}

/// The `--public-key` value for a case.
fn key_for(case: &Path, expected: &Value) -> Option<String> {
    for member in ["verifier_key", "public_key", "key"] {
        match expected.get(member) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(v @ Value::Object(_)) => {
                let path = std::env::temp_dir().join(format!("auditlog-vector-key-{}.json", std::process::id()));
                std::fs::write(&path, v.to_string()).ok()?;
                return Some(path.to_str()?.to_owned());
            }
            _ => {}
        }
    }
    key_file(case).or_else(|| key_file(case.parent()?)).and_then(|p| p.to_str().map(str::to_owned))
}

#[test]
fn every_export_vector_is_reported_as_expected() {
    let dir = vectors_dir();
    if !dir.is_dir() {
        println!("skipped: {} does not exist (yet)", dir.display());
        return;
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the vectors folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    cases.sort();
    if cases.is_empty() {
        println!("skipped: no case folder with an expected.json under {}", dir.display());
        return;
    }
    let mut failures = Vec::new();
    for case in &cases {
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).expect("read"))
            .expect("expected.json is JSON");
        let expected = raw.get("expected").cloned().unwrap_or_else(|| raw.clone());
        let Some(key) = key_for(case, &raw) else {
            failures.push(format!("{}: no public key found for the case", case.display()));
            continue;
        };
        let out = auditlog(&["verify-export", case.to_str().expect("path"), "--public-key", &key, "--json"]);
        let got: Value = match serde_json::from_str(stdout(&out).trim()) {
            Ok(v) => v,
            Err(_) => {
                failures.push(format!("{}: exit {:?}, no JSON: {}", case.display(), out.status.code(), stderr(&out)));
                continue;
            }
        };
        let valid = expected.get("valid").and_then(Value::as_bool).unwrap_or(expected.get("code").is_none());
        let mut same = got["valid"] == Value::Bool(valid) && code(&out) == if valid { 0 } else { 1 };
        for member in ["code", "row", "seq"] {
            if let Some(want) = expected.get(member) {
                same &= got[member] == *want;
            }
        }
        if !same {
            failures.push(format!("{}: expected {expected}, got {got}", case.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    println!("{} export vectors checked", cases.len());
}

#[test]
fn the_export_vectors_include_the_strict_json_cases() {
    let dir = vectors_dir();
    for name in [
        "duplicate-member-in-event",
        "duplicate-member-in-row",
        "unsafe-integer-in-event",
        "duplicate-member-in-csv-event",
        "duplicate-member-in-manifest",
    ] {
        assert!(dir.join(name).join("expected.json").is_file(), "{name} is a case the test above runs");
    }
}
