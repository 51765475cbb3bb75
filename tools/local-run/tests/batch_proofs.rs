//! `POST /v1/proofs/inclusion` over HTTP through the local gateway, on real PostgreSQL and the
//! local AWS endpoint: a page's proofs in one request, verified with the chain core; and the
//! console's verifier (`console-verifier`, the crate the browser runs as WebAssembly, here as its
//! host build) verifying a page end to end, before and after a stored event is changed.

mod support;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::chain::checkpoint;
use shared::chain::hash::Hash;
use shared::chain::merkle;
use support::{event, Stack};

fn hash(v: &Value) -> Hash {
    Hash::from_hex(v.as_str().expect("hex hash")).expect("32-byte hash")
}

/// A tenant with `n` events (`u0`..), all covered by a signed checkpoint anchored in the global
/// log; returns the tenant id and its admin key.
async fn tenant_with_signed_events(stack: &Stack, name: &str, n: usize) -> anyhow::Result<(String, String)> {
    let (tenant, admin) = stack.tenant(name).await?;
    let batch: Vec<Value> = (0..n).map(|i| event("doc.read", &format!("u{i}"))).collect();
    let r = stack.call(Method::POST, "/v1/events/batch", Some(&admin), Some(&json!({ "events": batch }))).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    local_run::checkpoint_once(&stack.env, &stack.sdk).await?;
    Ok((tenant, admin))
}

/// The tenant's events, oldest first, as `GET /v1/events` returns them.
async fn page(stack: &Stack, key: &str) -> anyhow::Result<Vec<Value>> {
    let r = stack.call(Method::GET, "/v1/events?order=asc&limit=100", Some(key), None).await?;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    Ok(r.body["events"].as_array().expect("events").clone())
}

async fn batch(stack: &Stack, key: &str, ids: &[&str]) -> anyhow::Result<support::Reply> {
    stack.call(Method::POST, "/v1/proofs/inclusion", Some(key), Some(&json!({ "ids": ids }))).await
}

fn ids(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["id"].as_str().expect("id")).collect()
}

#[tokio::test]
async fn a_page_is_proved_in_one_request_against_the_signed_and_anchored_checkpoint() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = tenant_with_signed_events(&stack, "acme", 7).await?;
    let entries = page(&stack, &admin).await?;
    let reader = stack.key(&admin, &["events:read"]).await?;
    let r = batch(&stack, &reader, &ids(&entries)).await?;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let b = &r.body;
    assert_eq!(b["missing"], json!([]));

    // The checkpoint verifies with the published key and names this tenant's log.
    let key = stack.call(Method::GET, "/v1/checkpoints/public-key", Some(&reader), None).await?;
    let key_name = key.body["key_name"].as_str().expect("key name");
    let der = base64::engine::general_purpose::STANDARD.decode(key.body["public_key"].as_str().expect("key"))?;
    let signed = checkpoint::verify(b["checkpoint"]["note"].as_str().expect("note"), key_name, &der)?;
    assert_eq!(signed.origin, format!("{key_name}/{tenant}"));
    assert_eq!(b["tree_size"], signed.size);
    assert_eq!(signed.size, entries.len() as u64, "every entry is covered");

    // One proof per id, in request order, each leading from the entry's leaf to the signed root.
    let proofs = b["proofs"].as_array().expect("proofs");
    assert_eq!(proofs.len(), entries.len());
    for (entry, proof) in entries.iter().zip(proofs) {
        assert_eq!(proof["id"], entry["id"]);
        let seq = entry["seq"].as_u64().expect("seq");
        assert_eq!((proof["seq"].as_u64(), proof["leaf_index"].as_u64()), (Some(seq), Some(seq)));
        let path: Vec<Hash> = proof["audit_path"].as_array().expect("path").iter().map(hash).collect();
        merkle::verify_inclusion(&hash(&entry["leaf_hash"]), seq, signed.size, &path, &signed.root)?;
    }

    // The checkpoint's place in the global log, as GET /v1/checkpoints/{n}/global-proof gives it.
    let single =
        stack.call(Method::GET, &format!("/v1/checkpoints/{}/global-proof", signed.size), Some(&reader), None).await?;
    assert_eq!(single.status, StatusCode::OK, "{single:?}");
    assert_eq!(b["global_proof"], single.body);
    let global = &b["global_proof"];
    let global_signed =
        checkpoint::verify(global["global_checkpoint"]["note"].as_str().expect("note"), key_name, &der)?;
    let path: Vec<Hash> = global["audit_path"].as_array().expect("path").iter().map(hash).collect();
    let leaf_index = global["leaf_index"].as_u64().expect("leaf index");
    merkle::verify_inclusion(
        &hash(&global["entry"]["leaf_hash"]),
        leaf_index,
        global_signed.size,
        &path,
        &global_signed.root,
    )?;

    // An explicit tree size needs a checkpoint signed at exactly that size.
    let at = stack
        .call(
            Method::POST,
            "/v1/proofs/inclusion",
            Some(&reader),
            Some(&json!({ "ids": [ids(&entries)[0]], "tree_size": signed.size })),
        )
        .await?;
    assert_eq!(at.status, StatusCode::OK, "{at:?}");
    let unsigned = stack
        .call(
            Method::POST,
            "/v1/proofs/inclusion",
            Some(&reader),
            Some(&json!({ "ids": [ids(&entries)[0]], "tree_size": signed.size - 1 })),
        )
        .await?;
    assert_eq!(unsigned.status, StatusCode::NOT_FOUND, "{unsigned:?}");
    Ok(())
}

