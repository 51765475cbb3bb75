//! PostgreSQL: connecting, migrating, the append transaction and every read. All SQL of the
//! service lives below this module.
//!
//! A [`Store`] is one connection plus its prepared statements; a Lambda instance keeps one across
//! warm invocations. Every statement that touches tenant rows runs in a transaction that first
//! sets `app.tenant_id`, which the row-level-security policies compare against.

pub mod admin;
pub mod append;
pub mod checkpoints;
pub mod connect;
pub mod erasure;
pub mod export;
pub mod pool;
pub mod publishers;
pub mod pruning;
pub mod query;
pub mod migrate;
pub mod outbox;
pub mod read;
pub mod tenants;
pub mod text;
pub mod tree;
pub mod verification;

use crate::chain::hash::{Hash, HashParseError};
use crate::chain::merkle::MerkleError;
use std::collections::HashMap;
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

/// What can go wrong in the store, as a closed set the API layer maps once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown tenant")]
    UnknownTenant,
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    InvalidRange(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("{0}")]
    Config(String),
    /// The input names something that already exists (a duplicate key id).
    #[error("{0}")]
    Conflict(String),
    /// The input is invalid; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl From<HashParseError> for StoreError {
    fn from(_: HashParseError) -> Self {
        StoreError::Corrupt("a stored hash is not 32 bytes".into())
    }
}

impl StoreError {
    /// True when retrying the same request later may succeed (connection loss, serialisation
    /// failure, deadlock): the API maps these to 503 with Retry-After.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        c.starts_with("08")
                            || c == "40001"
                            || c == "40P01"
                            || c.starts_with("53")
                            || c.starts_with("57P")
                    })
            }
            _ => false,
        }
    }
}

/// One connection and its prepared statements.
#[derive(Debug)]
pub struct Store {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set while a hand-pipelined transaction (the append) is open. If the future driving it was
    /// dropped half-way (a Lambda timeout, a cancelled request), the next operation rolls back
    /// first instead of running inside a stale transaction.
    open_transaction: bool,
    /// Tenants' publisher policies, kept briefly (see `publishers`).
    policy_cache: HashMap<Uuid, (std::time::Instant, std::sync::Arc<publishers::PublisherPolicy>)>,
    policy_ttl: std::time::Duration,
}

impl Store {
    /// Connects with a libpq-style connection string (`host=.. port=.. user=.. dbname=..`).
    /// Plaintext or TLS as the string's `sslmode` says (see [`connect::DbConfig`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(&connect::DbConfig::plain(url)).await
    }

    /// Connects with credentials and CA certificates from configuration.
    pub async fn connect_with(config: &connect::DbConfig) -> Result<Self, StoreError> {
        let client = config.connect().await?;
        Ok(Store {
            client,
            statements: HashMap::new(),
            open_transaction: false,
            policy_cache: HashMap::new(),
            policy_ttl: publishers::DEFAULT_POLICY_TTL,
        })
    }

    /// Creates the coming months' `events` partitions that are missing; returns how many.
    pub async fn ensure_partitions(&mut self) -> Result<i32, StoreError> {
        self.recover().await?;
        migrate::ensure_partitions(&self.client).await
    }

    /// The server process serving this connection (for diagnostics and tests).
    pub async fn backend_pid(&mut self) -> Result<i32, StoreError> {
        self.recover().await?;
        Ok(self.client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
    }

    /// Whether this connection is encrypted, as the server sees it.
    pub async fn tls_in_use(&mut self) -> Result<bool, StoreError> {
        self.recover().await?;
        let row = self.client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?;
        Ok(row.get(0))
    }

    /// True once the connection has broken; the owner should connect again.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Rolls back a transaction that an interrupted operation left open.
    async fn recover(&mut self) -> Result<(), StoreError> {
        if self.open_transaction {
            self.client.batch_execute("ROLLBACK").await?;
            self.open_transaction = false;
        }
        Ok(())
    }

    /// Prepares `sqls` once per connection and returns them in order.
    async fn prepared<const N: usize>(&mut self, sqls: [&'static str; N]) -> Result<[Statement; N], StoreError> {
        for sql in sqls {
            if !self.statements.contains_key(sql) {
                let st = self.client.prepare(sql).await?;
                self.statements.insert(sql, st);
            }
        }
        Ok(sqls.map(|sql| self.statements[sql].clone()))
    }
}

/// Sets the tenant for the rest of the current transaction.
const SET_TENANT: &str = "SELECT set_config('app.tenant_id', $1, true)";

fn tenant_param(tenant: Uuid) -> String {
    tenant.to_string()
}

fn hash_col(bytes: &[u8]) -> Result<Hash, StoreError> {
    Ok(Hash::from_slice(bytes)?)
}

fn seq_col(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative sequence number {v}")))
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidRange(format!("{v} is out of range")))
}
