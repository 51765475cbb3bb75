//! A local stand-in for API Gateway (HTTP API, payload format 2.0) in front of the API's
//! functions, so the local run serves the API on one port the way AWS does, and fails where AWS
//! would:
//!
//! 1. the route is matched against `shared::api::ROUTES` (unknown paths: 404 `{"message":"Not
//!    Found"}`; a known path with another method: 405 with `Allow`, see [`RouteMatch`]);
//! 2. the body is read, at most API Gateway's 10 MB payload limit ([`MAX_GATEWAY_BODY`]);
//! 3. the Lambda authorizer logic runs on the `Authorization` header (missing: 401
//!    `{"message":"Unauthorized"}`; denied: 403 `{"message":"Forbidden"}`, API Gateway's own bodies),
//!    except on a public route (`Route::public`), whose event has no authorizer context;
//! 4. the request becomes the API Gateway v2 event JSON a function receives in AWS, with the
//!    authorizer's context, refused past Lambda's 6 MB invocation payload limit, and is parsed
//!    back by `lambda_http` exactly as in a function;
//! 5. the serving function's router handles it within the function timeout ([`Limits`]), and its
//!    response becomes the Lambda response event as `lambda_http` writes it, refused past Lambda's
//!    6 MB response limit, before it is turned back into the client's HTTP response.
//!
//! The live tail's WebSocket API (`GET /v1/tail`) and its Management API (`/@connections/{id}`)
//! are served here too, by [`crate::websocket`].
//!
//! Only what the service relies on is emulated: no stages, throttling or custom domains.

use crate::websocket::{SocketLimits, TailSockets};
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use shared::api::{Function, Route, ROUTES};
use shared::service::authorizer::Authorizer;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// API Gateway's payload limit for HTTP APIs: "Payload size 10 MB", not adjustable ("Quotas for
/// configuring and running an HTTP API in API Gateway"). API Gateway answers a larger request
/// 413 with the text body [`TOO_LARGE_FOR_GATEWAY`], not JSON.
pub const MAX_GATEWAY_BODY: usize = 10 * 1024 * 1024;
/// API Gateway's body for a request over [`MAX_GATEWAY_BODY`], as its clients receive it.
pub const TOO_LARGE_FOR_GATEWAY: &str = "HTTP content length exceeded 10485760 bytes.";
/// Lambda's payload limit for a synchronous invocation's request (the event): "6 MB each for
/// request and response" (Lambda quotas; the Invoke API: "For synchronous invocations, the
/// maximum payload size is 6 MB"). Lambda refuses a larger event with
/// `RequestEntityTooLargeException` (HTTP 413) before any function runs, and API Gateway passes
/// the 413 on as `{"message":"Request Entity Too Large"}`.
pub const MAX_INVOKE_REQUEST: usize = 6 * 1024 * 1024;
/// Lambda's limit for a synchronous invocation's response, in bytes, as its error names it:
/// "Exceeded maximum allowed payload size (6291556 bytes)". The runtime's post of a larger
/// response fails (`Function.ResponseSizeTooLarge`), the invocation ends in a function error, and
/// API Gateway answers 500 `{"message":"Internal Server Error"}` instead of the body ("My API with a
/// Lambda integration returns {"message":"Internal Server Error"}", HTTP API troubleshooting).
pub const MAX_INVOKE_RESPONSE: usize = 6 * 1024 * 1024 + 100;
/// The API functions' timeout: `Globals.Function.Timeout` in `template.yaml` (a test checks
/// they agree). A function still running then is stopped by Lambda ("Task timed out after 29.00
/// seconds"), a function error that API Gateway answers 500 `{"message":"Internal Server
/// Error"}`. API Gateway's own integration timeout for HTTP APIs is 30 seconds, answered 503
/// `{"message":"Service Unavailable"}`; with 29-second functions it is never the first reached.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(29);

/// The limits the gateway enforces that a test may want shorter. The local run uses the
/// defaults, the ones AWS applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a function may take (see [`FUNCTION_TIMEOUT`]).
    pub function_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { function_timeout: FUNCTION_TIMEOUT }
    }
}

/// The gateway: the authorizer, one router per function, and the live tail's sockets.
#[derive(Clone)]
pub struct Gateway {
    authorizer: Arc<Authorizer>,
    functions: Arc<HashMap<Function, Router>>,
    limits: Limits,
    tail: Option<TailSockets>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(authorizer: Authorizer, functions: HashMap<Function, Router>) -> Self {
        Gateway {
            authorizer: Arc::new(authorizer),
            functions: Arc::new(functions),
            limits: Limits::default(),
            tail: None,
        }
    }

