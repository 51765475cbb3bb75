//! `auditlog verify-proof` on proofs of a small tree built with `MemoryTree`, shaped as the API
//! returns them (shared/src/api/proofs.rs), against notes signed with a fixed P-256 key.

mod common;

use common::*;
use serde_json::{json, Value};
use shared::chain::hash::Hash;
use shared::chain::merkle::MemoryTree;

fn hex_list(hashes: &[Hash]) -> Value {
    json!(hashes.iter().map(Hash::to_hex).collect::<Vec<_>>())
}

fn checkpoint_view(size: u64, root: Hash) -> Value {
    json!({"tree_size": size, "root": root.to_hex(), "note": note(7, &origin(), size, root),
           "key_name": KEY_NAME, "key_id": "00000000", "signed_at": "2026-11-24T10:00:05.000000Z"})
}

/// The `GET /v1/events/{id}/proof` response for `seq` in the 13-entry log, with its checkpoint.
fn inclusion(log: &Log, seq: u64) -> Value {
    let tree = log.tree();
    let path = shared::chain::merkle::inclusion_proof(seq, tree.size(), &tree).expect("proof");
    json!({
        "event_id": log.entries[seq as usize].id,
        "leaf_index": seq,
        "tree_size": tree.size(),
        "leaf_hash": log.linked[seq as usize].leaf_hash.to_hex(),
        "root": tree.root().to_hex(),
        "audit_path": hex_list(&path),
        "checkpoint": checkpoint_view(tree.size(), tree.root()),
    })
}

fn write(dir: &std::path::Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).expect("write");
    path.to_str().expect("path").to_owned()
}