#[tokio::test]
async fn more_than_100_ids_a_malformed_id_or_an_unknown_member_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = tenant_with_signed_events(&stack, "acme", 1).await?;
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let refused = [
        json!({ "ids": many }),
        json!({ "ids": [] }),
        json!({ "ids": [uuid::Uuid::now_v7().to_string(), "not-an-id"] }),
        json!({ "ids": [uuid::Uuid::now_v7().to_string()], "tenant_id": uuid::Uuid::now_v7().to_string() }),
        json!({ "ids": "x" }),
    ];
    for body in &refused {
        let r = stack.call(Method::POST, "/v1/proofs/inclusion", Some(&admin), Some(body)).await?;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {r:?}");
        assert!(["invalid_request", "invalid_json"].contains(&r.error_code()), "{r:?}");
    }
    let r = stack.call(Method::POST, "/v1/proofs/inclusion", Some(&admin), Some(&refused[2])).await?;
    assert!(r.body["error"]["message"].as_str().expect("message").contains("ids[1]"), "{r:?}");
    let exactly_100: Vec<String> = (0..100).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let r =
        stack.call(Method::POST, "/v1/proofs/inclusion", Some(&admin), Some(&json!({ "ids": exactly_100 }))).await?;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["missing"].as_array().expect("missing").len(), 100);

    // Not strict JSON: a duplicate member is refused before anything is read.
    let raw = br#"{"ids":["0190f6e2-0000-7000-8000-000000000001"],"ids":[]}"#.to_vec();
    let r = stack.call_raw(Method::POST, "/v1/proofs/inclusion", &admin, "application/json", raw).await?;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_json"), "{r:?}");
    // A writer key cannot read proofs.
    let writer = stack.key(&admin, &["events:write"]).await?;
    let r = stack
        .call(
            Method::POST,
            "/v1/proofs/inclusion",
            Some(&writer),
            Some(&json!({ "ids": [uuid::Uuid::now_v7().to_string()] })),
        )
        .await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn another_tenants_id_is_not_found_and_a_newer_event_is_not_signed_yet_per_id() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = tenant_with_signed_events(&stack, "acme", 2).await?;
    let (_, other) = tenant_with_signed_events(&stack, "globex", 2).await?;
    let theirs = page(&stack, &other).await?;
    let newer = stack.call(Method::POST, "/v1/events", Some(&admin), Some(&event("doc.read", "late"))).await?;
    assert_eq!(newer.status, StatusCode::CREATED);
    let ours = page(&stack, &admin).await?;
    let newer_id = newer.body["id"].as_str().expect("id");
    let their_id = ids(&theirs)[0];
    let our_id = ids(&ours)[0];

    let r = batch(&stack, &admin, &[our_id, their_id, newer_id]).await?;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let proved: Vec<&str> =
        r.body["proofs"].as_array().expect("proofs").iter().map(|p| p["id"].as_str().expect("id")).collect();
    assert_eq!(proved, [our_id]);
    let missing = r.body["missing"].as_array().expect("missing");
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert_eq!((missing[0]["id"].as_str(), missing[0]["code"].as_str()), (Some(their_id), Some("not_found")));
    assert_eq!((missing[1]["id"].as_str(), missing[1]["code"].as_str()), (Some(newer_id), Some("not_signed_yet")));
    assert_eq!(missing[1]["seq"], newer.body["seq"]);
    Ok(())
}

