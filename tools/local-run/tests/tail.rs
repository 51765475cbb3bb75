//! The live tail end to end: a real WebSocket client on the local gateway's `/v1/tail`, the
//! `tail` handler, the tail queue consumed by the fan-out as in AWS, posting back through the
//! Management API with the SDK's client, over PostgreSQL and the local AWS endpoint.
//!
//! Waits have generous limits (they only keep a broken build from hanging); nothing is timed.

mod support;

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{event, Stack};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a frame it expects before failing.
const WAIT: Duration = Duration::from_secs(30);

async fn start() -> Result<(Stack, String)> {
    Stack::start_tail(Default::default()).await
}

async fn connect(ws: &str, token: &str) -> Result<Socket> {
    let (socket, _) = tokio_tungstenite::connect_async(format!("{ws}?token={token}")).await?;
    Ok(socket)
}

/// The HTTP status a refused handshake was answered with.
async fn refused_status(url: &str) -> Result<u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => bail!("{url} was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Ok(response.status().as_u16()),
        Err(other) => bail!("{url}: {other}"),
    }
}

async fn send(socket: &mut Socket, value: Value) -> Result<()> {
    socket.send(Message::text(value.to_string())).await?;
    Ok(())
}

/// The next text frame, as JSON.
async fn next_frame(socket: &mut Socket) -> Result<Value> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .context("no frame within the wait limit")?
            .context("the socket closed")??;
        if let Message::Text(text) = message {
            return Ok(serde_json::from_str(&text)?);
        }
    }
}

/// Subscribes and returns the head the server answered with.
async fn subscribe(socket: &mut Socket, filter: Value, after_seq: Option<u64>) -> Result<Option<u64>> {
    send(socket, json!({ "action": "subscribe", "filter": filter, "after_seq": after_seq })).await?;
    let frame = next_frame(socket).await?;
    anyhow::ensure!(frame["type"] == "subscribed", "{frame}");
    Ok(frame["head"].as_u64())
}

/// What a client keeps: the entries of `events` frames in arrival order, dropping seqs it
/// already holds (the protocol's de-duplication), until it holds `until`.
struct Received {
    seqs: Vec<u64>,
    tenants: BTreeSet<String>,
    actors: BTreeSet<String>,
}

async fn receive_until(socket: &mut Socket, until: u64, mut received: Received) -> Result<Received> {
    while received.seqs.last().is_none_or(|&last| last < until) {
        let frame = next_frame(socket).await?;
        match frame["type"].as_str() {
            Some("events") => {
                for entry in frame["entries"].as_array().context("entries")? {
                    let seq = entry["seq"].as_u64().context("seq")?;
                    received.tenants.insert(entry["tenant_id"].as_str().unwrap_or_default().to_owned());
                    if let Some(actor) = entry["event"]["actor"]["id"].as_str() {
                        received.actors.insert(actor.to_owned());
                    }
                    if received.seqs.contains(&seq) {
                        continue;
                    }
                    received.seqs.push(seq);
                }
            }
            _ => bail!("unexpected frame {frame}"),
        }
    }
    Ok(received)
}

fn fresh() -> Received {
    Received { seqs: Vec::new(), tenants: BTreeSet::new(), actors: BTreeSet::new() }
}

async fn append(stack: &Stack, key: &str, actor: &str) -> Result<u64> {
    let reply = stack.call(Method::POST, "/v1/events", Some(key), Some(&event("user.login", actor))).await?;
    anyhow::ensure!(reply.status == StatusCode::CREATED, "append: {reply:?}");
    reply.body["seq"].as_u64().context("seq")
}

#[tokio::test]
async fn events_appended_by_another_client_arrive_in_seq_order() -> Result<()> {
    let (stack, ws) = start().await?;
    let (_, admin) = stack.tenant("tail-order").await?;
    let mut socket = connect(&ws, &admin).await?;
    let head = subscribe(&mut socket, json!({}), None).await?.context("a tenant has its creation record")?;
    let mut appended = Vec::new();
    for i in 0..5 {
        appended.push(append(&stack, &admin, &format!("u{i}")).await?);
    }
    let received = receive_until(&mut socket, *appended.last().context("appended")?, fresh()).await?;
    assert_eq!(received.seqs, ((head + 1)..=(head + 5)).collect::<Vec<_>>());
    assert_eq!(appended, received.seqs);
    Ok(())
}

#[tokio::test]
async fn a_subscription_filter_is_applied_to_the_stream() -> Result<()> {
    let (stack, ws) = start().await?;
    let (_, admin) = stack.tenant("tail-filter").await?;
    let mut socket = connect(&ws, &admin).await?;
    subscribe(&mut socket, json!({ "actor_id": "bob", "action": "user.*" }), None).await?;
    let mut bobs = Vec::new();
    for i in 0..8 {
        let actor = if i % 3 == 0 { "bob" } else { "ada" };
        let seq = append(&stack, &admin, actor).await?;
        if actor == "bob" {
            bobs.push(seq);
        }
    }
    let received = receive_until(&mut socket, *bobs.last().context("bob appended")?, fresh()).await?;
    assert_eq!(received.seqs, bobs);
    assert_eq!(received.actors, BTreeSet::from(["bob".to_owned()]));
    Ok(())
}

