//! Database credentials from Secrets Manager: a secret holding `{"username", "password"}` (the
//! form RDS-managed secrets take). Read once per function instance; the password is never logged.

use aws_config::SdkConfig;
use serde::Deserialize;
use std::fmt;

/// A login name and password.
#[derive(Clone, Deserialize)]
pub struct DatabaseCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for DatabaseCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why the secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager GetSecretValue failed: {0}")]
    Aws(String),
    #[error("the database secret is not JSON with username and password")]
    Malformed,
}

/// Reads the credentials in secret `arn`.
pub async fn database_credentials(config: &SdkConfig, arn: &str) -> Result<DatabaseCredentials, SecretError> {
    let out = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretError::Aws(super::error_code(&e)))?;
    let text = out.secret_string().ok_or(SecretError::Malformed)?;
    serde_json::from_str(text).map_err(|_| SecretError::Malformed)
}
