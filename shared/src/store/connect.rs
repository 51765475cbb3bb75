//! Opening connections, with TLS. The connection string's `sslmode` decides: `disable` connects in
//! plaintext (the local run and tests, on loopback); `prefer` uses TLS when the server offers it
//! and plaintext otherwise; `require` (and libpq's `verify-ca` and `verify-full`, read as
//! `require`) refuses a server without TLS. Whenever TLS is used the server certificate is
//! verified, chain and host name, against the Mozilla roots (RDS Proxy's certificates chain to
//! Amazon's public CAs) plus any CA certificates configured (the RDS CA bundle, for a direct RDS
//! connection): there is no unverified TLS.

use super::StoreError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

/// Everything needed to connect.
#[derive(Clone, Default)]
pub struct DbConfig {
    /// libpq key/value string or `postgres://` URL.
    pub url: String,
    /// Overrides the user and password of `url` (from Secrets Manager).
    pub user: Option<String>,
    pub password: Option<String>,
    /// PEM CA certificates trusted besides the Mozilla roots.
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password; only whether things are set is shown.
        f.debug_struct("DbConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("extra_ca_pem", &self.extra_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    pub fn plain(url: impl Into<String>) -> Self {
        DbConfig { url: url.into(), ..Default::default() }
    }

    fn parsed(&self) -> Result<Config, StoreError> {
        // tokio-postgres knows disable, prefer and require; libpq's stricter modes mean what
        // `require` already does here (full verification), so operators' habits work as written.
        let url =
            self.url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
        let mut config = Config::from_str(&url)
            .map_err(|e| StoreError::Config(format!("DATABASE_URL is not a valid connection string: {e}")))?;
        if let Some(user) = &self.user {
            config.user(user);
        }
        if let Some(password) = &self.password {
            config.password(password);
        }
        Ok(config)
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &self.extra_ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| StoreError::Config(format!("the database CA file is not PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| StoreError::Config(format!("a database CA certificate is invalid: {e}")))?;
                added += 1;
            }
            if added == 0 {
                return Err(StoreError::Config("the database CA file holds no certificate".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Config(format!("TLS set-up failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    }

    /// Opens one connection; its driver runs on a spawned task.
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let config = self.parsed()?;
        let client = if config.get_ssl_mode() == SslMode::Disable {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(drive(connection));
            client
        } else {
            let (client, connection) = config.connect(self.tls()?).await?;
            tokio::spawn(drive(connection));
            client
        };
        Ok(client)
    }
}

async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "database connection ended");
    }
}
