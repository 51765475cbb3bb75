//! The API Gateway Management API of the live tail's WebSocket API: posting a frame to a
//! connection, closing it, asking after it. The endpoint is configuration
//! (`TAIL_MANAGEMENT_URL`: the API's stage URL in AWS, the local gateway's URL locally), so the
//! same client code posts to both.

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;

/// Why a post failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// 410 Gone: the connection is closed; nothing will ever reach it.
    #[error("the connection is gone")]
    Gone,
    #[error("{operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
}

fn failed<E, R>(operation: &'static str, e: aws_sdk_apigatewaymanagement::error::SdkError<E, R>) -> PostError
where
    E: ProvideErrorMetadata + std::fmt::Display + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let gone = e.as_service_error().is_some_and(|s| s.code() == Some("GoneException"));
    if gone {
        return PostError::Gone;
    }
    let message = e.as_service_error().and_then(|s| s.code().map(str::to_owned)).unwrap_or_else(|| e.to_string());
    PostError::Aws { operation, message }
}

/// Posts to connections of one WebSocket API stage.
#[derive(Debug, Clone)]
pub struct ConnectionPoster {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ConnectionPoster {
    pub fn new(config: &SdkConfig, endpoint: &str) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(config).endpoint_url(endpoint).build();
        ConnectionPoster { client: aws_sdk_apigatewaymanagement::Client::from_conf(conf) }
    }

    /// Sends one frame (a text message) to the connection.
    pub async fn post(&self, connection_id: &str, frame: &str) -> Result<(), PostError> {
        self.client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await
            .map_err(|e| failed("PostToConnection", e))?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self, connection_id: &str) -> Result<(), PostError> {
        self.client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map_err(|e| failed("DeleteConnection", e))?;
        Ok(())
    }

    /// Whether the connection is open (GetConnection).
    pub async fn is_open(&self, connection_id: &str) -> Result<bool, PostError> {
        match self
            .client
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map_err(|e| failed("GetConnection", e))
        {
            Ok(_) => Ok(true),
            Err(PostError::Gone) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