    /// The same gateway serving the live tail through `tail` (the `tail` function's handler).
    pub fn with_tail(mut self, tail: shared::service::tail::TailService) -> Self {
        self.tail = Some(TailSockets::new(tail));
        self
    }

    /// The same gateway with other WebSocket limits (tests: an idle timeout a test can wait for).
    pub fn with_socket_limits(mut self, limits: SocketLimits) -> Self {
        if let Some(tail) = &mut self.tail {
            tail.limits = limits;
        }
        self
    }

    /// The same gateway with other limits (tests: a function timeout a test can wait for).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The gateway as an axum router to serve.
    pub fn into_router(self) -> Router {
        let mut router = Router::new();
        if let Some(tail) = self.tail.clone() {
            let authorizer = self.authorizer.clone();
            let (post, delete, describe) = (tail.clone(), tail.clone(), tail.clone());
            router = router
                .route(
                    "/v1/tail",
                    get(
                        move |ws: WebSocketUpgrade,
                              Query(query): Query<HashMap<String, String>>,
                              headers: HeaderMap| {
                            let (tail, authorizer) = (tail.clone(), authorizer.clone());
                            async move { tail.upgrade(&authorizer, ws, query, headers).await }
                        },
                    ),
                )
                .route(
                    "/@connections/{id}",
                    axum::routing::post(move |Path(id): Path<String>, body: Bytes| {
                        let tail = post.clone();
                        async move { tail.post(&id, body) }
                    })
                    .delete(move |Path(id): Path<String>| {
                        let tail = delete.clone();
                        async move { tail.delete(&id) }
                    })
                    .get(move |Path(id): Path<String>| {
                        let tail = describe.clone();
                        async move { tail.describe(&id) }
                    }),
                );
        }
        router.fallback(move |request: Request| {
            let gateway = self.clone();
            async move { gateway.handle(request).await }
        })
    }

