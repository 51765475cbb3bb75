//! `run_vectors` through the JSON API on the committed test vectors: every case passes, and a
//! changed vector is reported as a failed case rather than passing unnoticed.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::Path;

fn vector_files() -> serde_json::Map<String, Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/v1");
    console_verifier::vectors::FILES
        .iter()
        .map(|name| (name.to_string(), Value::String(std::fs::read_to_string(dir.join(name)).unwrap())))
        .collect()
}

fn run(files: serde_json::Map<String, Value>) -> Value {
    let input = serde_json::to_vec(&json!({ "files": files })).unwrap();
    serde_json::from_slice(&console_verifier::run_vectors_json(&input)).unwrap()
}

#[test]
fn every_case_of_every_vector_file_passes() {
    let report = run(vector_files());
    let failed: Vec<&Value> = report["cases"].as_array().unwrap().iter().filter(|c| c["pass"] != true).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(report["failed"], 0);
    assert!(report["passed"].as_u64().unwrap() > 500, "{}", report["passed"]);
    assert_eq!(report["files"].as_array().unwrap().len(), console_verifier::vectors::FILES.len());
    for file in console_verifier::vectors::FILES {
        let cases = report["cases"].as_array().unwrap().iter().filter(|c| c["file"] == file).count();
        assert!(cases > 0, "{file} ran no case");
    }
}

#[test]
fn a_changed_vector_is_a_failed_case() {
    let mut files = vector_files();
    let mut changed: Value = serde_json::from_str(files["entries.json"].as_str().unwrap()).unwrap();
    let leaf = changed["entries"][0]["leaf_hash"].as_str().unwrap().to_owned();
    let flipped = format!("{}{}", if leaf.starts_with('0') { "1" } else { "0" }, &leaf[1..]);
    changed["entries"][0]["leaf_hash"] = json!(flipped);
    files.insert("entries.json".into(), changed);
    files.insert("unknown.json".into(), json!({}));
    let report = run(files);
    let failed: Vec<(String, String)> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] != true)
        .map(|c| (c["file"].as_str().unwrap().to_owned(), c["name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        failed,
        [("entries.json".to_owned(), "entry seq 0".to_owned()), ("unknown.json".to_owned(), "(file)".to_owned())]
    );
}
