//! Listing and counting on real PostgreSQL: filters, order, cursors that stay exact while other
//! writers append, tenant isolation, and the store pool.

mod support;

use serde_json::json;
use shared::service::ingest::{ingest, Request};
use shared::service::query::{event_stats, list_events, EventQuery, StatsQuery};
use shared::store::connect::DbConfig;
use shared::store::pool::StorePool;
use shared::store::Store;
use std::collections::BTreeSet;
use support::{event, index_text, TestDb};
use uuid::Uuid;

async fn append(store: &mut Store, tenant: Uuid, events: &[serde_json::Value]) {
    ingest(store, tenant, Request::Batch(events), None).await.expect("append");
}

fn query(params: &[(&str, &str)]) -> EventQuery {
    EventQuery::from_params(params.iter().copied()).expect("valid query")
}

async fn actions(store: &mut Store, tenant: Uuid, params: &[(&str, &str)]) -> Vec<String> {
    let page = list_events(store, tenant, &query(params)).await.expect("list");
    page.entries
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e.content.as_deref().expect("content")).expect("json");
            v["action"].as_str().expect("action").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn each_filter_selects_exactly_its_events() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let tenant = store.create_tenant("t").await?;
    append(
        &mut store,
        tenant,
        &[
            json!({ "action": "user.login", "actor": { "id": "ada" }, "outcome": "success", "severity": "low", "occurred_at": "2026-01-01T00:00:00Z" }),
            json!({ "action": "user.logout", "actor": { "id": "ada" }, "resource": { "type": "session", "id": "s1" }, "occurred_at": "2026-02-01T00:00:00Z" }),
            json!({ "action": "user_login", "actor": { "id": "bob" }, "outcome": "denied", "source": "web", "occurred_at": "2026-03-01T00:00:00Z" }),
            json!({ "action": "doc.read", "actor": { "id": "bob" }, "resource": { "type": "doc", "id": "d1" }, "metadata": { "title": "quarterly invoice" }, "occurred_at": "2026-04-01T00:00:00Z" }),
        ],
    )
    .await;
    let asc = [("order", "asc")];
    let with = |p: &[(&'static str, &'static str)]| [&asc[..], p].concat();
    assert_eq!(actions(&mut store, tenant, &with(&[("action", "user.login")])).await, ["user.login"]);
    // The prefix is literal: "user.*" does not match "user_login" (no LIKE wildcard leaks).
    assert_eq!(actions(&mut store, tenant, &with(&[("action", "user.*")])).await, ["user.login", "user.logout"]);
    assert_eq!(actions(&mut store, tenant, &with(&[("action", "user_*")])).await, ["user_login"]);
    assert_eq!(actions(&mut store, tenant, &with(&[("actor_id", "bob")])).await, ["user_login", "doc.read"]);
    assert_eq!(
        actions(&mut store, tenant, &with(&[("resource_type", "doc"), ("resource_id", "d1")])).await,
        ["doc.read"]
    );
    assert_eq!(actions(&mut store, tenant, &with(&[("outcome", "denied")])).await, ["user_login"]);
    assert_eq!(actions(&mut store, tenant, &with(&[("severity", "low")])).await, ["user.login"]);
    assert_eq!(actions(&mut store, tenant, &with(&[("source", "web")])).await, ["user_login"]);
    assert_eq!(
        actions(&mut store, tenant, &with(&[("from", "2026-02-01T00:00:00Z"), ("to", "2026-04-01T00:00:00Z")])).await,
        ["user.logout", "user_login"]
    );
    // Full text is written after commit, by the indexer.
    assert!(actions(&mut store, tenant, &with(&[("q", "invoice")])).await.is_empty(), "searchable before indexing");
    index_text(&mut store, tenant).await?;
    assert_eq!(actions(&mut store, tenant, &with(&[("q", "invoice")])).await, ["doc.read"]);
    assert_eq!(actions(&mut store, tenant, &with(&[("q", "ada")])).await, ["user.login", "user.logout"]);
    assert_eq!(
        actions(&mut store, tenant, &with(&[("actor_id", "ada"), ("outcome", "success")])).await,
        ["user.login", "user.logout"]
    );
    // Newest first by default.
    assert_eq!(actions(&mut store, tenant, &[("actor_id", "bob")]).await, ["doc.read", "user_login"]);
    for value in ["' OR 1=1 --", "%", "_", "\\", "ada' --"] {
        for name in ["action", "actor_id", "resource_id", "source"] {
            assert!(actions(&mut store, tenant, &[(name, value)]).await.is_empty(), "{name}={value}");
        }
    }
    // In `q` the same characters are search syntax, not SQL: quotes and dashes are word breaks.
    assert!(actions(&mut store, tenant, &[("q", "' OR 1=1 --")]).await.is_empty());
    assert_eq!(actions(&mut store, tenant, &with(&[("q", "ada' --")])).await, ["user.login", "user.logout"]);

    let stats = event_stats(
        &mut store,
        tenant,
        &StatsQuery::from_params([("from", "2025-12-01T00:00:00Z"), ("to", "2026-12-01T00:00:00Z")])?,
    )
    .await?;
    assert_eq!(stats.total, 4);
    assert_eq!(stats.by_outcome.get("success"), Some(&3));
    assert_eq!(stats.by_outcome.get("denied"), Some(&1));
    assert_eq!(stats.by_severity.get("low"), Some(&1));
    assert_eq!(stats.by_severity.get("none"), Some(&3));
    assert_eq!(stats.by_action.len(), 4);
    Ok(())
}

