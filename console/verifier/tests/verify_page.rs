//! `verify_page` through the same JSON API the WebAssembly module exports, on a log built in
//! memory with the chain core and notes signed by a test key: a valid page, and each kind of
//! tampering (a changed event byte, a wrong path node, a checkpoint signed by another key, a
//! wrong global-log proof) failing the step it should, in plain words.

// A test should stop at the first unexpected value, and `expect` says where most briefly.
#![allow(clippy::unwrap_used)]
// The C ABI test calls the exported functions by pointer, as the browser does.
#![allow(unsafe_code)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use console_verifier::chain::canonical::jcs;
use console_verifier::chain::checkpoint::{assemble, key_id_ecdsa, verifier_key, Checkpoint};
use console_verifier::chain::entry::{content_digest, Entry};
use console_verifier::chain::event::{format_timestamp, parse_timestamp};
use console_verifier::chain::hash::{chain_link, sha256, Hash, GENESIS};
use console_verifier::chain::merkle::{inclusion_proof, MemoryTree};
use console_verifier::page::{GLOBAL_LOG, HEAD_ACTION};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use uuid::Uuid;

const KEY_NAME: &str = "audit.example.com/log";
const TENANT: &str = "0190f6e2-0000-7000-8000-000000000001";

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn spki(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec()
}

fn pinned(key: &SigningKey) -> String {
    verifier_key(KEY_NAME, &spki(key)).unwrap()
}

fn note(key: &SigningKey, origin: &str, size: u64, root: Hash) -> String {
    let checkpoint = Checkpoint::new(origin, size, root).with_timestamp(1_735_689_600);
    let signature: Signature = key.sign(checkpoint.body().as_bytes());
    assemble(checkpoint, KEY_NAME, key_id_ecdsa(&spki(key)), signature.to_der().as_bytes().to_vec()).unwrap().note
}

fn checkpoint_view(size: u64, root: Hash, note: &str) -> Value {
    json!({ "tree_size": size, "root": root.to_hex(), "note": note, "key_name": KEY_NAME, "key_id": "00000000",
            "signed_at": "2026-11-24T10:00:00.000000Z" })
}

/// An entry of `tenant` at `seq` after `previous`, as GET /v1/events returns it.
fn entry_view(tenant: Uuid, seq: u64, event: &Value, previous: Hash) -> (Value, Hash, Hash) {
    let salt = [seq as u8 + 1; 32];
    let entry = Entry {
        tenant_id: tenant,
        seq,
        id: Uuid::from_u128(
            0x0190f6e2_0000_7000_8000_000000001000 + u128::from(seq) + (tenant.as_u128() & 0xff) * 0x100,
        ),
        received_at: parse_timestamp("2026-11-24T10:00:00.5Z").unwrap() + chrono::Duration::seconds(seq as i64),
        content_digest: content_digest(&salt, &jcs(event)),
    };
    let leaf = entry.leaf_hash();
    let chain = chain_link(&previous, &leaf);
    let view = json!({
        "id": entry.id.to_string(), "tenant_id": tenant.to_string(), "seq": seq,
        "received_at": format_timestamp(&entry.received_at), "event": event, "erased": false,
        "salt": BASE64.encode(salt), "content_digest": entry.content_digest.to_hex(),
        "leaf_hash": leaf.to_hex(), "chain_hash": chain.to_hex(),
    });
    (view, leaf, chain)
}

/// A tenant log of `n` entries signed at size `n`, recorded in a global log of three heads.
struct Fixture {
    entries: Vec<Value>,
    batch: Value,
    key: SigningKey,
}

