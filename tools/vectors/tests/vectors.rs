//! The committed vectors are what the generators produce, byte for byte, and they are known-good:
//! the chain core's own verifiers accept every valid case and refuse every invalid one, reading
//! the files as an outside verifier would.

// A test should stop at the first unexpected value, and `expect` says where most briefly.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use shared::chain::canonical::jcs;
use shared::chain::checkpoint::{key_id_ecdsa, verifier_key};
use shared::chain::entry::{content_digest, Entry};
use shared::chain::event::{parse_event_value, parse_timestamp};
use shared::chain::hash::{chain_link, leaf_hash, Hash, GENESIS};
use shared::chain::merkle::{verify_consistency, verify_inclusion};
use shared::chain::publisher::{parse_public_key, verify_publisher_signature};
use shared::chain::receipt::{receipt_key_id, receipt_signing_bytes, verify_receipt, Receipt};
use std::path::Path;
use uuid::Uuid;

fn committed(name: &str) -> Value {
    let path = vectors::repository_root().join(vectors::VECTORS_DIR).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is a string in {value}"))
}

fn u64_of(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("{key} is an integer in {value}"))
}

fn array_of<'a>(value: &'a Value, key: &str) -> &'a Vec<Value> {
    value[key].as_array().unwrap_or_else(|| panic!("{key} is an array"))
}

fn hash_of(value: &Value, key: &str) -> Hash {
    Hash::from_hex(str_of(value, key)).expect("a hex hash")
}

fn hashes_of(value: &Value, key: &str) -> Vec<Hash> {
    array_of(value, key).iter().map(|h| Hash::from_hex(h.as_str().expect("a string")).expect("a hex hash")).collect()
}

fn base64_of(value: &Value, key: &str) -> Vec<u8> {
    STANDARD.decode(str_of(value, key)).expect("standard base64")
}

#[test]
fn regenerating_the_vectors_changes_nothing() {
    let files = vectors::generate_all().expect("the generators run");
    let changed = vectors::changed_files(&vectors::repository_root(), &files).expect("the files are readable");
    assert!(changed.is_empty(), "regeneration would change {changed:?}; run `cargo run -p vectors` and commit");
}

#[test]
fn every_generator_writes_pretty_json_with_a_trailing_newline_under_test_vectors_v1() {
    let files = vectors::generate_all().expect("the generators run");
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for name in ["canonical", "strict-json", "events", "entries", "merkle", "checkpoints", "receipts"] {
        assert!(names.contains(&format!("test-vectors/v1/{name}.json").as_str()), "{name}.json is generated");
    }
    assert!(names.contains(&"test-vectors/v1/exports/public_key.json"), "the export key is generated");
    for file in &files {
        assert!(Path::new(&file.path).starts_with(vectors::VECTORS_DIR), "{}", file.path);
    }
    // The vector files proper; the export bundles' objects have the formats of FORMATS.md instead.
    let documents = files.iter().filter(|f| {
        let parent = Path::new(&f.path).parent().expect("a folder");
        parent == Path::new(vectors::VECTORS_DIR) || f.path.ends_with("/exports/public_key.json")
    });
    for file in documents {
        let text = std::str::from_utf8(&file.bytes).expect("UTF-8");
        let value: Value = serde_json::from_str(text).expect("JSON");
        assert!(text.ends_with("}\n") && !text.ends_with("\n\n"), "{} ends in one newline", file.path);
        assert!(text.starts_with("{\n  \"description\": "), "{} starts with its description", file.path);
        assert!(value["description"].is_string(), "{}", file.path);
    }
    assert_eq!(files, vectors::generate_all().expect("again"), "generation is deterministic");
}

#[test]
fn changed_files_names_a_file_that_differs_or_is_missing() {
    let dir = std::env::temp_dir().join(format!("vectors-check-{}", std::process::id()));
    let files = vec![
        vectors::VectorFile { path: "a/same.json".into(), bytes: b"{}\n".to_vec() },
        vectors::VectorFile { path: "a/different.json".into(), bytes: b"{}\n".to_vec() },
        vectors::VectorFile { path: "a/missing.json".into(), bytes: b"{}\n".to_vec() },
    ];
    vectors::write_files(&dir, &files[..2]).expect("write");
    std::fs::write(dir.join("a/different.json"), b"{ }\n").expect("write");
    let changed = vectors::changed_files(&dir, &files).expect("compare");
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(changed, ["a/different.json", "a/missing.json"]);
}

