//! The Lambda authorizer's event mapping: API Gateway (HTTP API, payload 2.0, simple responses)
//! sends the request's headers; the answer allows or denies and, when allowing, carries the
//! caller's tenant, key id and scopes as the context every handler reads. API Gateway itself
//! answers a denied request with 403 (and a request without the header with 401) without
//! reaching any function, so a bad key never touches the database.

use crate::metrics::{self, Unit};
use crate::service::authorizer::Authorizer;
use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use serde_json::Value;

/// Decides one request.
pub async fn authorize_request(
    authorizer: &Authorizer,
    request: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let header = request.headers.get("authorization").and_then(|v| v.to_str().ok());
    let caller = authorizer.authorize(header).await;
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    match caller {
        Some(caller) => {
            response.is_authorized = true;
            response.context = Value::Object(caller.to_context().into_iter().collect());
        }
        None => {
            metrics::emit(&[("AuthorizationDenied", 1.0, Unit::Count)], &[("Function", "authorizer")]);
            response.is_authorized = false;
            response.context = Value::Object(Default::default());
        }
    }
    response
}