fn fixture(n: u64) -> Fixture {
    let key = signing_key(7);
    let tenant = Uuid::parse_str(TENANT).unwrap();
    let mut tree = MemoryTree::new();
    let mut entries = Vec::new();
    let mut previous = GENESIS;
    for seq in 0..n {
        let event = json!({ "action": "doc.read", "actor": { "id": format!("u{seq}") }, "metadata": { "n": seq, "x": 0.5 },
                            "occurred_at": "2026-11-24T10:00:00.000000Z", "outcome": "success" });
        let (view, leaf, chain) = entry_view(tenant, seq, &event, previous);
        tree.append(&[leaf]).unwrap();
        previous = chain;
        entries.push(view);
    }
    let root = tree.root();
    let tenant_note = note(&key, &format!("{KEY_NAME}/{TENANT}"), n, root);
    let proofs: Vec<Value> = entries
        .iter()
        .map(|e| {
            let seq = e["seq"].as_u64().unwrap();
            let path: Vec<String> = inclusion_proof(seq, n, &tree).unwrap().iter().map(Hash::to_hex).collect();
            json!({ "id": e["id"], "seq": seq, "leaf_index": seq, "audit_path": path })
        })
        .collect();

    // The global log: two other tenants' heads, then this one's at seq 2.
    let mut global_tree = MemoryTree::new();
    let mut global_previous = GENESIS;
    let mut head_entry = Value::Null;
    for seq in 0..3u64 {
        let (resource, size, head_root, note_hash) = if seq == 2 {
            (TENANT.to_owned(), n, root, sha256(&[tenant_note.as_bytes()]))
        } else {
            (Uuid::from_u128(u128::from(seq) + 9).to_string(), 1, Hash([seq as u8; 32]), Hash([9; 32]))
        };
        let event = json!({ "action": HEAD_ACTION, "actor": { "id": "checkpointer", "type": "service" },
                            "resource": { "type": "tenant_log", "id": resource }, "source": "audit-log",
                            "metadata": { "tree_size": size, "root": head_root.to_hex(), "note_sha256": note_hash.to_hex() },
                            "occurred_at": "2026-11-24T10:00:00.000000Z", "outcome": "success" });
        let (view, leaf, chain) = entry_view(GLOBAL_LOG, seq, &event, global_previous);
        global_tree.append(&[leaf]).unwrap();
        global_previous = chain;
        head_entry = view;
    }
    let global_note = note(&key, &format!("{KEY_NAME}/{GLOBAL_LOG}"), 3, global_tree.root());
    let global_path: Vec<String> = inclusion_proof(2, 3, &global_tree).unwrap().iter().map(Hash::to_hex).collect();
    let batch = json!({
        "tree_size": n,
        "checkpoint": checkpoint_view(n, root, &tenant_note),
        "proofs": proofs,
        "missing": [],
        "global_proof": {
            "checkpoint": checkpoint_view(n, root, &tenant_note),
            "entry": head_entry,
            "leaf_index": 2,
            "audit_path": global_path,
            "global_checkpoint": checkpoint_view(3, global_tree.root(), &global_note),
            "anchor_key": "global/00000000000000000003.note",
        },
    });
    Fixture { entries, batch, key }
}

fn verify(entries: &[Value], batch: &Value, checkpoint_keys: &[String], global_keys: &[String]) -> Value {
    let input = json!({ "entries": entries, "batch": batch,
                        "trusted": { "checkpoint_keys": checkpoint_keys, "global_log_keys": global_keys } });
    serde_json::from_slice(&console_verifier::verify_page_json(&serde_json::to_vec(&input).unwrap())).unwrap()
}

fn verify_fixture(f: &Fixture) -> Value {
    let keys = [pinned(&f.key)];
    verify(&f.entries, &f.batch, &keys, &keys)
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().unwrap_or_else(|| panic!("no results: {report}"))
}

const ALL_OK: &str = r#"{"checkpoint":"ok","global":"ok","inclusion":"ok","leaf":"ok"}"#;

#[test]
fn every_entry_of_a_valid_page_verifies_at_every_step() {
    let f = fixture(9);
    let report = verify_fixture(&f);
    assert_eq!(report["checkpoint"]["ok"], true, "{report}");
    assert_eq!(report["checkpoint"]["tree_size"], 9);
    assert_eq!(report["checkpoint"]["origin"], format!("{KEY_NAME}/{TENANT}"));
    assert_eq!(report["global"]["status"], "ok", "{report}");
    assert_eq!(results(&report).len(), 9);
    for r in results(&report) {
        assert_eq!((r["ok"].clone(), r["steps"].to_string()), (json!(true), ALL_OK.to_owned()), "{r}");
        assert!(r.get("reason").is_none(), "{r}");
    }
    // Page order does not matter (GET /v1/events is newest first by default).
    let mut reversed = f.entries.clone();
    reversed.reverse();
    let keys = [pinned(&f.key)];
    assert!(results(&verify(&reversed, &f.batch, &keys, &keys)).iter().all(|r| r["ok"] == true));
}