#[test]
fn stray_files_names_a_file_no_generator_produces() {
    let dir = std::env::temp_dir().join(format!("vectors-stray-{}", std::process::id()));
    let generated = vectors::VectorFile { path: format!("{}/a/kept.json", vectors::VECTORS_DIR), bytes: vec![] };
    let lingering = vectors::VectorFile { path: format!("{}/a/old/removed.csv", vectors::VECTORS_DIR), bytes: vec![] };
    let outside = vectors::VectorFile { path: "elsewhere/other.json".into(), bytes: vec![] };
    vectors::write_files(&dir, &[generated.clone(), lingering.clone(), outside]).expect("write");
    let stray = vectors::stray_files(&dir, &[generated]).expect("list");
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(stray, [lingering.path]);
}

#[test]
fn no_committed_file_lingers_that_no_generator_produces() {
    let files = vectors::generate_all().expect("the generators run");
    let stray = vectors::stray_files(&vectors::repository_root(), &files).expect("the folder is readable");
    assert!(stray.is_empty(), "no generator produces {stray:?}; delete them or add them to a generator");
}

#[test]
fn strict_json_cases_give_their_verdicts() {
    let file = committed("strict-json.json");
    let cases = array_of(&file, "cases");
    for case in cases {
        let name = str_of(case, "name");
        let input = str_of(case, "input");
        let got = shared::chain::strict_json::check(input.as_bytes());
        if case["valid"] == Value::Bool(true) {
            assert!(got.is_ok(), "{name}: {got:?}");
            assert!(case.get("error").is_none() && case.get("path").is_none(), "{name}");
        } else {
            let e = got.expect_err(name);
            assert_eq!(case["error"], e.kind.as_str(), "{name}");
            assert_eq!(case["path"], e.path.map_or(Value::Null, Value::String), "{name}");
        }
    }
}