#[tokio::test]
async fn another_tenants_events_never_appear() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let (a, b) = (store.create_tenant("a").await?, store.create_tenant("b").await?);
    append(&mut store, a, &[event("shared.action", "same-actor")]).await;
    append(&mut store, b, &[event("shared.action", "same-actor")]).await;
    let page = list_events(&mut store, b, &query(&[("action", "shared.action")])).await?;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].entry.tenant_id, b);
    Ok(())
}

/// Pages through with `order` while a second connection keeps appending: the pages hold every
/// entry that existed when paging started, each exactly once, in order.
async fn page_while_appending(order: &str) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let tenant = store.create_tenant("t").await?;
    let first: Vec<_> = (0..300).map(|i| event("page.test", &format!("u{i}"))).collect();
    append(&mut store, tenant, &first).await;
    let mut writer = db.store().await?;
    let appending = tokio::spawn(async move {
        for i in 0..60 {
            append(&mut writer, tenant, &[event("page.test", &format!("late{i}"))]).await;
        }
    });
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("order", order), ("limit", "17"), ("action", "page.test")];
        if let Some(c) = &cursor {
            params.push(("cursor", c.as_str()));
        }
        let page = list_events(&mut store, tenant, &query(&params)).await?;
        seen.extend(page.entries.iter().map(|e| e.entry.seq));
        tokio::task::yield_now().await;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    appending.await?;
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an entry was listed twice");
    let mut sorted = seen.clone();
    if order == "asc" {
        sorted.sort();
    } else {
        sorted.sort_by(|a, b| b.cmp(a));
    }
    assert_eq!(seen, sorted, "pages out of order");
    // Every entry that existed before paging began was listed (ascending also sees later ones).
    for seq in 0..300 {
        assert!(unique.contains(&seq), "seq {seq} skipped ({order})");
    }
    if order == "asc" {
        let max = *unique.iter().max().expect("entries");
        assert_eq!(unique.len() as u64, max + 1, "a gap in ascending pages");
    }
    Ok(())
}

#[tokio::test]
async fn ascending_pages_neither_skip_nor_repeat_while_others_append() -> anyhow::Result<()> {
    page_while_appending("asc").await
}

#[tokio::test]
async fn descending_pages_neither_skip_nor_repeat_while_others_append() -> anyhow::Result<()> {
    page_while_appending("desc").await
}

#[tokio::test]
async fn the_pool_replaces_a_connection_the_server_killed() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let pool = StorePool::new(DbConfig::plain(db.app_url()), 2);
    let tenant = pool.get().await?.create_tenant("t").await?;
    let admin = db.superuser().await?;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
            &[&db.name, &support::APP_USER],
        )
        .await?;
    // The first use after the kill may fail (the store only learns of the loss then); the pool
    // then drops that store and the next request gets a fresh connection.
    let mut attempts = 0;
    loop {
        let mut store = pool.get().await?;
        match store.tree_head(tenant).await {
            Ok(head) => {
                assert_eq!(head.size, 0);
                break;
            }
            Err(e) if attempts < 3 => {
                assert!(e.is_transient(), "{e}");
                attempts += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Two users at once get two different connections.
    let (mut s1, mut s2) = (pool.get().await?, pool.get().await?);
    assert_ne!(s1.backend_pid().await?, s2.backend_pid().await?);
    Ok(())
}

#[tokio::test]
async fn stored_metacharacters_match_only_themselves() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut store = db.store().await?;
    let tenant = store.create_tenant("t").await?;
    let odd = ["' OR 1=1 --", "100%", "a_b", "back\\slash"];
    let events: Vec<_> = odd
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({ "action": format!("odd.{i}"), "actor": { "id": v }, "resource": { "type": v, "id": v }, "source": v })
        })
        .chain([json!({ "action": "odd.plain", "actor": { "id": "100x" }, "resource": { "type": "axb", "id": "backslash" }, "source": "plain" })])
        .collect();
    append(&mut store, tenant, &events).await;
    for (i, v) in odd.iter().enumerate() {
        for name in ["actor_id", "resource_type", "resource_id", "source"] {
            assert_eq!(actions(&mut store, tenant, &[(name, v)]).await, [format!("odd.{i}")], "{name}={v}");
        }
    }
    // In a prefix, `_` is a character, not a wildcard (actions cannot contain `%`).
    append(
        &mut store,
        tenant,
        &[json!({ "action": "a_b.x", "actor": { "id": "u" } }), json!({ "action": "azb.x", "actor": { "id": "u" } })],
    )
    .await;
    assert_eq!(actions(&mut store, tenant, &[("action", "a_*")]).await, ["a_b.x"]);
    Ok(())
}