#[test]
fn a_changed_event_byte_fails_only_that_entry_at_the_leaf() {
    let mut f = fixture(6);
    f.entries[3]["event"]["actor"]["id"] = json!("u9");
    let report = verify_fixture(&f);
    for (i, r) in results(&report).iter().enumerate() {
        if i == 3 {
            assert_eq!(r["ok"], false);
            assert_eq!(r["steps"]["leaf"], "failed");
            assert_eq!(r["steps"]["inclusion"], "not_checked");
            assert_eq!(r["reason"], "the leaf hash does not match the entry's content: the stored event was changed");
        } else {
            assert_eq!(r["ok"], true, "{r}");
        }
    }
}

#[test]
fn a_changed_field_digest_or_chain_hash_fails_the_leaf_step() {
    let base = fixture(5);
    // A changed time and a digest and leaf rewritten to match other content.
    let mut f = fixture(5);
    f.entries[1]["received_at"] = json!("2026-11-24T10:00:01.500001Z");
    let report = verify_fixture(&f);
    let r = &results(&report)[1];
    assert_eq!(r["steps"]["leaf"], "failed");
    assert!(r["reason"].as_str().unwrap().starts_with("the leaf hash does not match the entry's fields"), "{r}");

    // A self-consistent forgery (content, digest and leaf recomputed) still fails: the chain link
    // from the previous entry breaks, and the audit path no longer leads to the signed root.
    let mut f = fixture(5);
    let tenant = Uuid::parse_str(TENANT).unwrap();
    let forged_event = json!({ "action": "doc.read", "actor": { "id": "mallory" }, "occurred_at": "2026-11-24T10:00:00.000000Z", "outcome": "success" });
    let previous = Hash::from_hex(base.entries[1]["chain_hash"].as_str().unwrap()).unwrap();
    let (mut forged, _, _) = entry_view(tenant, 2, &forged_event, previous);
    forged["id"] = base.entries[2]["id"].clone();
    f.entries[2] = forged.clone();
    let report = verify_fixture(&f);
    let r = &results(&report)[2];
    assert_eq!(r["steps"]["leaf"], "ok", "{r}");
    assert_eq!(r["steps"]["inclusion"], "failed", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("the entry is not in the signed tree"), "{r}");
    let next = &results(&report)[3];
    assert_eq!(next["steps"]["leaf"], "failed", "the next entry no longer links: {next}");
    assert!(next["reason"].as_str().unwrap().starts_with("the chain hash does not follow"), "{next}");
}

#[test]
fn a_wrong_path_node_fails_inclusion_for_that_entry() {
    let mut f = fixture(8);
    let path = f.batch["proofs"][5]["audit_path"].as_array_mut().unwrap();
    let mut node = Hash::from_hex(path[1].as_str().unwrap()).unwrap();
    node.0[0] ^= 1;
    path[1] = json!(node.to_hex());
    let report = verify_fixture(&f);
    let r = &results(&report)[5];
    assert_eq!(
        (r["ok"].clone(), r["steps"]["leaf"].clone(), r["steps"]["inclusion"].clone()),
        (json!(false), json!("ok"), json!("failed"))
    );
    assert!(r["reason"].as_str().unwrap().starts_with("the audit path does not lead from this entry"), "{r}");
    assert_eq!(results(&report).iter().filter(|r| r["ok"] == true).count(), 7);

    // A missing proof, and a proof for another position, are failures too.
    let mut f = fixture(4);
    f.batch["proofs"].as_array_mut().unwrap().remove(0);
    f.batch["proofs"][0]["leaf_index"] = json!(0);
    let report = verify_fixture(&f);
    assert_eq!(results(&report)[0]["reason"], "the service returned no inclusion proof for this entry");
    assert_eq!(results(&report)[1]["reason"], "the inclusion proof is for another position than seq 1");
}

