//! A local stand-in for API Gateway (HTTP API, payload format 2.0) in front of the API's
//! functions, so the local run serves the API on one port the way AWS does:
//!
//! 1. the route is matched against `shared::api::ROUTES` (unknown routes: 404 `{"message":"Not Found"}`);
//! 2. the Lambda authorizer logic runs on the `Authorization` header (missing: 401
//!    `{"message":"Unauthorized"}`; denied: 403 `{"message":"Forbidden"}`, API Gateway's own bodies);
//! 3. the request becomes the API Gateway v2 event JSON a function receives in AWS, with the
//!    authorizer's context, and is parsed back by `lambda_http` exactly as in a function;
//! 4. the serving function's router handles it.
//!
//! Only what the service relies on is emulated: no stages, throttling or custom domains.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Map, Value};
use shared::api::{Function, Route, ROUTES};
use shared::service::authorizer::Authorizer;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

/// API Gateway's payload limit for HTTP APIs.
const MAX_GATEWAY_BODY: usize = 10 * 1024 * 1024;

/// The gateway: the authorizer and one router per function.
#[derive(Clone)]
pub struct Gateway {
    authorizer: Arc<Authorizer>,
    functions: Arc<HashMap<Function, Router>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(authorizer: Authorizer, functions: HashMap<Function, Router>) -> Self {
        Gateway { authorizer: Arc::new(authorizer), functions: Arc::new(functions) }
    }

    /// The gateway as an axum router to serve.
    pub fn into_router(self) -> Router {
        Router::new().fallback(move |request: Request| {
            let gateway = self.clone();
            async move { gateway.handle(request).await }
        })
    }

    async fn handle(&self, request: Request) -> Response {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let Some((route, path_parameters)) = match_route(&method, &path) else {
            return gateway_message(StatusCode::NOT_FOUND, "Not Found");
        };
        let Some(router) = self.functions.get(&route.function) else {
            return gateway_message(StatusCode::NOT_FOUND, "Not Found");
        };
        let authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let Some(authorization) = authorization else {
            return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        let Some(caller) = self.authorizer.authorize(Some(&authorization)).await else {
            return gateway_message(StatusCode::FORBIDDEN, "Forbidden");
        };
        let (parts, body) = request.into_parts();
        let Ok(body) = to_bytes(body, MAX_GATEWAY_BODY).await else {
            return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        };
        let event = lambda_event(
            route,
            &parts.headers,
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            path_parameters,
            &body,
            caller.to_context().into_iter().collect(),
        );
        let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the gateway built an event lambda_http cannot parse");
                return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let (lambda_parts, lambda_body) = lambda_request.into_parts();
        let request = Request::from_parts(lambda_parts, Body::from(lambda_body.to_vec()));
        match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

fn gateway_message(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// The route matching `method` and `path`, with its path parameters. Literal segments win over
/// parameters, as in API Gateway (`/v1/checkpoints/latest` before `/v1/checkpoints/{tree_size}`).
pub fn match_route(method: &str, path: &str) -> Option<(&'static Route, Map<String, Value>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut best: Option<(&'static Route, Map<String, Value>, usize)> = None;
    for route in ROUTES.iter().filter(|r| r.method == method) {
        let pattern: Vec<&str> = route.path.split('/').collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = Map::new();
        let mut literals = 0;
        let matched = pattern.iter().zip(&segments).all(|(p, s)| {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                params.insert(name.to_owned(), Value::String((*s).to_owned()));
                !s.is_empty()
            } else {
                literals += 1;
                p == s
            }
        });
        if matched && best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((route, params, literals));
        }
    }
    best.map(|(route, params, _)| (route, params))
}

/// The API Gateway v2 (HTTP API, payload 2.0) event for a request, as a function receives it.
pub fn lambda_event(
    route: &Route,
    headers: &HeaderMap,
    path: &str,
    raw_query: &str,
    path_parameters: Map<String, Value>,
    body: &[u8],
    authorizer_context: Map<String, Value>,
) -> Value {
    let mut header_map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // API Gateway joins repeated headers with commas.
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let mut query = Map::new();
    for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(name.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let route_key = format!("{} {}", route.method, route.path);
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": { "lambda": authorizer_context },
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": route.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = Value::Object(path_parameters);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_parameters() {
        let (route, params) = match_route("GET", "/v1/checkpoints/latest").unwrap();
        assert_eq!(route.path, "/v1/checkpoints/latest");
        assert!(params.is_empty());
        let (route, params) = match_route("GET", "/v1/checkpoints/42").unwrap();
        assert_eq!(route.path, "/v1/checkpoints/{tree_size}");
        assert_eq!(params["tree_size"], "42");
    }

    #[test]
    fn unknown_paths_and_methods_match_nothing() {
        assert!(match_route("GET", "/v1/nothing").is_none());
        assert!(match_route("PUT", "/v1/events").is_none());
        assert!(match_route("GET", "/v1/events//proof").is_none());
    }

    #[test]
    fn every_route_matches_itself() {
        for route in ROUTES {
            let path = route.path.replace("{id}", "x").replace("{tree_size}", "7");
            let (found, _) = match_route(route.method, &path).unwrap();
            assert_eq!(found, route);
        }
    }
}
