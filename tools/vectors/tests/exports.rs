//! The committed export bundles of `test-vectors/v1/exports/` verify as their `expected.json`
//! says, read from disk exactly as an outside verifier reads them: the key from
//! `public_key.json`, the data object by the last part of the manifest's data key.

// A test should stop at the first unexpected value, and `expect` says where most briefly.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use shared::chain::checkpoint::verifier_key;
use shared::chain::export::{verify_export, TrustedKey};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn exports_dir() -> PathBuf {
    vectors::repository_root().join(vectors::VECTORS_DIR).join(vectors::exports::EXPORTS_DIR)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn json_of(path: &Path) -> Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn trusted_key() -> TrustedKey {
    let file = json_of(&exports_dir().join(vectors::exports::PUBLIC_KEY_FILE));
    let key_name = file["key_name"].as_str().expect("key_name").to_owned();
    let spki_der = STANDARD.decode(file["public_key"].as_str().expect("public_key")).expect("base64");
    assert_eq!(verifier_key(&key_name, &spki_der).expect("a P-256 key"), file["verifier_key"].as_str().expect("vkey"));
    TrustedKey { key_name, spki_der }
}

/// Every case folder, by name.
fn case_folders() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(exports_dir())
        .expect("the exports folder exists")
        .map(|item| item.expect("listing"))
        .filter(|item| item.file_type().expect("a type").is_dir())
        .map(|item| (item.file_name().to_string_lossy().into_owned(), item.path()))
        .collect();
    cases.sort();
    cases
}

/// What `verify_export` gives for a folder's files, in the form of `expected.json`.
fn verify_folder(folder: &Path, keys: &[TrustedKey]) -> Value {
    let manifest_bytes = read(&folder.join("manifest.json"));
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("the manifest is JSON");
    let key = manifest["data"]["key"].as_str().expect("a data key");
    let data_file = key.rsplit('/').next().expect("a file name");
    let data = read(&folder.join(data_file));
    let proof = read(&folder.join("proof.jsonl"));
    match verify_export(&manifest_bytes, &data[..], &proof[..], keys) {
        Ok(_) => json!({"valid": true}),
        Err(fault) => json!({"valid": false, "code": fault.code.as_str(), "row": fault.row, "seq": fault.seq}),
    }
}

#[test]
fn every_export_case_verifies_as_its_expected_json_says() {
    let keys = [trusted_key()];
    let cases = case_folders();
    assert!(!cases.is_empty());
    for (name, folder) in &cases {
        let expected = json_of(&folder.join("expected.json"));
        assert_eq!(verify_folder(folder, &keys), expected, "{name}");
    }
}

#[test]
fn the_export_cases_are_the_ones_the_readme_lists() {
    let expected: Vec<(&str, Value)> = vec![
        ("changed-csv-copy-column", json!({"valid": false, "code": "row_malformed", "row": 5, "seq": 4})),
        ("changed-manifest-root", json!({"valid": false, "code": "checkpoint_invalid", "row": null, "seq": null})),
        ("dropped-last-row", json!({"valid": false, "code": "row_count", "row": null, "seq": null})),
        ("duplicate-member-in-csv-event", json!({"valid": false, "code": "row_malformed", "row": 3, "seq": 2})),
        ("duplicate-member-in-event", json!({"valid": false, "code": "row_malformed", "row": 3, "seq": 2})),
        ("duplicate-member-in-manifest", json!({"valid": false, "code": "manifest_invalid", "row": null, "seq": null})),
        ("duplicate-member-in-row", json!({"valid": false, "code": "row_malformed", "row": 3, "seq": 2})),
        ("swapped-rows", json!({"valid": false, "code": "row_order", "row": 12, "seq": 10})),
        ("tampered-row-byte", json!({"valid": false, "code": "content_digest", "row": 7, "seq": 6})),
        ("unsafe-integer-in-event", json!({"valid": false, "code": "row_malformed", "row": 4, "seq": 3})),
        ("valid-csv", json!({"valid": true})),
        ("valid-csv-gzip", json!({"valid": true})),
        ("valid-empty", json!({"valid": true})),
        ("valid-filtered-jsonl", json!({"valid": true})),
        ("valid-jsonl", json!({"valid": true})),
    ];
    let cases = case_folders();
    let names: Vec<&str> = cases.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, expected.iter().map(|(name, _)| *name).collect::<Vec<_>>());
    for ((name, folder), (_, want)) in cases.iter().zip(&expected) {
        assert_eq!(json_of(&folder.join("expected.json")), *want, "{name}");
    }
}