    async fn handle(&self, request: Request) -> Response {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let (route, path_parameters) = match match_route(&method, &path) {
            RouteMatch::Found(route, params) => (route, params),
            RouteMatch::MethodNotAllowed(allowed) => return shared::api::method_not_allowed(&allowed),
            RouteMatch::NotFound => return gateway_message(StatusCode::NOT_FOUND, "Not Found"),
        };
        let Some(router) = self.functions.get(&route.function) else {
            return gateway_message(StatusCode::NOT_FOUND, "Not Found");
        };
        let (parts, body) = request.into_parts();
        let body = match read_body(&parts.headers, body).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        // A public route has no authorizer: its event carries no authorizer context at all.
        let context = if route.public {
            None
        } else {
            let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let Some(authorization) = authorization else {
                return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized");
            };
            let Some(caller) = self.authorizer.authorize(Some(&authorization)).await else {
                return gateway_message(StatusCode::FORBIDDEN, "Forbidden");
            };
            Some(caller.to_context().into_iter().collect())
        };
        let event = lambda_event(
            route,
            &parts.headers,
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            path_parameters,
            &body,
            context,
        )
        .to_string();
        if event.len() > MAX_INVOKE_REQUEST {
            return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        let lambda_request = match lambda_http::request::from_str(&event) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the gateway built an event lambda_http cannot parse");
                return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let (lambda_parts, lambda_body) = lambda_request.into_parts();
        let request = Request::from_parts(lambda_parts, Body::from(lambda_body.to_vec()));
        let invocation = async {
            let response = match router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            lambda_http::IntoResponse::into_response(response).await
        };
        let Ok(response) = tokio::time::timeout(self.limits.function_timeout, invocation).await else {
            tracing::warn!(route = %format!("{} {}", route.method, route.path), "the function timed out");
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        };
        deliver(response)
    }
}

/// Reads a request body as API Gateway takes it: at most [`MAX_GATEWAY_BODY`] bytes (413 with
/// API Gateway's text body past it, refused on `Content-Length` before anything is read), and
/// well-framed: a body whose transfer framing is broken (a bad chunk size, a connection closed
/// mid-body) is a client error, 400, not a size error.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_FOR_GATEWAY).into_response();
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_GATEWAY_BODY as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err(gateway_message(StatusCode::BAD_REQUEST, "Bad Request"));
        };
        if bytes.len() + chunk.len() > MAX_GATEWAY_BODY {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// The client's response for a function's: the Lambda response event `lambda_http` would post
/// (headers, status, the body as text, or base64 when binary), refused past
/// [`MAX_INVOKE_RESPONSE`], else decoded back into HTTP as API Gateway does.
pub fn deliver(response: Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let mut event = aws_lambda_events::apigw::ApiGatewayV2httpResponse::default();
    event.status_code = i64::from(parts.status.as_u16());
    event.headers = parts.headers.clone();
    event.is_base64_encoded = matches!(body, lambda_http::Body::Binary(_));
    event.body = match body {
        lambda_http::Body::Empty => None,
        body => Some(body),
    };
    let size = match serde_json::to_vec(&event) {
        Ok(bytes) => bytes.len(),
        Err(e) => {
            tracing::error!(error = %e, "a function's response does not serialise");
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    if size > MAX_INVOKE_RESPONSE {
        tracing::error!(size, limit = MAX_INVOKE_RESPONSE, "a function's response is over Lambda's payload limit");
        return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    }
    let body = match event.body {
        Some(lambda_http::Body::Text(text)) => Body::from(text),
        Some(lambda_http::Body::Binary(bytes)) => Body::from(bytes),
        _ => Body::empty(),
    };
    Response::from_parts(parts, body)
}

fn gateway_message(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// What a request's method and path find among the routes.
#[derive(Debug, PartialEq)]
pub enum RouteMatch {
    Found(&'static Route, Map<String, Value>),
    /// The path is a route's, the method none of its: the methods it has, for `Allow`. In AWS no
    /// route matches such a request either, and API Gateway answers 404 (docs/ARCHITECTURE.md).
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

/// The route matching `method` and `path`, with its path parameters. Literal segments win over
/// parameters, as in API Gateway (`/v1/checkpoints/latest` before `/v1/checkpoints/{tree_size}`).
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut best: Option<(&'static Route, Map<String, Value>, usize)> = None;
    // The most literal route of another method whose path matches, for a 405's Allow.
    let mut other: Option<(&'static str, usize)> = None;
    for route in ROUTES {
        let Some((params, literals)) = match_path(route.path, &segments) else { continue };
        if route.method == method {
            if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
                best = Some((route, params, literals));
            }
        } else if other.is_none_or(|(_, l)| literals > l) {
            other = Some((route.path, literals));
        }
    }
    match (best, other) {
        (Some((route, params, _)), _) => RouteMatch::Found(route, params),
        (None, Some((pattern, _))) => RouteMatch::MethodNotAllowed(shared::api::allowed_methods(pattern)),
        (None, None) => RouteMatch::NotFound,
    }
}

/// The path parameters and the count of literal segments when `pattern` matches `segments`. A
/// last segment `{name+}` (a greedy path variable) takes one or more segments, as in API Gateway.
fn match_path(pattern: &str, segments: &[&str]) -> Option<(Map<String, Value>, usize)> {
    let mut pattern: Vec<&str> = pattern.split('/').collect();
    if let Some(name) = pattern.last().and_then(|p| p.strip_prefix('{')).and_then(|p| p.strip_suffix("+}")) {
        let fixed = pattern.len() - 1;
        if segments.len() <= fixed || segments[fixed..].iter().all(|s| s.is_empty()) {
            return None;
        }
        pattern.truncate(fixed);
        let (mut params, literals) = match_path(&pattern.join("/"), &segments[..fixed])?;
        params.insert(name.to_owned(), Value::String(segments[fixed..].join("/")));
        return Some((params, literals));
    }
    if pattern.len() != segments.len() {
        return None;
    }
    let mut params = Map::new();
    let mut literals = 0;
    let matched = pattern.iter().zip(segments).all(|(p, s)| {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            params.insert(name.to_owned(), Value::String((*s).to_owned()));
            !s.is_empty()
        } else {
            literals += 1;
            p == s
        }
    });
    matched.then_some((params, literals))
}

/// The API Gateway v2 (HTTP API, payload 2.0) event for a request, as a function receives it.
pub fn lambda_event(
    route: &Route,
    headers: &HeaderMap,
    path: &str,
    raw_query: &str,
    path_parameters: Map<String, Value>,
    body: &[u8],
    authorizer_context: Option<Map<String, Value>>,
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
    if let Some(context) = authorizer_context {
        event["requestContext"]["authorizer"] = json!({ "lambda": context });
    }
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

    fn found(method: &str, path: &str) -> (&'static Route, Map<String, Value>) {
        match match_route(method, path) {
            RouteMatch::Found(route, params) => (route, params),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let (route, params) = found("GET", "/v1/checkpoints/latest");
        assert_eq!(route.path, "/v1/checkpoints/latest");
        assert!(params.is_empty());
        let (route, params) = found("GET", "/v1/checkpoints/42");
        assert_eq!(route.path, "/v1/checkpoints/{tree_size}");
        assert_eq!(params["tree_size"], "42");
    }

    #[test]
    fn unknown_paths_match_nothing_and_known_paths_name_their_methods() {
        assert_eq!(match_route("GET", "/v1/nothing"), RouteMatch::NotFound);
        assert_eq!(match_route("GET", "/v1/events//proof"), RouteMatch::NotFound);
        assert_eq!(match_route("PUT", "/v1/events"), RouteMatch::MethodNotAllowed(vec!["POST", "GET"]));
        assert_eq!(match_route("DELETE", "/v1/events"), RouteMatch::MethodNotAllowed(vec!["POST", "GET"]));
        assert_eq!(match_route("PUT", "/v1/settings"), RouteMatch::MethodNotAllowed(vec!["GET", "PATCH"]));
        assert_eq!(match_route("POST", "/v1/checkpoints/latest"), RouteMatch::MethodNotAllowed(vec!["GET"]));
        assert_eq!(match_route("GET", "/v1/keys/abc"), RouteMatch::MethodNotAllowed(vec!["DELETE"]));
    }

    #[test]
    fn a_greedy_variable_takes_every_remaining_segment() {
        let (route, params) = found("GET", "/console/assets/app-X.js");
        assert_eq!(route.path, "/console/{proxy+}");
        assert_eq!(params["proxy"], "assets/app-X.js");
        let (route, params) = found("GET", "/console/docs/");
        assert_eq!((route.path, params["proxy"].as_str()), ("/console/{proxy+}", Some("docs")));
        let (route, _) = found("GET", "/console/");
        assert_eq!(route.path, "/console");
        assert!(route.public);
        assert!(!found("GET", "/v1/events").0.public);
        assert_eq!(match_route("POST", "/console/x"), RouteMatch::MethodNotAllowed(vec!["GET"]));
    }

    #[test]
    fn every_route_matches_itself() {
        for route in ROUTES {
            let path = route.path.replace("{id}", "x").replace("{tree_size}", "7").replace("{proxy+}", "a/b");
            let (found, _) = found(route.method, &path);
            assert_eq!(found, route);
        }
    }

    fn lambda_response(content_type: &str, body: lambda_http::Body) -> Response<lambda_http::Body> {
        Response::builder().status(200).header(header::CONTENT_TYPE, content_type).body(body).unwrap()
    }

    async fn body_of(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()
    }

    #[tokio::test]
    async fn a_response_over_lambdas_limit_becomes_api_gateways_500() {
        // A JSON body of 6 MiB + 100 bytes: the response event is larger still (status, headers,
        // the escapes of the quotes inside it).
        let text = format!("[\"{}\"]", "x".repeat(MAX_INVOKE_RESPONSE - 4));
        assert_eq!(text.len(), MAX_INVOKE_RESPONSE);
        let response = deliver(lambda_response("application/json", lambda_http::Body::Text(text)));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = serde_json::from_slice(&body_of(response).await).unwrap();
        assert_eq!(body, json!({ "message": "Internal Server Error" }));
    }

    #[tokio::test]
    async fn a_response_counts_at_its_size_inside_the_response_event() {
        // 4 MB of escaped quotes (`\"`) in a JSON string: each doubles again once the body is a
        // string inside the event, 8 MB in all.
        let text = format!("[\"{}\"]", "\\\"".repeat(2_000_000));
        assert!(text.len() < MAX_INVOKE_RESPONSE);
        let response = deliver(lambda_response("application/json", lambda_http::Body::Text(text)));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_binary_response_counts_at_its_base64_size() {
        // 4.8 MB of bytes is 6.4 MB of base64: over the limit although the bytes are not.
        let bytes = vec![0xffu8; 4_800_000];
        let response = deliver(lambda_response("application/octet-stream", lambda_http::Body::Binary(bytes)));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_response_under_the_limit_is_delivered_as_the_function_wrote_it() {
        let text = format!("[\"{}\"]", "x".repeat(MAX_INVOKE_RESPONSE - 1000));
        let response = deliver(lambda_response("application/json", lambda_http::Body::Text(text.clone())));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body_of(response).await, text.into_bytes());
        let binary = deliver(lambda_response("application/octet-stream", lambda_http::Body::Binary(vec![0, 1, 2])));
        assert_eq!(body_of(binary).await, vec![0, 1, 2]);
    }
}