fn run(args: &[&str]) -> std::process::Output {
    let key = verifier(7);
    let mut all = vec!["verify-proof"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--public-key", &key]);
    auditlog(&all)
}

#[test]
fn valid_inclusion_proof_exits_0_and_with_the_entry_recomputes_the_leaf() {
    let log = Log::new(13);
    let dir = scratch("inclusion-valid");
    let proof = write(&dir, "proof.json", &inclusion(&log, 5));
    let out = run(&[&proof]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("leaf 5 is in the signed tree of size 13"), "{}", stdout(&out));

    let entry = write(&dir, "entry.json", &log.entry_json(5));
    let out = run(&[&proof, "--entry", &entry, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(
        (v["valid"].clone(), v["leaf_recomputed"].clone(), v["tree_size"].clone()),
        (json!(true), json!(true), json!(13))
    );
}

#[test]
fn tampered_audit_path_exits_1() {
    let log = Log::new(13);
    let dir = scratch("inclusion-tampered");
    let mut p = inclusion(&log, 5);
    let first = p["audit_path"][0].as_str().expect("hash").to_owned();
    let flipped = format!("{}{}", if first.starts_with('0') { "1" } else { "0" }, &first[1..]);
    p["audit_path"][0] = json!(flipped);
    let proof = write(&dir, "proof.json", &p);
    let out = run(&[&proof]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).starts_with("proof INVALID: proof_invalid: "), "{}", stderr(&out));
    let v = json_out(&run(&[&proof, "--json"]));
    assert_eq!((v["valid"].clone(), v["code"].clone()), (json!(false), json!("proof_invalid")));
}

#[test]
fn proof_for_another_leaf_or_a_changed_event_is_rejected() {
    let log = Log::new(13);
    let dir = scratch("inclusion-wrong-leaf");
    let mut p = inclusion(&log, 5);
    p["leaf_hash"] = json!(log.linked[6].leaf_hash.to_hex());
    let proof = write(&dir, "proof.json", &p);
    assert_eq!(code(&run(&[&proof])), 1);

    let proof = write(&dir, "good.json", &inclusion(&log, 5));
    let mut entry = log.entry_json(5);
    entry["event"]["actor"]["id"] = json!("mallory");
    let entry = write(&dir, "entry.json", &entry);
    let v = json_out(&run(&[&proof, "--entry", &entry, "--json"]));
    assert_eq!(v["code"], json!("content_digest"), "{v}");
}

#[test]
fn entry_or_proof_that_is_not_strict_json_is_malformed_and_exits_1() {
    let log = Log::new(13);
    let dir = scratch("inclusion-not-strict");
    let proof = write(&dir, "proof.json", &inclusion(&log, 5));
    // The duplicate comes first, so a last-wins reader would see exactly the digested event.
    let text = log.entry_json(5).to_string();
    assert_eq!(text.matches(r#""event":{"action":"#).count(), 1, "{text}");
    let duplicated = text.replacen(r#""event":{"action":"#, r#""event":{"action":"user.logout","action":"#, 1);
    let entry = dir.join("duplicate.json");
    std::fs::write(&entry, duplicated).expect("write");
    let out = run(&[&proof, "--entry", entry.to_str().expect("path"), "--json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["code"], json!("entry_malformed"), "{v}");
    assert!(
        v["message"].as_str().expect("message").contains(r#"duplicate member name "action" at event.action"#),
        "{v}"
    );

    let text = inclusion(&log, 5).to_string();
    assert_eq!(text.matches(r#""leaf_index":5"#).count(), 1, "{text}");
    let unsafe_index = dir.join("unsafe.json");
    std::fs::write(&unsafe_index, text.replacen(r#""leaf_index":5"#, r#""leaf_index":18446744073709551621"#, 1))
        .expect("write");
    let out = run(&[unsafe_index.to_str().expect("path"), "--json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["code"], json!("proof_malformed"), "{v}");
    assert!(v["message"].as_str().expect("message").contains("at leaf_index is outside +-(2^53-1)"), "{v}");

    // Text that is not JSON at all stays a usage error.
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"leaf_index\":").expect("write");
    let out = run(&[broken.to_str().expect("path")]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("is not valid JSON"), "{}", stderr(&out));
}

#[test]
fn wrong_key_is_checkpoint_invalid_and_a_missing_checkpoint_is_a_usage_error() {
    let log = Log::new(13);
    let dir = scratch("inclusion-keys");
    let proof = write(&dir, "proof.json", &inclusion(&log, 5));
    let wrong = verifier(8);
    let out = auditlog(&["verify-proof", &proof, "--public-key", &wrong, "--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(json_out(&out)["code"], json!("checkpoint_invalid"));

    let mut bare = inclusion(&log, 5);
    bare["checkpoint"] = Value::Null;
    let bare_path = write(&dir, "bare.json", &bare);
    let out = run(&[&bare_path]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--checkpoint"), "{}", stderr(&out));

    // The same proof with the checkpoint given as a file, as GET /v1/checkpoints/13 returns it.
    let tree = log.tree();
    let checkpoint = write(&dir, "checkpoint.json", &checkpoint_view(13, tree.root()));
    let out = run(&[&bare_path, "--checkpoint", &checkpoint]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A checkpoint of another size does not cover the proof.
    let mut small = MemoryTree::new();
    small.append(&log.linked[..8].iter().map(|l| l.leaf_hash).collect::<Vec<_>>()).expect("append");
    let other = dir.join("note-8.txt");
    std::fs::write(&other, note(7, &origin(), 8, small.root())).expect("write");
    let out = run(&[&bare_path, "--checkpoint", other.to_str().expect("path"), "--json"]);
    assert_eq!(json_out(&out)["code"], json!("checkpoint_invalid"));
}

#[test]
fn consistency_proof_verifies_against_signed_checkpoints() {
    let log = Log::new(13);
    let dir = scratch("consistency");
    let tree = log.tree();
    let mut old = MemoryTree::new();
    old.append(&log.linked[..8].iter().map(|l| l.leaf_hash).collect::<Vec<_>>()).expect("append");
    let proof = shared::chain::merkle::consistency_proof(8, 13, &tree).expect("proof");
    let response = json!({"from": 8, "to": 13, "from_root": old.root().to_hex(), "to_root": tree.root().to_hex(), "proof": hex_list(&proof)});
    let path = write(&dir, "consistency.json", &response);
    let old_cp = write(&dir, "old.json", &checkpoint_view(8, old.root()));
    let new_cp = write(&dir, "new.json", &checkpoint_view(13, tree.root()));
    let out = run(&[&path, "--checkpoint", &old_cp, "--checkpoint", &new_cp, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["signed_sizes"], json!([8, 13]));

    let mut tampered = response.clone();
    tampered["proof"][0] = json!(Hash([9; 32]).to_hex());
    let path = write(&dir, "tampered.json", &tampered);
    let out = run(&[&path, "--checkpoint", &new_cp]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("proof_invalid"), "{}", stderr(&out));
}
