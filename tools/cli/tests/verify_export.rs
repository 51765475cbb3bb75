//! `auditlog verify-export` on bundles built with `shared::chain::export::build_bundle`: a valid
//! bundle passes in every format, and each tampering is reported with its FORMATS.md code, row
//! and seq, as text and as JSON.

mod common;

use common::*;
use serde_json::json;
use shared::chain::checkpoint::public_key_pem;
use shared::chain::export::DataFormat;

fn verify(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let dir = dir.to_str().expect("UTF-8 path");
    let key = verifier(7);
    let mut args = vec!["verify-export", dir, "--public-key", &key];
    args.extend_from_slice(extra);
    auditlog(&args)
}

#[test]
fn valid_bundle_in_every_format_exits_0_with_a_summary() {
    for (format, gzip) in
        [(DataFormat::Jsonl, false), (DataFormat::Jsonl, true), (DataFormat::Csv, false), (DataFormat::Csv, true)]
    {
        let dir = write_bundle(&format!("valid-{format:?}-{gzip}"), &bundle(format, gzip, &FILTERED));
        let out = verify(&dir, &[]);
        assert_eq!(code(&out), 0, "{format:?} gzip={gzip}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("export valid"), "{text}");
        assert!(
            text.contains("rows       4") && text.contains("tree size  13") && text.contains("seqs       1 to 9"),
            "{text}"
        );

        let out = verify(&dir, &["--json"]);
        assert_eq!(code(&out), 0);
        let v = json_out(&out);
        assert_eq!((v["valid"].clone(), v["rows"].clone(), v["tree_size"].clone()), (json!(true), json!(4), json!(13)));
        assert_eq!(
            (v["first_seq"].clone(), v["last_seq"].clone(), v["erased"].clone()),
            (json!(1), json!(9), json!(0))
        );
        assert_eq!(v["root"].as_str().map(str::len), Some(64));
    }
}

#[test]
fn manifest_path_and_explicit_files_are_accepted() {
    let b = bundle(DataFormat::Jsonl, false, &FILTERED);
    let dir = write_bundle("explicit-files", &b);
    let elsewhere = scratch("explicit-files-elsewhere");
    std::fs::rename(dir.join("data.jsonl"), elsewhere.join("rows.jsonl")).expect("move");
    let manifest = dir.join("manifest.json");
    let data = elsewhere.join("rows.jsonl");
    let out = verify(&manifest, &["--data", data.to_str().expect("path")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Runs the tampered bundle as text and as JSON and checks the code, row and seq of both.
fn assert_fault(name: &str, b: &shared::chain::export::Bundle, code_str: &str, row: Option<u64>, seq: Option<u64>) {
    let dir = write_bundle(name, b);
    let out = verify(&dir, &[]);
    assert_eq!(code(&out), 1, "{name}: {}{}", stdout(&out), stderr(&out));
    let location = match (row, seq) {
        (Some(r), Some(s)) => format!(" at row {r} (seq {s}): "),
        _ => ": ".to_owned(),
    };
    let expected = format!("export INVALID: {code_str}{location}");
    assert!(stderr(&out).starts_with(&expected), "{name}: expected {expected:?}, got {:?}", stderr(&out));

    let out = verify(&dir, &["--json"]);
    assert_eq!(code(&out), 1);
    let v = json_out(&out);
    assert_eq!(v["valid"], json!(false), "{name}");
    assert_eq!(v["code"], json!(code_str), "{name}: {v}");
    assert_eq!(v["row"], json!(row), "{name}: {v}");
    assert_eq!(v["seq"], json!(seq), "{name}: {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}: {v}");
}

#[test]
fn one_changed_byte_in_a_row_is_content_digest_at_that_row() {
    let mut b = bundle(DataFormat::Jsonl, false, &FILTERED);
    let mut rows = lines(&b.data);
    assert!(rows[2].contains(r#""id":"u5""#), "{}", rows[2]);
    rows[2] = rows[2].replacen(r#""id":"u5""#, r#""id":"u6""#, 1);
    b.data = join_lines(&rows);
    assert_fault("changed-byte", &b, "content_digest", Some(3), Some(5));
}

#[test]
fn two_swapped_rows_are_row_order() {
    let mut b = bundle(DataFormat::Jsonl, false, &FILTERED);
    let mut rows = lines(&b.data);
    rows.swap(1, 2);
    b.data = join_lines(&rows);
    assert_fault("swapped", &b, "row_order", Some(3), Some(4));
}

#[test]
fn swapped_csv_rows_are_row_order() {
    let mut b = bundle(DataFormat::Csv, false, &FILTERED);
    let mut rows = lines(&b.data);
    rows.swap(2, 3); // line 0 is the header
    b.data = join_lines(&rows);
    assert_fault("swapped-csv", &b, "row_order", Some(3), Some(4));
}

#[test]
fn dropped_last_row_is_row_count() {
    let mut b = bundle(DataFormat::Jsonl, false, &FILTERED);
    let rows = lines(&b.data);
    b.data = join_lines(&rows[..3]);
    assert_fault("dropped-last", &b, "row_count", None, None);
}

#[test]
fn changed_data_file_after_the_rows_is_data_sha256() {
    let mut b = bundle(DataFormat::Jsonl, false, &FILTERED);
    // A member the format does not define is ignored by the row checks; only the digest sees it.
    let mut rows = lines(&b.data);
    rows[0] = rows[0].replacen('{', r#"{"note":"x","#, 1);
    b.data = join_lines(&rows);
    assert_fault("data-digest", &b, "data_sha256", None, None);
}

#[test]
fn wrong_public_key_is_checkpoint_invalid() {
    let dir = write_bundle("wrong-key", &bundle(DataFormat::Jsonl, false, &FILTERED));
    let path = dir.to_str().expect("path");
    let wrong = verifier(8);
    let out = auditlog(&["verify-export", path, "--public-key", &wrong]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("export INVALID: checkpoint_invalid: "), "{}", stderr(&out));
    let out = auditlog(&["verify-export", path, "--public-key", &wrong, "--json"]);
    assert_eq!(json_out(&out)["code"], json!("checkpoint_invalid"));
}

#[test]
fn every_key_file_form_is_accepted_and_retired_keys_are_trusted() {
    let dir = write_bundle("key-forms", &bundle(DataFormat::Jsonl, false, &FILTERED));
    let keys = scratch("key-forms-keys");
    let der = spki(&signing_key(7));
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
    std::fs::write(keys.join("key.pem"), public_key_pem(&der).expect("pem")).expect("write");
    std::fs::write(keys.join("key.b64"), format!("{b64}\n")).expect("write");
    std::fs::write(keys.join("key.verifier"), format!("{}\n", verifier(7))).expect("write");
    // The public-key JSON of a service that has since rotated to key 8: key 7 is retired.
    let other = spki(&signing_key(8));
    let response = json!({
        "key_name": KEY_NAME,
        "public_key": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &other),
        "verifier_key": verifier(8),
        "retired": [{"public_key": b64, "verifier_key": verifier(7)}],
    });
    std::fs::write(keys.join("key.json"), response.to_string()).expect("write");
    for file in ["key.pem", "key.b64", "key.verifier", "key.json"] {
        let key = keys.join(file);
        let out =
            auditlog(&["verify-export", dir.to_str().expect("path"), "--public-key", key.to_str().expect("path")]);
        assert_eq!(code(&out), 0, "{file}: {}", stderr(&out));
    }
    // The same JSON naming its current key twice (readers keeping the first or the last would
    // trust different keys) is refused.
    let text = response.to_string();
    let duplicated = text.replacen("{", &format!("{{\"verifier_key\":\"{}\",", verifier(7)), 1);
    std::fs::write(keys.join("duplicate.json"), duplicated).expect("write");
    let key = keys.join("duplicate.json");
    let out = auditlog(&["verify-export", dir.to_str().expect("path"), "--public-key", key.to_str().expect("path")]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"not strict JSON: duplicate member name "verifier_key" at verifier_key"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_files_exit_2_with_a_clear_message() {
    let key = verifier(7);
    let nowhere = scratch("missing").join("nothing-here");
    let out = auditlog(&["verify-export", nowhere.to_str().expect("path"), "--public-key", &key]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("manifest not found"), "{}", stderr(&out));

    let dir = write_bundle("missing-data", &bundle(DataFormat::Jsonl, true, &FILTERED));
    std::fs::remove_file(dir.join("data.jsonl.gz")).expect("remove");
    let out = verify(&dir, &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("data file not found") && stderr(&out).contains("data.jsonl.gz"), "{}", stderr(&out));

    let dir = write_bundle("missing-proof", &bundle(DataFormat::Jsonl, false, &FILTERED));
    std::fs::remove_file(dir.join("proof.jsonl")).expect("remove");
    let out = verify(&dir, &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("proof file not found"), "{}", stderr(&out));

    let out = auditlog(&["verify-export", dir.to_str().expect("path"), "--public-key", "/no/such/key.pem"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("neither a file nor a verifier key string"), "{}", stderr(&out));
}

#[test]
fn help_shows_examples() {
    let out = auditlog(&["verify-export", "--help"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("Examples:") && stdout(&out).contains("--public-key"), "{}", stdout(&out));
}