#[test]
fn a_checkpoint_signed_by_another_key_is_not_trusted_whatever_the_response_says() {
    let mut f = fixture(4);
    let other = signing_key(8);
    let root = Hash::from_hex(f.batch["checkpoint"]["root"].as_str().unwrap()).unwrap();
    let forged = note(&other, &format!("{KEY_NAME}/{TENANT}"), 4, root);
    f.batch["checkpoint"]["note"] = json!(forged);
    // The response may name any key; only the pinned one counts.
    f.batch["checkpoint"]["key_id"] = json!(hex::encode(key_id_ecdsa(&spki(&other))));
    let report = verify_fixture(&f);
    assert_eq!(report["checkpoint"]["ok"], false);
    assert_eq!(report["checkpoint"]["reason"], "the checkpoint is not signed by a trusted key");
    for r in results(&report) {
        assert_eq!(r["ok"], false);
        assert_eq!(
            r["steps"].to_string(),
            r#"{"checkpoint":"failed","global":"not_checked","inclusion":"not_checked","leaf":"ok"}"#
        );
        assert_eq!(r["reason"], "the checkpoint is not signed by a trusted key");
    }
    // With the other key pinned instead, the pinned key's absence is what fails.
    let f = fixture(4);
    let report = verify(&f.entries, &f.batch, &[pinned(&other)], &[pinned(&f.key)]);
    assert_eq!(report["checkpoint"]["reason"], "the checkpoint is not signed by a trusted key");

    // A changed size in the signed body breaks the signature.
    let mut f = fixture(4);
    let note = f.batch["checkpoint"]["note"].as_str().unwrap().replacen("\n4\n", "\n3\n", 1);
    f.batch["checkpoint"]["note"] = json!(note);
    let report = verify_fixture(&f);
    assert!(report["checkpoint"]["reason"].as_str().unwrap().contains("signature does not verify"), "{report}");
}

#[test]
fn another_tenants_checkpoint_is_refused() {
    let mut f = fixture(3);
    let root = Hash::from_hex(f.batch["checkpoint"]["root"].as_str().unwrap()).unwrap();
    let other = note(&f.key, &format!("{KEY_NAME}/0190f6e2-0000-7000-8000-000000000002"), 3, root);
    f.batch["checkpoint"]["note"] = json!(other);
    let report = verify_fixture(&f);
    assert!(
        report["checkpoint"]["reason"].as_str().unwrap().starts_with("the checkpoint is for another log"),
        "{report}"
    );
}

#[test]
fn a_wrong_global_proof_fails_the_global_step_of_every_entry() {
    type Tamper = fn(&mut Value);
    let cases: [(&str, Tamper); 4] = [
        ("a wrong path node", |g| g["audit_path"][0] = json!(Hash([1; 32]).to_hex())),
        ("another head", |g| g["entry"]["event"]["metadata"]["tree_size"] = json!(99)),
        ("a global note by another key", |g| {
            let root = Hash::from_hex(g["global_checkpoint"]["root"].as_str().unwrap()).unwrap();
            g["global_checkpoint"]["note"] = json!(note(&signing_key(8), &format!("{KEY_NAME}/{GLOBAL_LOG}"), 3, root));
        }),
        ("another position", |g| g["leaf_index"] = json!(1)),
    ];
    for (name, tamper) in cases {
        let mut f = fixture(4);
        tamper(&mut f.batch["global_proof"]);
        let report = verify_fixture(&f);
        assert_eq!(report["global"]["status"], "failed", "{name}: {report}");
        for r in results(&report) {
            assert_eq!((r["ok"].clone(), r["steps"]["global"].clone()), (json!(false), json!("failed")), "{name}: {r}");
            assert_eq!(r["steps"]["inclusion"], "ok", "{name}");
            assert!(r["reason"].as_str().unwrap().contains("global log"), "{name}: {r}");
        }
    }
    // Not anchored yet: absent, and the entries are still verified.
    let mut f = fixture(4);
    f.batch["global_proof"] = Value::Null;
    let report = verify_fixture(&f);
    assert_eq!(report["global"]["status"], "absent");
    assert!(results(&report).iter().all(|r| r["ok"] == true && r["steps"]["global"] == "absent"));
}

