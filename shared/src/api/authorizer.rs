//! The Lambda authorizer's event mapping: API Gateway (HTTP API, payload 2.0, simple responses)
//! sends the request's headers; the answer allows or denies and, when allowing, carries the
//! caller's tenant, key id and scopes as the context every handler reads. API Gateway itself
//! answers a denied request with 403 (and a request without the header with 401) without
//! reaching any function, so a bad key never touches the database.
//!
//! The live tail's WebSocket API calls the same function on `$connect` as a REQUEST authorizer
//! (identity source `route.request.querystring.token`, since browsers cannot set headers on a
//! WebSocket): that event has a `methodArn` and the token in the query string, and its answer is
//! an IAM policy allowing or denying `execute-api:Invoke` on that ARN, with the same context.

use crate::metrics::{self, Unit};
use crate::service::authorizer::Authorizer;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde::Deserialize;
use serde_json::Value;

/// Decides either kind of authorizer event: the HTTP API's (payload 2.0) or the WebSocket
/// API's REQUEST event (told apart by its `methodArn`). An event that is neither is denied.
pub async fn authorize_event(authorizer: &Authorizer, event: Value) -> Value {
    if event.get("methodArn").is_some() {
        let request: WebSocketAuthorizerRequest = match serde_json::from_value(event) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, "an authorizer event with a methodArn that is not a REQUEST event");
                return serde_json::json!({ "principalId": "unknown", "policyDocument": policy(IamPolicyEffect::Deny, "*") });
            }
        };
        return serde_json::to_value(authorize_websocket(authorizer, &request).await).unwrap_or(Value::Null);
    }
    let response = match serde_json::from_value::<ApiGatewayV2CustomAuthorizerV2Request>(event) {
        Ok(request) => authorize_request(authorizer, &request).await,
        Err(error) => {
            tracing::error!(%error, "an authorizer event that is not an HTTP API request");
            ApiGatewayV2CustomAuthorizerSimpleResponse::default()
        }
    };
    serde_json::to_value(response).unwrap_or(Value::Null)
}

/// What the WebSocket REQUEST authorizer event carries that the decision needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketAuthorizerRequest {
    pub method_arn: String,
    #[serde(default)]
    pub query_string_parameters: Option<std::collections::HashMap<String, String>>,
}

fn policy(effect: IamPolicyEffect, resource: &str) -> ApiGatewayCustomAuthorizerPolicy {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![resource.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    policy
}

/// Decides a WebSocket `$connect` on its `?token=`: an IAM policy for the connection's method
/// ARN, allowing with the caller's context or denying (API Gateway then answers 403).
pub async fn authorize_websocket(
    authorizer: &Authorizer,
    request: &WebSocketAuthorizerRequest,
) -> ApiGatewayCustomAuthorizerResponse {
    let token = request.query_string_parameters.as_ref().and_then(|q| q.get("token"));
    let caller = match token {
        Some(token) => authorizer.authorize(Some(&format!("Bearer {token}"))).await,
        None => None,
    };
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    match caller {
        Some(caller) => {
            response.principal_id = Some(caller.key_id.clone());
            response.policy_document = policy(IamPolicyEffect::Allow, &request.method_arn);
            response.context = Value::Object(caller.to_context().into_iter().collect());
        }
        None => {
            metrics::emit(&[("AuthorizationDenied", 1.0, Unit::Count)], &[("Function", "authorizer")]);
            response.principal_id = Some("unknown".to_owned());
            response.policy_document = policy(IamPolicyEffect::Deny, &request.method_arn);
            response.context = Value::Object(Default::default());
        }
    }
    response
}

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
