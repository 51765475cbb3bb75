//! The local gateway's WebSocket side, standing in for the live tail's API Gateway WebSocket API
//! and its Management API:
//!
//! - `GET /v1/tail?token=...` upgrades to a WebSocket. As in AWS, the Lambda authorizer logic
//!   runs on the query string's `token` first (missing: 401, denied: 403, before any function
//!   runs), then the `tail` handler gets the `$connect` event with the authorizer's context, and
//!   a status other than 200 refuses the handshake with it. Each text message becomes a
//!   `MESSAGE` event routed by its `action` (`subscribe`, `ping`, else `$default`), and the
//!   closing of the socket a `$disconnect` event: the event JSON AWS sends, parsed into the same
//!   type and handed to the same handler code.
//! - `POST /@connections/{id}` sends a frame, `DELETE` closes the connection, `GET` describes it,
//!   on the paths and with the errors the SDK's Management API client uses (410 `GoneException`
//!   for an unknown connection, 413 `PayloadTooLargeException`), so the fan-out posts through the
//!   real client pointed at this gateway.
//!
//! AWS's limits are enforced: 128 KB messages either way (client frames at most 32 KB), a
//! connection closed after 10 minutes without a message from the client, and after 2 hours in
//! any case ([`SocketLimits`]).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};
use shared::service::authorizer::Authorizer;
use shared::service::tail::TailService;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// API Gateway WebSocket APIs: "WebSocket frame size: 32 KB", "Message payload size: 128 KB".
pub const MAX_CLIENT_FRAME: usize = 32 * 1024;
pub const MAX_MESSAGE: usize = 128 * 1024;
/// "Idle Connection Timeout: 10 minutes", "Connection duration for WebSocket API: 2 hours".
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const MAX_CONNECTION: Duration = Duration::from_secs(2 * 3600);

/// The connection limits; tests may shorten them.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    pub idle: Duration,
    pub lifetime: Duration,
    pub function_timeout: Duration,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            idle: IDLE_TIMEOUT,
            lifetime: MAX_CONNECTION,
            function_timeout: crate::gateway::FUNCTION_TIMEOUT,
        }
    }
}

enum Outgoing {
    Text(String),
    Close,
}

struct Open {
    sender: mpsc::UnboundedSender<Outgoing>,
    connected_at: chrono::DateTime<chrono::Utc>,
    last_active: Arc<Mutex<chrono::DateTime<chrono::Utc>>>,
    user_agent: String,
}

/// The WebSocket side of the gateway: the tail handler and the open connections.
#[derive(Clone)]
pub struct TailSockets {
    tail: Arc<TailService>,
    open: Arc<Mutex<HashMap<String, Open>>>,
    pub limits: SocketLimits,
}

fn gateway_message(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// An error of the Management API as the SDK reads it: the error type in `x-amzn-ErrorType`.
fn management_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (status, [("x-amzn-ErrorType", error_type.to_owned())], axum::Json(json!({ "message": message }))).into_response()
}

fn new_connection_id() -> String {
    // API Gateway's ids look like `L0SM9cOFvHcCIhw=`: 11 random bytes, base64.
    let bytes: [u8; 11] = rand_bytes();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let id = uuid::Uuid::new_v4();
    let mut out = [0u8; N];
    out.copy_from_slice(&id.as_bytes()[..N]);
    out
}

