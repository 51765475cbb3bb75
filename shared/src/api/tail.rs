//! The live tail's WebSocket edge: API Gateway's WebSocket events (`$connect`, `$disconnect`,
//! and the `subscribe`, `ping` and `$default` routes selected by `$request.body.action`) mapped
//! to `service::tail`, and its outcomes to frames posted through the Management API. The same
//! code serves the `tail` function in AWS and the local gateway's `GET /v1/tail`.
//!
//! Every answer to the client is posted (`@connections`), none is a route response, so frames of
//! one connection leave in the order they were posted, whoever posts them. The function's own
//! answer to API Gateway is only a status: on `$connect` 200 accepts the connection and 403
//! refuses it; on the other routes it is not passed to the client.

use super::error::ApiError;
use super::extract::parse_json;
use super::views::EntryView;
use crate::auth::Caller;
use crate::aws::connections::{ConnectionPoster, PostError};
use crate::aws::tail_connections::ConnectionStore;
use crate::service::tail::{error_frame, parse_filter, SubscribeResult, TailError, TailService};
use crate::store::pool::StorePool;
use crate::store::read::StoredEntry;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The tail's service with entries encoded as `GET /v1/events` returns them.
pub fn tail_service(pool: StorePool, connections: ConnectionStore, poster: ConnectionPoster) -> TailService {
    TailService { pool, connections, poster, encode: entry_json }
}

/// An entry exactly as `GET /v1/events` returns each item.
pub fn entry_json(stored: StoredEntry) -> Value {
    serde_json::to_value(EntryView::new(stored)).unwrap_or(Value::Null)
}

/// The route API Gateway selects for a message body (`$request.body.action`): `subscribe` or
/// `ping` when the body is a JSON object naming one of them, else `$default`.
pub fn route_key(body: &str) -> &'static str {
    let action = serde_json::from_str::<Value>(body).ok().and_then(|v| v.get("action")?.as_str().map(str::to_owned));
    match action.as_deref() {
        Some("subscribe") => "subscribe",
        Some("ping") => "ping",
        _ => "$default",
    }
}

/// `{"action":"subscribe","filter":{...},"after_seq":N|null}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    #[allow(dead_code)]
    action: String,
    #[serde(default)]
    filter: BTreeMap<String, String>,
    #[serde(default)]
    after_seq: Option<u64>,
}

fn status(code: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = code;
    response
}

/// A refused `$connect`: API Gateway answers the handshake with the status (the body is for
/// logs and tests; browsers do not show it).
fn refused() -> ApiGatewayProxyResponse {
    let mut response = status(403);
    let error = ApiError::forbidden("the credential does not allow events:read");
    let body = serde_json::json!({ "error": { "code": error.code, "message": error.message } }).to_string();
    response.body = Some(aws_lambda_events::encodings::Body::Text(body));
    response
}

/// Handles one WebSocket event.
pub async fn handle_tail_event(
    service: &TailService,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &event.request_context;
    let Some(connection_id) = context.connection_id.as_deref() else {
        tracing::error!("a WebSocket event without a connection id");
        return status(400);
    };
    let route = context.route_key.as_deref().unwrap_or("$default");
    let body = event.body.as_deref().unwrap_or_default();
    match route {
        "$connect" => {
            let Some(caller) = Caller::from_context(&context.authorizer.fields) else {
                return refused();
            };
            match service.connect(connection_id, &caller).await {
                Ok(true) => status(200),
                Ok(false) => refused(),
                Err(error) => {
                    tracing::error!(%error, "storing a tail connection failed");
                    status(500)
                }
            }
        }
        "$disconnect" => match service.disconnect(connection_id).await {
            Ok(()) => status(200),
            Err(error) => {
                // The item expires by itself within 2 hours.
                tracing::warn!(%error, "deleting a tail connection failed");
                status(200)
            }
        },
        "ping" => answer(service, connection_id, r#"{"type":"pong"}"#).await,
        "subscribe" => subscribe(service, connection_id, body).await,
        _ => {
            let frame = error_frame(
                "unknown_action",
                "send {\"action\":\"subscribe\",...} or {\"action\":\"ping\"}; no other action is known",
            );
            answer(service, connection_id, &frame).await
        }
    }
}

/// Posts one frame; a gone connection is forgotten.
async fn answer(service: &TailService, connection_id: &str, frame: &str) -> ApiGatewayProxyResponse {
    match service.poster.post(connection_id, frame).await {
        Ok(()) => status(200),
        Err(PostError::Gone) => {
            if let Err(error) = service.disconnect(connection_id).await {
                tracing::warn!(%error, "deleting a gone tail connection failed");
            }
            status(200)
        }
        Err(error) => {
            tracing::warn!(%error, "posting to a tail connection failed");
            status(500)
        }
    }
}

async fn subscribe(service: &TailService, connection_id: &str, body: &str) -> ApiGatewayProxyResponse {
    let request = parse_json::<SubscribeBody>(body.as_bytes())
        .and_then(|b| Ok((parse_filter(&b.filter).map_err(ApiError::from)?, b.after_seq)));
    let (filter, after_seq) = match request {
        Ok(parsed) => parsed,
        Err(e) => return answer(service, connection_id, &error_frame(e.code, &e.message)).await,
    };
    let refusal = match service.subscribe(connection_id, &filter, after_seq).await {
        Ok(SubscribeResult::Subscribed { .. }) => return status(200),
        Ok(SubscribeResult::AlreadySubscribed) => error_frame(
            "already_subscribed",
            "this connection is subscribed already; open another connection for another filter",
        ),
        Ok(SubscribeResult::Forbidden) => error_frame("forbidden", "the credential does not allow events:read"),
        Ok(SubscribeResult::UnknownConnection) => {
            error_frame("unknown_connection", "the connection is not known (expired?); reconnect")
        }
        Err(TailError::Post(PostError::Gone)) => {
            if let Err(error) = service.disconnect(connection_id).await {
                tracing::warn!(%error, "deleting a gone tail connection failed");
            }
            return status(200);
        }
        Err(error) => {
            tracing::warn!(%error, "a tail subscription failed");
            error_frame("unavailable", "the subscription could not be served; reconnect and subscribe with after_seq")
        }
    };
    answer(service, connection_id, &refusal).await
}

#[cfg(test)]
mod tests {
    use super::route_key;

    #[test]
    fn routes_are_selected_by_the_bodys_action() {
        assert_eq!(route_key(r#"{"action":"subscribe","filter":{}}"#), "subscribe");
        assert_eq!(route_key(r#"{"action":"ping"}"#), "ping");
        assert_eq!(route_key(r#"{"action":"dance"}"#), "$default");
        assert_eq!(route_key("not json"), "$default");
        assert_eq!(route_key(r#"{"action":1}"#), "$default");
    }
}