#[test]
fn each_case_folder_holds_the_bundle_and_its_expected_result_only() {
    for (name, folder) in case_folders() {
        let manifest = json_of(&folder.join("manifest.json"));
        let key = manifest["data"]["key"].as_str().expect("a data key");
        let data_file = key.rsplit('/').next().expect("a file name");
        let want: BTreeSet<&str> = ["manifest.json", data_file, "proof.jsonl", "expected.json"].into();
        let found: Vec<String> = std::fs::read_dir(&folder)
            .expect("listing")
            .map(|item| item.expect("listing").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found.iter().map(String::as_str).collect::<BTreeSet<_>>(), want, "{name}");
        let gzip = manifest["gzip"].as_bool().expect("gzip");
        assert_eq!(data_file.ends_with(".gz"), gzip, "{name}");
    }
}

#[test]
fn the_valid_cases_cover_the_formats_a_filter_and_an_erased_entry() {
    let folder = |name: &str| exports_dir().join(name);
    let manifest = |name: &str| json_of(&folder(name).join("manifest.json"));
    assert_eq!(manifest("valid-jsonl")["rows"], 24);
    assert_eq!(manifest("valid-csv")["data_format"], "csv");
    let gzip = read(&folder("valid-csv-gzip").join("data.csv.gz"));
    let header = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff];
    let members = gzip.windows(header.len()).filter(|w| *w == header).count();
    assert!(gzip.starts_with(&header) && members >= 2, "several gzip members with no time or OS in them");
    let filtered = manifest("valid-filtered-jsonl");
    assert!(filtered["proof"]["nodes"].as_u64().expect("nodes") > 0);
    assert!(filtered["rows"].as_u64().expect("rows") < 24);
    let empty = manifest("valid-empty");
    assert_eq!((empty["rows"].clone(), empty["first_seq"].clone()), (json!(0), Value::Null));
    assert_eq!(empty["checkpoint"]["tree_size"], 24);
    let jsonl = String::from_utf8(read(&folder("valid-jsonl").join("data.jsonl"))).expect("UTF-8");
    assert_eq!(jsonl.matches(r#""erased":true,"event":null,"salt":null"#).count(), 1);
    let csv = String::from_utf8(read(&folder("valid-csv").join("data.csv"))).expect("UTF-8");
    assert!(csv.contains("\r\n") && csv.contains("\"\"") && csv.contains('\u{65e5}'), "quoting is exercised");
}

#[test]
fn the_strict_json_cases_break_only_strictness() {
    // Each is a copy of a valid bundle with one JSON text made non-strict and the data digest
    // updated, so a verifier that parsed leniently would report something else, or nothing.
    let folder = |name: &str| exports_dir().join(name);
    let text = |name: &str, file: &str| String::from_utf8(read(&folder(name).join(file))).expect("UTF-8");
    let data = text("duplicate-member-in-event", "data.jsonl");
    let row = data.lines().nth(2).expect("row 3");
    assert!(row.contains(r#""event":{"action":"document.delete","action":"document.update","#), "{row}");
    let data = text("duplicate-member-in-row", "data.jsonl");
    assert_eq!(data.lines().nth(2).expect("row 3").matches(r#""content_digest":"#).count(), 2);
    let data = text("unsafe-integer-in-event", "data.jsonl");
    assert!(data.lines().nth(3).expect("row 4").contains(r#""attempt":18446744073709551616"#));
    let data = text("duplicate-member-in-csv-event", "data.csv");
    assert!(data
        .lines()
        .nth(3)
        .expect("row 3")
        .contains(r#"{""action"":""document.delete"",""action"":""document.update"","#));
    let manifest = text("duplicate-member-in-manifest", "manifest.json");
    assert_eq!(manifest.matches(r#""action": "#).count(), 2);
    for name in [
        "duplicate-member-in-event",
        "duplicate-member-in-row",
        "unsafe-integer-in-event",
        "duplicate-member-in-csv-event",
    ] {
        let manifest = json_of(&folder(name).join("manifest.json"));
        let key = manifest["data"]["key"].as_str().expect("a data key");
        let bytes = read(&folder(name).join(key.rsplit('/').next().expect("a file name")));
        assert_eq!(manifest["data"]["bytes"], bytes.len(), "{name}: the manifest's data size is the changed data's");
        let digest = shared::chain::hash::sha256(&[&bytes]).to_hex();
        assert_eq!(manifest["data"]["sha256"], digest, "{name}: the manifest's data digest is the changed data's");
    }
}