#[tokio::test]
async fn a_reconnect_with_after_seq_gets_everything_committed_meanwhile_exactly_once() -> Result<()> {
    let (stack, ws) = start().await?;
    let (_, admin) = stack.tenant("tail-reconnect").await?;
    let mut socket = connect(&ws, &admin).await?;
    let head = subscribe(&mut socket, json!({}), None).await?.context("head")?;
    let mut last = head;
    for i in 0..3 {
        last = append(&stack, &admin, &format!("before{i}")).await?;
    }
    let before = receive_until(&mut socket, last, fresh()).await?;
    // A forced reconnect: the socket is dropped without a close handshake.
    drop(socket);
    let held = *before.seqs.last().context("held")?;
    for i in 0..6 {
        last = append(&stack, &admin, &format!("meanwhile{i}")).await?;
    }
    let mut socket = connect(&ws, &admin).await?;
    subscribe(&mut socket, json!({}), Some(held)).await?;
    // And more while the backfill runs.
    for i in 0..3 {
        last = append(&stack, &admin, &format!("after{i}")).await?;
    }
    let all = receive_until(&mut socket, last, before).await?;
    assert_eq!(all.seqs, ((head + 1)..=last).collect::<Vec<_>>(), "every seq once, in order, none missing");
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_on_one_tenant_give_a_gapless_stream() -> Result<()> {
    let (stack, ws) = start().await?;
    let (_, admin) = stack.tenant("tail-concurrent").await?;
    let mut socket = connect(&ws, &admin).await?;
    let head = subscribe(&mut socket, json!({}), None).await?.context("head")?;
    let stack = std::sync::Arc::new(stack);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stack, admin) = (stack.clone(), admin.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    append(&stack, &admin, &format!("w{w}-{i}")).await?;
                }
                Ok::<(), anyhow::Error>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let last = head + 40;
    let received = receive_until(&mut socket, last, fresh()).await?;
    // Arrival order after dropping held seqs: ascending and without a gap.
    assert_eq!(received.seqs, ((head + 1)..=last).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn another_tenants_events_never_arrive() -> Result<()> {
    let (stack, ws) = start().await?;
    let (tenant_a, admin_a) = stack.tenant("tail-a").await?;
    let (_, admin_b) = stack.tenant("tail-b").await?;
    let mut socket = connect(&ws, &admin_a).await?;
    subscribe(&mut socket, json!({}), Some(0)).await?;
    // B's connection is open too, so B's wake-ups have a connection to serve.
    let mut socket_b = connect(&ws, &admin_b).await?;
    subscribe(&mut socket_b, json!({}), None).await?;
    let mut last_b = 0;
    for i in 0..5 {
        last_b = append(&stack, &admin_b, &format!("b{i}")).await?;
    }
    let received_b = receive_until(&mut socket_b, last_b, fresh()).await?;
    let marker = append(&stack, &admin_a, "a-marker").await?;
    let received = receive_until(&mut socket, marker, fresh()).await?;
    assert_eq!(received.tenants, BTreeSet::from([tenant_a.clone()]));
    assert!(!received_b.tenants.contains(&tenant_a), "{:?}", received_b.tenants);
    Ok(())
}

#[tokio::test]
async fn a_bad_missing_or_unreadable_token_is_refused_at_connect() -> Result<()> {
    let (stack, ws) = start().await?;
    let (_, admin) = stack.tenant("tail-auth").await?;
    assert_eq!(refused_status(&ws).await?, 401);
    assert_eq!(refused_status(&format!("{ws}?token=")).await?, 401);
    assert_eq!(refused_status(&format!("{ws}?token=alk_nope_nope")).await?, 403);
    // A key without events:read passes the authorizer and is refused by $connect.
    let writer = stack.key(&admin, &["events:write"]).await?;
    assert_eq!(refused_status(&format!("{ws}?token={writer}")).await?, 403);
    Ok(())
}

#[tokio::test]
async fn unknown_actions_and_bad_subscriptions_get_error_frames_and_ping_gets_pong() -> Result<()> {
    let (stack, ws) = start().await?;
    let (_, admin) = stack.tenant("tail-frames").await?;
    let mut socket = connect(&ws, &admin).await?;
    send(&mut socket, json!({ "action": "dance" })).await?;
    let frame = next_frame(&mut socket).await?;
    assert_eq!((frame["type"].as_str(), frame["error"]["code"].as_str()), (Some("error"), Some("unknown_action")));
    socket.send(Message::text("not json")).await?;
    assert_eq!(next_frame(&mut socket).await?["error"]["code"], "unknown_action");
    send(&mut socket, json!({ "action": "ping" })).await?;
    assert_eq!(next_frame(&mut socket).await?, json!({ "type": "pong" }));
    send(&mut socket, json!({ "action": "subscribe", "filter": { "q": "x" } })).await?;
    let frame = next_frame(&mut socket).await?;
    assert_eq!(frame["error"]["code"], "invalid_request", "{frame}");
    assert!(frame["error"]["message"].as_str().unwrap_or_default().contains("filter.q"), "{frame}");
    socket.send(Message::text(r#"{"action":"subscribe","filter":{},"filter":{}}"#)).await?;
    assert_eq!(next_frame(&mut socket).await?["error"]["code"], "invalid_json");
    subscribe(&mut socket, json!({}), None).await?;
    send(&mut socket, json!({ "action": "subscribe", "filter": {} })).await?;
    // Once subscribed, event frames may come first (a wake-up for the tenant's own admin records
    // can still be on its way); the answer to the second subscribe is the first error frame.
    let mut frame = next_frame(&mut socket).await?;
    for _ in 0..10 {
        if frame["type"] == "error" {
            break;
        }
        assert_eq!(frame["type"], "events", "{frame}");
        frame = next_frame(&mut socket).await?;
    }
    assert_eq!(frame["error"]["code"], "already_subscribed", "{frame}");
    Ok(())
}

#[tokio::test]
async fn the_management_api_refuses_a_frame_over_128_kb_and_answers_410_for_unknown_connections() -> Result<()> {
    let (stack, ws) = start().await?;
    let (tenant, admin) = stack.tenant("tail-limits").await?;
    let service = local_run::tail_service(&stack.env, &stack.sdk).await?;
    let mut socket = connect(&ws, &admin).await?;
    let connections = service.connections.by_tenant(tenant.parse()?).await?;
    let id = &connections.first().context("the connection is stored at $connect")?.connection_id;
    assert!(service.poster.is_open(id).await?);
    let too_big = format!("\"{}\"", "x".repeat(128 * 1024));
    match service.poster.post(id, &too_big).await {
        Err(shared::aws::connections::PostError::Aws { message, .. }) => {
            assert_eq!(message, "PayloadTooLargeException")
        }
        other => bail!("a frame over 128 KB: {other:?}"),
    }
    service.poster.post(id, r#"{"type":"pong"}"#).await?;
    assert_eq!(next_frame(&mut socket).await?, json!({ "type": "pong" }));
    match service.poster.post("bm9uZS1zdWNoLWlk", "{}").await {
        Err(shared::aws::connections::PostError::Gone) => {}
        other => bail!("an unknown connection: {other:?}"),
    }
    assert!(!service.poster.is_open("bm9uZS1zdWNoLWlk").await?);
    Ok(())
}

#[tokio::test]
async fn the_fanout_deletes_gone_and_expired_connections() -> Result<()> {
    let (stack, _) = start().await?;
    let (tenant, admin) = stack.tenant("tail-gone").await?;
    let tenant: uuid::Uuid = tenant.parse()?;
    let service = local_run::tail_service(&stack.env, &stack.sdk).await?;
    let context = std::collections::HashMap::from([
        ("key_id".to_owned(), "k".to_owned()),
        ("tenant_id".to_owned(), tenant.to_string()),
        ("scopes".to_owned(), "events:read".to_owned()),
    ]);
    let now = chrono::Utc::now().timestamp();
    let subscription = shared::aws::tail_connections::StoredSubscription { filter_json: "{}".into(), cursor: -1 };
    // A connection the gateway never had (closed without its $disconnect reaching us) ...
    service.connections.put_connection("Z29uZQ==", tenant, &context, now).await?;
    service.connections.subscribe("Z29uZQ==", &subscription).await?;
    // ... and one older than API Gateway's 2 hours, which moto never expires.
    service.connections.put_connection("b2xk", tenant, &context, now - 3 * 3600).await?;
    service.connections.subscribe("b2xk", &subscription).await?;
    append(&stack, &admin, "ada").await?;
    let message = json!({ "v": 1, "outbox_id": 1, "tenant_id": tenant, "first_seq": 1, "count": 1 }).to_string();
    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(json!({ "Records": [{ "messageId": "m1", "body": message }] }))?;
    let response = shared::sqs::handle_tail_event(&service, &event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let far_past = 0;
    for id in ["Z29uZQ==", "b2xk"] {
        assert_eq!(service.connections.get(id, far_past).await?, None, "{id} was deleted");
    }
    Ok(())
}

#[tokio::test]
async fn an_idle_connection_is_closed_by_the_gateway() -> Result<()> {
    let limits = local_run::websocket::SocketLimits { idle: Duration::from_secs(1), ..Default::default() };
    let (stack, ws) = Stack::start_tail(limits).await?;
    let (_, admin) = stack.tenant("tail-idle").await?;
    let mut socket = connect(&ws, &admin).await?;
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(message) = socket.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .context("the idle connection stayed open")?;
    assert_eq!(closed, Some(1001));
    Ok(())
}