impl std::fmt::Debug for TailSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailSockets").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl TailSockets {
    pub fn new(tail: TailService) -> Self {
        TailSockets {
            tail: Arc::new(tail),
            open: Arc::new(Mutex::new(HashMap::new())),
            limits: SocketLimits::default(),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /v1/tail`: authorizer, `$connect`, then the socket.
    pub async fn upgrade(
        &self,
        authorizer: &Authorizer,
        ws: WebSocketUpgrade,
        query: HashMap<String, String>,
        headers: HeaderMap,
    ) -> Response {
        let Some(token) = query.get("token").filter(|t| !t.is_empty()) else {
            return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        let Some(caller) = authorizer.authorize(Some(&format!("Bearer {token}"))).await else {
            return gateway_message(StatusCode::FORBIDDEN, "Forbidden");
        };
        let connection_id = new_connection_id();
        let connected_at = chrono::Utc::now();
        let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut authorizer_context: Map<String, Value> = caller.to_context().into_iter().collect();
        authorizer_context.insert("principalId".into(), Value::String(caller.key_id.clone()));
        authorizer_context.insert("integrationLatency".into(), json!(0));
        let base = EventBase { connection_id: connection_id.clone(), connected_at, user_agent, authorizer_context };
        let mut connect = base.event("$connect", "CONNECT", None);
        connect["headers"] = headers_json(&headers);
        connect["queryStringParameters"] = json!(query);
        let status = self.invoke(connect).await;
        if status != 200 {
            let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return gateway_message(status, status.canonical_reason().unwrap_or("Forbidden"));
        }
        let sockets = self.clone();
        ws.max_frame_size(MAX_CLIENT_FRAME)
            .max_message_size(MAX_MESSAGE)
            .on_upgrade(move |socket| async move { sockets.serve(socket, base).await })
    }

    /// Runs the handler on an event as Lambda would: parsed into the event type, within the
    /// function timeout; its status code.
    async fn invoke(&self, event: Value) -> i64 {
        let event: ApiGatewayWebsocketProxyRequest = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "the gateway built a WebSocket event the function cannot parse");
                return 500;
            }
        };
        let call = shared::api::tail::handle_tail_event(&self.tail, &event);
        match tokio::time::timeout(self.limits.function_timeout, call).await {
            Ok(response) => response.status_code,
            Err(_) => {
                tracing::warn!("the tail function timed out");
                500
            }
        }
    }

    async fn serve(&self, mut socket: WebSocket, base: EventBase) {
        let (sender, mut outgoing) = mpsc::unbounded_channel();
        let last_active = Arc::new(Mutex::new(chrono::Utc::now()));
        self.open().insert(
            base.connection_id.clone(),
            Open {
                sender,
                connected_at: base.connected_at,
                last_active: last_active.clone(),
                user_agent: base.user_agent.clone(),
            },
        );
        let ends_at = Instant::now() + self.limits.lifetime;
        let mut idle_until = Instant::now() + self.limits.idle;
        let (status, reason) = loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        idle_until = Instant::now() + self.limits.idle;
                        *last_active.lock().unwrap_or_else(|p| p.into_inner()) = chrono::Utc::now();
                        let body = text.to_string();
                        let route = shared::api::tail::route_key(&body);
                        let event = base.event(route, "MESSAGE", Some(body));
                        // API Gateway invokes the integration for each message on its own.
                        let sockets = self.clone();
                        tokio::spawn(async move { sockets.invoke(event).await });
                    }
                    Some(Ok(Message::Binary(_))) => {
                        idle_until = Instant::now() + self.limits.idle;
                        let event = base.event("$default", "MESSAGE", Some(String::new()));
                        let sockets = self.clone();
                        tokio::spawn(async move { sockets.invoke(event).await });
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => idle_until = Instant::now() + self.limits.idle,
                    Some(Ok(Message::Close(_))) | None => break (1000, "Client closed"),
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "a tail socket failed (a message over the limits?)");
                        let _ = socket.send(close(1009, "Message too big")).await;
                        break (1009, "Message too big");
                    }
                },
                frame = outgoing.recv() => match frame {
                    Some(Outgoing::Text(text)) => {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break (1006, "Connection lost");
                        }
                    }
                    Some(Outgoing::Close) | None => {
                        let _ = socket.send(close(1000, "Closed by the server")).await;
                        break (1000, "Closed by the server");
                    }
                },
                _ = tokio::time::sleep_until(idle_until) => {
                    let _ = socket.send(close(1001, "Going away")).await;
                    break (1001, "Idle timeout");
                }
                _ = tokio::time::sleep_until(ends_at) => {
                    let _ = socket.send(close(1001, "Going away")).await;
                    break (1001, "Connection duration exceeded");
                }
            }
        };
        self.open().remove(&base.connection_id);
        let mut event = base.event("$disconnect", "DISCONNECT", None);
        event["requestContext"]["disconnectStatusCode"] = json!(status);
        event["requestContext"]["disconnectReason"] = json!(reason);
        self.invoke(event).await;
    }

    /// `POST /@connections/{id}`.
    pub fn post(&self, connection_id: &str, body: Bytes) -> Response {
        if body.len() > MAX_MESSAGE {
            return management_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", "Message too long");
        }
        let Ok(text) = String::from_utf8(body.to_vec()) else {
            return management_error(StatusCode::BAD_REQUEST, "BadRequestException", "Data is not UTF-8");
        };
        match self.open().get(connection_id) {
            Some(open) if open.sender.send(Outgoing::Text(text)).is_ok() => StatusCode::OK.into_response(),
            _ => gone(),
        }
    }

    /// `DELETE /@connections/{id}`.
    pub fn delete(&self, connection_id: &str) -> Response {
        match self.open().get(connection_id) {
            Some(open) if open.sender.send(Outgoing::Close).is_ok() => StatusCode::NO_CONTENT.into_response(),
            _ => gone(),
        }
    }

    /// `GET /@connections/{id}`.
    pub fn describe(&self, connection_id: &str) -> Response {
        let open = self.open();
        let Some(connection) = open.get(connection_id) else { return gone() };
        let last = *connection.last_active.lock().unwrap_or_else(|p| p.into_inner());
        let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        axum::Json(json!({
            "connectedAt": at(connection.connected_at),
            "lastActiveAt": at(last),
            "identity": { "sourceIp": "127.0.0.1", "userAgent": connection.user_agent },
        }))
        .into_response()
    }
}

fn gone() -> Response {
    management_error(StatusCode::GONE, "GoneException", "The connection is gone")
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        map.insert(name.as_str().to_owned(), Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    Value::Object(map)
}

/// What every event of one connection repeats.
struct EventBase {
    connection_id: String,
    connected_at: chrono::DateTime<chrono::Utc>,
    user_agent: String,
    authorizer_context: Map<String, Value>,
}

impl EventBase {
    /// The event API Gateway sends the integration of `route_key`.
    fn event(&self, route_key: &str, event_type: &str, body: Option<String>) -> Value {
        let now = chrono::Utc::now();
        let request_id = base64::engine::general_purpose::STANDARD.encode(rand_bytes::<10>());
        let mut event = json!({
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "extendedRequestId": request_id,
                "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
                "messageDirection": "IN",
                "stage": "local",
                "connectedAt": self.connected_at.timestamp_millis(),
                "requestTimeEpoch": now.timestamp_millis(),
                "identity": { "sourceIp": "127.0.0.1", "userAgent": self.user_agent },
                "requestId": request_id,
                "domainName": "127.0.0.1",
                "connectionId": self.connection_id,
                "apiId": "local",
                "authorizer": self.authorizer_context,
            },
            "isBase64Encoded": false,
        });
        if let Some(body) = body {
            event["requestContext"]["messageId"] =
                json!(base64::engine::general_purpose::STANDARD.encode(rand_bytes::<10>()));
            event["body"] = Value::String(body);
        }
        event
    }
}