#[test]
fn strict_json_cases_cover_every_kind_and_the_named_examples() {
    let file = committed("strict-json.json");
    let cases = array_of(&file, "cases");
    let verdict = |input: &str| {
        let case = cases.iter().find(|c| c["input"] == input).unwrap_or_else(|| panic!("a case has input {input}"));
        (case["error"].as_str().unwrap_or("valid").to_owned(), case["path"].clone())
    };
    let named = [
        (r#"{"action":"a","action":"b"}"#, "duplicate_member", Value::from("action")),
        (r#"{"a":1,"\u0061":2}"#, "duplicate_member", Value::from("a")),
        (
            r#"{"events":[{"action":"a"},{"action":"b","metadata":{"a":[{"b":1,"c":2,"b":3}]}}]}"#,
            "duplicate_member",
            Value::from("events[1].metadata.a[0].b"),
        ),
        (r#"{"n":9007199254740991}"#, "valid", Value::Null),
        (r#"{"n":-9007199254740991}"#, "valid", Value::Null),
        (r#"{"n":9007199254740992}"#, "unsafe_integer", Value::from("n")),
        (r#"{"n":9007199254740993}"#, "unsafe_integer", Value::from("n")),
        (r#"{"metadata":{"n":18446744073709551616}}"#, "unsafe_integer", Value::from("metadata.n")),
        (r#"{"metadata":{"n":100000000000000000000}}"#, "unsafe_integer", Value::from("metadata.n")),
        (r#"{"x":1e20}"#, "unsafe_integer", Value::from("x")),
        (r#"{"x":1e21}"#, "valid", Value::Null),
        (r#"{"n":-0}"#, "valid", Value::Null),
        (r#"{"x":0.1}"#, "valid", Value::Null),
        (r#"{"x":1.0}"#, "valid", Value::Null),
        (r#"{"x":0.10000000000000001}"#, "inexact_number", Value::from("x")),
        (r#"{"x":333333333.33333329}"#, "inexact_number", Value::from("x")),
        (r#"{"x":1e400}"#, "inexact_number", Value::from("x")),
        (r#"{"s":"\ud800"}"#, "invalid_string", Value::from("s")),
        (r#"{"s":"\udc00"}"#, "invalid_string", Value::from("s")),
        (r#"{"s":"\ud83d\ude00"}"#, "valid", Value::Null),
        (r#"{"s":"\uffff"}"#, "invalid_string", Value::from("s")),
        ("{\"s\":\"\u{fdd0}\"}", "invalid_string", Value::from("s")),
    ];
    for (input, error, path) in named {
        assert_eq!(verdict(input), (error.to_owned(), path), "{input}");
    }
    let syntax = cases.iter().filter(|c| c["error"] == "invalid_json" && c["path"].is_null()).count();
    assert!(syntax >= 3, "a few cases of invalid syntax");
}

#[test]
fn canonical_cases_are_rfc8785_fixed_points() {
    let file = committed("canonical.json");
    let cases = array_of(&file, "cases");
    assert!(cases.len() >= 30);
    for case in cases {
        let name = str_of(case, "name");
        let input: Value = serde_json::from_str(str_of(case, "input")).expect("input parses");
        let canonical = str_of(case, "canonical");
        assert_eq!(String::from_utf8(jcs(&input)).expect("UTF-8"), canonical, "{name}");
        // The canonical text is its own canonical form.
        let reparsed: Value = serde_json::from_str(canonical).expect("canonical parses");
        assert_eq!(String::from_utf8(jcs(&reparsed)).expect("UTF-8"), canonical, "{name}");
    }
}

#[test]
fn canonical_cases_give_the_outputs_rfc8785_publishes() {
    let file = committed("canonical.json");
    let by_name = |name: &str| {
        let case = array_of(&file, "cases").iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}"));
        str_of(case, "canonical").to_owned()
    };
    // RFC 8785 section 3.2.3 and section 3.2.2, and the number table of its appendix B.
    assert_eq!(
        by_name("rfc8785_sorting_example"),
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
    assert_eq!(
        by_name("rfc8785_serialization_example"),
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
    let numbers = [
        ("number_negative_zero", "0"),
        ("number_1e30", "1e+30"),
        ("number_1e21", "1e+21"),
        ("number_1e20", "100000000000000000000"),
        ("number_1E-7", "1e-7"),
        ("number_0.000001", "0.000001"),
        ("number_beyond_2_pow_64", "123456789012345680000"),
        ("number_max_safe_integer", "9007199254740991"),
        ("number_1.5e300", "1.5e+300"),
        ("number_smallest_subnormal", "5e-324"),
        ("number_largest_double", "1.7976931348623157e+308"),
        ("number_integral_double", "1"),
    ];
    for (name, expected) in numbers {
        assert_eq!(by_name(name), expected, "{name}");
    }
    assert_eq!(
        by_name("string_escapes"),
        "{\"backslash\":\"\\\\\",\"control_characters\":\"\\u0000\\u0001\\b\\f\\r\u{7f}\",\"line_separator\":\"\u{2028}\",\"newline\":\"a\\nb\",\"paragraph_separator\":\"\u{2029}\",\"quote\":\"\\\"\",\"solidus\":\"/\",\"tab\":\"a\\tb\",\"unit_separator\":\"\\u001f\"}"
    );
}

#[test]
fn event_cases_recompute_from_their_inputs() {
    let file = committed("events.json");
    let cases = array_of(&file, "cases");
    assert!(cases.len() >= 8);
    let mut signed = 0;
    for case in cases {
        let name = str_of(case, "name");
        let received_at = parse_timestamp(str_of(case, "received_at")).expect("time");
        let event = parse_event_value(&case["input"]).and_then(|e| e.validate(received_at)).expect(name);
        let content = shared::chain::canonical::content_bytes(&event).expect(name);
        let signing = shared::chain::canonical::signing_bytes(&event);
        assert_eq!(str_of(case, "content").as_bytes(), content, "{name}");
        assert_eq!(str_of(case, "signing_bytes").as_bytes(), signing, "{name}");
        let salt = base64_of(case, "salt");
        assert_eq!(salt.len(), 32, "{name}");
        assert_eq!(content_digest(&salt, &content), hash_of(case, "content_digest"), "{name}");
        // Content and signing bytes differ by exactly the signature member.
        let mut content_value: Value = serde_json::from_str(str_of(case, "content")).expect("JSON");
        let had_signature = content_value.as_object_mut().expect("object").remove("signature").is_some();
        assert_eq!(jcs(&content_value), signing, "{name}");
        if had_signature {
            signed += 1;
            let key = parse_public_key(&base64_of(&file["publisher"], "public_key")).expect("key");
            verify_publisher_signature(&event, &key).expect(name);
        }
    }
    assert_eq!(signed, 1, "one case carries a publisher signature");
}

#[test]
fn event_cases_show_the_normalisations() {
    let file = committed("events.json");
    let content = |name: &str| -> Value {
        let case = array_of(&file, "cases").iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}"));
        serde_json::from_str(str_of(case, "content")).expect("JSON")
    };
    let minimal = content("minimal_event_gets_default_outcome_and_occurred_at");
    assert_eq!(minimal["outcome"], "success");
    assert_eq!(minimal["occurred_at"], "2026-11-24T10:00:00.123456Z");
    assert_eq!(content("occurred_at_with_offset_is_normalised_to_utc")["occurred_at"], "2026-11-24T09:59:00.500000Z");
    assert_eq!(
        content("occurred_at_nanoseconds_are_truncated_to_microseconds")["occurred_at"],
        "2026-11-24T09:59:59.123456Z"
    );
    assert!(content("empty_metadata_is_omitted").get("metadata").is_none());
    let all = content("every_optional_member");
    for member in ["resource", "severity", "source", "request_id", "session_id", "metadata"] {
        assert!(all.get(member).is_some(), "{member}");
    }
    for member in ["type", "name", "ip", "user_agent"] {
        assert!(all["actor"].get(member).is_some(), "actor.{member}");
    }
}

#[test]
fn publisher_signatures_verify_with_the_published_key() {
    let file = committed("events.json");
    let publisher = &file["publisher"];
    let seed: [u8; 32] = base64_of(publisher, "seed").try_into().expect("a 32-byte seed");
    let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
    assert_eq!(signing_key.verifying_key().as_bytes().as_slice(), base64_of(publisher, "public_key"));
    let key = parse_public_key(&base64_of(publisher, "public_key")).expect("key");
    let cases = array_of(publisher, "cases");
    assert!(cases.len() >= 3);
    for case in cases {
        let name = str_of(case, "name");
        let received_at = parse_timestamp("2026-11-24T10:00:00Z").expect("time");
        let mut event = parse_event_value(&case["event"]).and_then(|e| e.validate(received_at)).expect(name);
        assert_eq!(shared::chain::canonical::signing_bytes(&event), str_of(case, "signing_bytes").as_bytes(), "{name}");
        event.signature = Some(shared::chain::event::PublisherSignature {
            key_id: str_of(publisher, "key_id").to_owned(),
            alg: "ed25519".into(),
            sig: str_of(case, "signature").to_owned(),
        });
        verify_publisher_signature(&event, &key).expect(name);
        event.action.push_str(".changed");
        assert!(verify_publisher_signature(&event, &key).is_err(), "{name}: a changed event is refused");
    }
}

#[test]
fn entries_hash_and_chain_as_stated() {
    let file = committed("entries.json");
    let entries = array_of(&file, "entries");
    let chain = array_of(&file, "chain");
    assert_eq!(entries.len(), 10);
    assert_eq!(chain.len(), entries.len());
    let mut previous = GENESIS;
    for (n, (e, link)) in entries.iter().zip(chain).enumerate() {
        let entry = Entry {
            tenant_id: Uuid::parse_str(str_of(e, "tenant_id")).expect("uuid"),
            seq: u64_of(e, "seq"),
            id: Uuid::parse_str(str_of(e, "id")).expect("uuid"),
            received_at: parse_timestamp(str_of(e, "received_at")).expect("time"),
            content_digest: hash_of(e, "content_digest"),
        };
        assert_eq!(entry.seq, n as u64);
        assert_eq!(entry.tenant_id.to_string(), str_of(&entries[0], "tenant_id"), "one tenant");
        assert_eq!(entry.canonical_bytes(), str_of(e, "canonical_entry").as_bytes(), "seq {n}");
        assert_eq!(leaf_hash(str_of(e, "canonical_entry").as_bytes()), hash_of(e, "leaf_hash"), "seq {n}");
        assert_eq!(u64_of(link, "seq"), entry.seq);
        assert_eq!(hash_of(link, "leaf_hash"), hash_of(e, "leaf_hash"));
        previous = chain_link(&previous, &hash_of(link, "leaf_hash"));
        assert_eq!(previous, hash_of(link, "chain_hash"), "seq {n}");
    }
}

struct MerkleFile {
    file: Value,
    leaves: Vec<Hash>,
    roots: Vec<Hash>,
}

fn merkle_file() -> MerkleFile {
    let file = committed("merkle.json");
    let leaves = hashes_of(&file, "leaves");
    let roots: Vec<Hash> = array_of(&file, "roots")
        .iter()
        .enumerate()
        .map(|(size, r)| {
            assert_eq!(u64_of(r, "size"), size as u64);
            hash_of(r, "root")
        })
        .collect();
    MerkleFile { file, leaves, roots }
}

#[test]
fn merkle_leaves_and_roots_follow_rfc9162() {
    let MerkleFile { leaves, roots, .. } = merkle_file();
    assert_eq!(leaves.len(), 40);
    assert_eq!(roots.len(), 41);
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(*leaf, leaf_hash(format!("leaf {i}").as_bytes()));
    }
    assert_eq!(roots[0], shared::chain::hash::sha256(&[]));
    assert_eq!(roots[1], leaves[0]);
    assert_eq!(roots[2], shared::chain::hash::node_hash(&leaves[0], &leaves[1]));
    let mut compact = shared::chain::merkle::CompactRange::default();
    for (size, leaf) in leaves.iter().enumerate() {
        compact.push(*leaf);
        assert_eq!(compact.root(), roots[size + 1], "size {}", size + 1);
    }
}

#[test]
fn every_inclusion_proof_verifies() {
    let MerkleFile { file, leaves, roots } = merkle_file();
    let cases = array_of(&file, "inclusion");
    for size in 1..=17u64 {
        for index in 0..size {
            let found = cases.iter().any(|c| u64_of(c, "index") == index && u64_of(c, "size") == size);
            assert!(found, "inclusion of {index} in {size} is listed");
        }
    }
    assert!(cases.iter().any(|c| u64_of(c, "size") > 17), "larger trees are covered too");
    for case in cases {
        let (index, size) = (u64_of(case, "index"), u64_of(case, "size"));
        let path = hashes_of(case, "path");
        verify_inclusion(&leaves[index as usize], index, size, &path, &roots[size as usize])
            .unwrap_or_else(|e| panic!("inclusion of {index} in {size}: {e}"));
    }
}

#[test]
fn every_consistency_proof_verifies() {
    let MerkleFile { file, roots, .. } = merkle_file();
    let cases = array_of(&file, "consistency");
    for new_size in 1..=17u64 {
        for old_size in 1..=new_size {
            let found = cases.iter().any(|c| u64_of(c, "old_size") == old_size && u64_of(c, "new_size") == new_size);
            assert!(found, "consistency from {old_size} to {new_size} is listed");
        }
    }
    assert!(cases.iter().any(|c| u64_of(c, "new_size") > 17), "larger trees are covered too");
    for case in cases {
        let (old, new) = (u64_of(case, "old_size"), u64_of(case, "new_size"));
        let proof = hashes_of(case, "proof");
        if old == new {
            assert!(proof.is_empty(), "{old} to {new}");
        }
        verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &proof)
            .unwrap_or_else(|e| panic!("consistency from {old} to {new}: {e}"));
    }
}

#[test]
fn every_invalid_merkle_proof_is_rejected() {
    let MerkleFile { file, leaves, .. } = merkle_file();
    let cases = array_of(&file, "invalid");
    let mut kinds = (0, 0);
    for case in cases {
        let name = str_of(case, "name");
        match str_of(case, "kind") {
            "inclusion" => {
                kinds.0 += 1;
                let index = u64_of(case, "index");
                let result = verify_inclusion(
                    &leaves[index as usize],
                    index,
                    u64_of(case, "size"),
                    &hashes_of(case, "path"),
                    &hash_of(case, "root"),
                );
                assert!(result.is_err(), "{name} must be rejected");
            }
            "consistency" => {
                kinds.1 += 1;
                let result = verify_consistency(
                    u64_of(case, "old_size"),
                    u64_of(case, "new_size"),
                    &hash_of(case, "old_root"),
                    &hash_of(case, "new_root"),
                    &hashes_of(case, "proof"),
                );
                assert!(result.is_err(), "{name} must be rejected");
            }
            other => panic!("unknown kind {other}"),
        }
    }
    assert!(kinds.0 >= 5 && kinds.1 >= 5, "both kinds are covered: {kinds:?}");
}

#[test]
fn checkpoint_keys_are_self_consistent() {
    let file = committed("checkpoints.json");
    for which in ["key", "retired_key"] {
        let key = &file[which];
        let spki = base64_of(key, "public_key");
        assert_eq!(hex::encode(key_id_ecdsa(&spki)), str_of(key, "key_id"), "{which}");
        assert_eq!(verifier_key(str_of(key, "key_name"), &spki).expect("valid key"), str_of(key, "verifier_key"));
    }
    assert_ne!(file["key"]["key_id"], file["retired_key"]["key_id"]);
}

#[test]
fn checkpoint_notes_verify_or_fail_as_stated() {
    let file = committed("checkpoints.json");
    let key_name = str_of(&file["key"], "key_name");
    let cases = array_of(&file, "cases");
    let mut seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = str_of(case, "name");
        let trusted: Vec<Vec<u8>> = array_of(case, "keys")
            .iter()
            .map(|k| base64_of(&file[k.as_str().expect("a key member")], "public_key"))
            .collect();
        let result = vectors::checkpoints::verify_with_trusted(str_of(case, "note"), key_name, &trusted);
        if case["valid"] == true {
            let checkpoint = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(checkpoint.origin, str_of(case, "origin"), "{name}");
            assert_eq!(checkpoint.size, u64_of(case, "tree_size"), "{name}");
            assert_eq!(checkpoint.root, hash_of(case, "root"), "{name}");
            assert!(case["error"].is_null(), "{name}");
            seen.insert("valid");
        } else {
            assert_eq!(case["valid"], false, "{name}");
            let error = result.expect_err(name);
            let word = str_of(case, "error");
            assert_eq!(vectors::checkpoints::error_word(&error), word, "{name}: {error}");
            seen.insert(word);
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["malformed", "no_signature", "signature", "valid"]);
}

#[test]
fn the_retired_key_verifies_only_when_trusted() {
    let file = committed("checkpoints.json");
    let key_name = str_of(&file["key"], "key_name");
    let retired = base64_of(&file["retired_key"], "public_key");
    let current = base64_of(&file["key"], "public_key");
    let case = array_of(&file, "cases")
        .iter()
        .find(|c| c["name"] == "signed_by_the_retired_key_trusted_beside_the_current_one")
        .expect("the retired key case");
    let note = str_of(case, "note");
    assert!(shared::chain::checkpoint::verify(note, key_name, &retired).is_ok());
    assert!(shared::chain::checkpoint::verify(note, key_name, &current).is_err());
}

#[test]
fn checkpoint_origins_name_the_tenant_of_the_entries() {
    let checkpoints = committed("checkpoints.json");
    let entries = committed("entries.json");
    let tenant = str_of(&array_of(&entries, "entries")[0], "tenant_id");
    let expected = format!("{}/{tenant}", str_of(&checkpoints["key"], "key_name"));
    for case in array_of(&checkpoints, "cases").iter().filter(|c| c["valid"] == true) {
        assert_eq!(str_of(case, "origin"), expected);
    }
}

#[test]
fn receipts_verify_or_fail_as_stated() {
    let file = committed("receipts.json");
    let raw: [u8; 32] = base64_of(&file, "public_key").try_into().expect("32 bytes");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).expect("an Ed25519 point");
    assert_eq!(receipt_key_id(&key), str_of(&file, "key_id"));
    let (mut valid, mut invalid) = (0, 0);
    for case in array_of(&file, "cases") {
        let name = str_of(case, "name");
        let receipt: Receipt = serde_json::from_value(case["receipt"].clone()).expect(name);
        assert_eq!(receipt_signing_bytes(&receipt), str_of(case, "signing_bytes").as_bytes(), "{name}");
        if case["valid"] == true {
            verify_receipt(&receipt, &key).unwrap_or_else(|e| panic!("{name}: {e}"));
            valid += 1;
        } else {
            assert!(verify_receipt(&receipt, &key).is_err(), "{name} must be refused");
            invalid += 1;
        }
    }
    assert!(valid >= 2 && invalid >= 5, "{valid} valid, {invalid} invalid");
}

#[test]
fn valid_receipts_match_the_entries_file() {
    let receipts = committed("receipts.json");
    let entries = committed("entries.json");
    for case in array_of(&receipts, "cases").iter().filter(|c| c["valid"] == true) {
        let receipt = &case["receipt"];
        let seq = u64_of(receipt, "seq") as usize;
        let entry = &array_of(&entries, "entries")[seq];
        let link = &array_of(&entries, "chain")[seq];
        assert_eq!(receipt["tenant_id"], entry["tenant_id"]);
        assert_eq!(receipt["event_id"], entry["id"]);
        assert_eq!(receipt["received_at"], entry["received_at"]);
        assert_eq!(receipt["leaf_hash"], entry["leaf_hash"]);
        assert_eq!(receipt["chain_hash"], link["chain_hash"]);
    }
}