#[test]
fn entries_newer_than_the_checkpoint_are_pending_and_erased_ones_verify_by_their_digest() {
    let big = fixture(5);
    let small = fixture(3);
    // The page holds five entries; the batch proves the first three against a checkpoint of 3.
    let mut f = fixture(3);
    f.entries = big.entries.clone();
    f.entries[1]["event"] = Value::Null;
    f.entries[1]["salt"] = Value::Null;
    f.entries[1]["erased"] = json!(true);
    f.batch = small.batch.clone();
    let report = verify_fixture(&f);
    let r = results(&report);
    assert!(r[..3].iter().all(|r| r["ok"] == true), "{report}");
    for pending in &r[3..] {
        assert_eq!(pending["ok"], false);
        assert_eq!(pending["steps"]["inclusion"], "pending");
        assert!(pending["reason"].as_str().unwrap().contains("newer than the signed checkpoint"), "{pending}");
    }
}

#[test]
fn malformed_entries_fail_alone_and_a_bad_input_is_refused_whole() {
    let mut f = fixture(3);
    f.entries[0]["salt"] = json!("c2hvcnQ=");
    f.entries[2] = json!({ "id": "x" });
    let report = verify_fixture(&f);
    assert!(results(&report)[0]["reason"].as_str().unwrap().starts_with("the entry is malformed: salt"));
    assert!(results(&report)[2]["reason"].as_str().unwrap().starts_with("the entry is malformed"));
    assert_eq!(results(&report)[1]["ok"], true);

    let refuse =
        |input: &[u8]| -> Value { serde_json::from_slice(&console_verifier::verify_page_json(input)).unwrap() };
    assert_eq!(refuse(b"{\"entries\":[],\"entries\":[]}")["error"]["code"], "invalid_json");
    assert_eq!(refuse(b"[]")["error"]["code"], "invalid_input");
    let no_keys = json!({ "entries": [], "batch": fixture(1).batch, "trusted": { "checkpoint_keys": [] } });
    assert_eq!(refuse(&serde_json::to_vec(&no_keys).unwrap())["error"]["code"], "invalid_input");
    let bad_key =
        json!({ "entries": [], "batch": fixture(1).batch, "trusted": { "checkpoint_keys": ["a+00000000+AAAA"] } });
    assert!(refuse(&serde_json::to_vec(&bad_key).unwrap())["error"]["message"]
        .as_str()
        .unwrap()
        .contains("checkpoint_keys[0]"));
}

#[test]
fn the_c_abi_answers_a_length_prefixed_json_buffer() {
    use console_verifier::abi::{alloc, dealloc, verify_page};
    let f = fixture(2);
    let keys = [pinned(&f.key)];
    let input = serde_json::to_vec(&json!({ "entries": f.entries, "batch": f.batch,
        "trusted": { "checkpoint_keys": keys, "global_log_keys": keys } }))
    .unwrap();
    let ptr = alloc(input.len());
    // SAFETY: `ptr` is a fresh buffer of `input.len()` bytes from `alloc`, and the result buffer
    // is read within the length it states, then freed once with its whole length.
    let answer = unsafe {
        std::ptr::copy_nonoverlapping(input.as_ptr(), ptr, input.len());
        let out = verify_page(ptr, input.len());
        dealloc(ptr, input.len());
        let n = u32::from_le_bytes(std::slice::from_raw_parts(out, 4).try_into().unwrap()) as usize;
        let json = std::slice::from_raw_parts(out.add(4), n).to_vec();
        dealloc(out, 4 + n);
        json
    };
    assert_eq!(answer, console_verifier::verify_page_json(&input));
    let report: Value = serde_json::from_slice(&answer).unwrap();
    assert!(results(&report).iter().all(|r| r["ok"] == true));
}
