//! The log as C2SP tlog-tiles through the local gateway: tiles hold the stored hashes of their
//! level, entry bundles hash to the leaves, partial tiles are prefixes of full ones, tiles the
//! tree does not fill are 404, malformed paths 400, the checkpoint is the stored note, and only a
//! reader of the whole tenant reads them. A third-party client reads the same routes in
//! tools/tlog-client.

mod support;

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::chain::hash::{leaf_hash, Hash};
use shared::chain::merkle::MemoryTree;
use shared::service::checkpoint::run_checkpointer;
use shared::signer::LocalSigner;
use support::{event, Stack};

/// `GET /v1/log/<path>` with `key`: status, content type and bytes.
async fn get(stack: &Stack, key: &str, path: &str) -> Result<(StatusCode, String, Vec<u8>)> {
    let response = stack.http.get(format!("{}/v1/log/{path}", stack.base)).bearer_auth(key).send().await?;
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Ok((status, content_type, response.bytes().await?.to_vec()))
}

fn hashes(tile: &[u8]) -> Vec<Hash> {
    tile.chunks(32).map(|c| Hash::from_slice(c).expect("32 bytes")).collect()
}

/// The entries of a bundle: 16-bit big-endian length, then the bytes.
fn entries(bundle: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        out.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    out
}

#[tokio::test]
async fn tiles_and_entry_bundles_lay_out_the_stored_tree() -> Result<()> {
    let stack = Stack::start().await?;
    let (tenant, admin) = stack.tenant("tiles").await?;
    for _ in 0..3 {
        let events: Vec<_> = (0..200).map(|i| event("doc.read", &format!("u{i}"))).collect();
        let reply =
            stack.call(Method::POST, "/v1/events/batch", Some(&admin), Some(&json!({ "events": events }))).await?;
        anyhow::ensure!(reply.status == StatusCode::CREATED, "{reply:?}");
    }
    let size = stack.tree_size(&admin).await?;
    // The tenant's own records and 600 events: two full tiles of leaves and a partial one.
    assert!((600..768).contains(&size), "{size}");
    let edge = size - 512;

    // Entry bundles: the canonical entries, whose leaf hashes are level 0.
    let mut leaves = Vec::new();
    for path in ["entries/000".to_owned(), "entries/001".to_owned(), format!("entries/002.p/{edge}")] {
        let (status, content_type, bundle) = get(&stack, &admin, &format!("tile/{path}")).await?;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/octet-stream"), "{path}");
        for entry in entries(&bundle) {
            let parsed: serde_json::Value = serde_json::from_slice(&entry)?;
            assert_eq!(parsed["seq"], json!(leaves.len()), "{path}");
            assert_eq!(parsed["tenant_id"], json!(tenant));
            leaves.push(leaf_hash(&entry));
        }
    }
    assert_eq!(leaves.len() as u64, size);
    let (_, _, level0) = get(&stack, &admin, "tile/0/000").await?;
    let (_, _, level0_second) = get(&stack, &admin, "tile/0/001").await?;
    let (_, _, level0_edge) = get(&stack, &admin, &format!("tile/0/002.p/{edge}")).await?;
    assert_eq!([hashes(&level0), hashes(&level0_second), hashes(&level0_edge)].concat(), leaves);

    // Level 1: the roots of the first two perfect subtrees of 256 leaves.
    let subtree = |range: std::ops::Range<usize>| {
        let mut tree = MemoryTree::new();
        tree.append(&leaves[range]).expect("append");
        tree.root()
    };
    let (status, _, level1) = get(&stack, &admin, "tile/1/000.p/2").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hashes(&level1), [subtree(0..256), subtree(256..512)]);
    // A partial tile is a prefix of the wider one, and is immutable once served.
    let (_, _, narrower) = get(&stack, &admin, "tile/0/002.p/10").await?;
    assert_eq!(narrower[..], level0_edge[..320]);
    let cache = stack.http.get(format!("{}/v1/log/tile/0/000", stack.base)).bearer_auth(&admin).send().await?;
    assert_eq!(cache.headers()["cache-control"], "private, max-age=31536000, immutable");

    // What the tree does not fill yet is 404; a path that is not a tile path is 400.
    let past_edge = format!("tile/0/002.p/{}", edge + 1);
    for missing in ["tile/0/002", &past_edge, "tile/1/000", "tile/1/000.p/3", "tile/2/000.p/1", "tile/entries/003.p/1"]
    {
        let (status, _, body) = get(&stack, &admin, missing).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        assert_eq!(body["error"]["code"], "not_found", "{missing}");
    }
    for malformed in
        ["tile/0/2", "tile/0/x000/002", "tile/8/000", "tile/0/000.p/256", "tile/0/000.p/0", "tile/data/000", "tile/0"]
    {
        let (status, _, body) = get(&stack, &admin, malformed).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}");
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        assert_eq!(body["error"]["code"], "invalid_request", "{malformed}");
    }

    // Another tenant reads its own tiny tree, never this one's.
    let (other_tenant, other) = stack.tenant("other").await?;
    let (status, _, bundle) = get(&stack, &other, "tile/entries/000.p/1").await?;
    assert_eq!(status, StatusCode::OK);
    let own: serde_json::Value = serde_json::from_slice(&entries(&bundle)[0])?;
    assert_eq!(own["tenant_id"], json!(other_tenant));
    let other_size = stack.tree_size(&other).await?;
    let beyond = format!("tile/0/000.p/{}", other_size + 1);
    assert_eq!(get(&stack, &other, &beyond).await?.0, StatusCode::NOT_FOUND);

    // A pinned viewer token may not read the whole log's skeleton; a plain read key may.
    let issued = stack
        .call(
            Method::POST,
            "/v1/viewer-tokens",
            Some(&admin),
            Some(&json!({ "subject": "s", "filter": { "actor_id": "u1" } })),
        )
        .await?;
    let token = issued.body["token"].as_str().context("token")?;
    assert_eq!(get(&stack, token, "tile/0/000").await?.0, StatusCode::FORBIDDEN);
    let reader = stack.key(&admin, &["events:read"]).await?;
    assert_eq!(get(&stack, &reader, "tile/0/000").await?.2, level0);
    let writer = stack.key(&admin, &["events:write"]).await?;
    assert_eq!(get(&stack, &writer, "tile/0/000").await?.0, StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn the_checkpoint_is_the_latest_signed_note_byte_for_byte() -> Result<()> {
    let stack = Stack::start().await?;
    let (_, admin) = stack.tenant("notes").await?;
    let (status, _, _) = get(&stack, &admin, "checkpoint").await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing signed yet");

    let mut store = stack.db.store().await?;
    let signer = LocalSigner::random("audit.example.com")?;
    run_checkpointer(&mut store, &signer, "audit.example.com", 10).await?;
    let latest = stack.call(Method::GET, "/v1/checkpoints/latest", Some(&admin), None).await?;
    let (status, content_type, note) = get(&stack, &admin, "checkpoint").await?;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/plain; charset=utf-8"));
    assert_eq!(String::from_utf8(note)?, latest.body["note"].as_str().context("note")?);
    Ok(())
}