/// `verify_page` through the console verifier's JSON API, as the browser calls it.
fn verify_page(entries: &[Value], batch: &Value, checkpoint_keys: &[&str], global_keys: &[&str]) -> Value {
    let input = json!({
        "entries": entries,
        "batch": batch,
        "trusted": { "checkpoint_keys": checkpoint_keys, "global_log_keys": global_keys },
    });
    let answer = console_verifier::verify_page_json(&serde_json::to_vec(&input).expect("JSON"));
    serde_json::from_slice(&answer).expect("the verifier answers JSON")
}

#[tokio::test]
async fn the_console_verifier_passes_a_page_and_then_fails_only_the_entry_changed_in_the_database() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let (tenant, admin) = tenant_with_signed_events(&stack, "acme", 6).await?;
    let key = stack.call(Method::GET, "/v1/checkpoints/public-key", Some(&admin), None).await?;
    // Pinned out of band in a deployment (config.json); here taken from the local run's key.
    let pinned = key.body["verifier_key"].as_str().expect("verifier key").to_owned();

    let entries = page(&stack, &admin).await?;
    let b = batch(&stack, &admin, &ids(&entries)).await?;
    assert_eq!(b.status, StatusCode::OK, "{b:?}");
    let report = verify_page(&entries, &b.body, &[&pinned], &[&pinned]);
    assert_eq!(report["checkpoint"]["ok"], true, "{report}");
    assert_eq!(report["checkpoint"]["origin"], format!("{}/{tenant}", key.body["key_name"].as_str().expect("name")));
    assert_eq!(report["global"]["status"], "ok", "{report}");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), entries.len());
    for result in results {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["steps"], json!({ "leaf": "ok", "inclusion": "ok", "checkpoint": "ok", "global": "ok" }));
    }

    // A superuser bypasses the append-only trigger and rewrites one stored event.
    let victim = entries.iter().find(|e| e["event"]["actor"]["id"] == "u3").expect("u3");
    let victim_seq = victim["seq"].as_u64().expect("seq");
    let su = stack.db.superuser().await?;
    su.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE events SET content = replace(content, '\"u3\"', '\"mallory\"') WHERE tenant_id = '{tenant}' AND seq = {victim_seq};"
    ))
    .await?;

    let entries = page(&stack, &admin).await?;
    assert_eq!(entries.iter().find(|e| e["seq"] == victim_seq).expect("victim")["event"]["actor"]["id"], "mallory");
    let b = batch(&stack, &admin, &ids(&entries)).await?;
    let report = verify_page(&entries, &b.body, &[&pinned], &[&pinned]);
    for result in report["results"].as_array().expect("results") {
        if result["seq"] == victim_seq {
            assert_eq!(result["ok"], false, "{result}");
            assert_eq!(result["steps"]["leaf"], "failed", "{result}");
            assert_eq!(
                result["reason"],
                "the leaf hash does not match the entry's content: the stored event was changed"
            );
        } else {
            assert_eq!(result["ok"], true, "{result}");
        }
    }

    // With another key pinned, the same page fails at the checkpoint, whatever the response says.
    let other_key = {
        use p256::pkcs8::EncodePublicKey;
        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32])?;
        let der = secret.verifying_key().to_public_key_der()?;
        checkpoint::verifier_key(key.body["key_name"].as_str().expect("name"), der.as_bytes())?
    };
    let report = verify_page(&entries, &b.body, &[&other_key], &[&pinned]);
    assert_eq!(report["checkpoint"]["ok"], false);
    for result in report["results"].as_array().expect("results") {
        assert_eq!(result["ok"], false, "{result}");
        if result["seq"] != victim_seq {
            assert_eq!(result["steps"]["checkpoint"], "failed");
            assert_eq!(result["reason"], "the checkpoint is not signed by a trusted key");
        }
    }
    Ok(())
}
