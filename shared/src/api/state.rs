//! What the handlers share: the database pool and the capabilities a function is given. Each
//! Lambda fills in only what its routes use (and its IAM policy allows); the local gateway fills
//! in everything. Capabilities that cost a network call to set up (decrypting the receipt key,
//! fetching the checkpoint public key) are set up by the first request that needs them, not at
//! cold start, and then kept for the life of the instance.

use super::error::ApiError;
use crate::aws::api_keys::ApiKeyStore;
use crate::aws::kms::KmsSigner;
use crate::aws::receipt_keys::{list_receipt_keys, PublicReceiptKey, ReceiptSigner};
use crate::search::OpenSearch;
use crate::service::indexing::OutboxQueues;
use crate::signer::CheckpointSigner;
use crate::store::append::AppendResult;
use crate::store::pool::{PooledStore, StorePool};
use aws_config::SdkConfig;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Shared by every handler of a function (one per process; cheap to clone).
#[derive(Debug, Clone)]
pub struct ApiState(pub Arc<ApiStateInner>);

impl std::ops::Deref for ApiState {
    type Target = ApiStateInner;
    fn deref(&self) -> &ApiStateInner {
        &self.0
    }
}

#[derive(Debug)]
pub struct ApiStateInner {
    pub store: StorePool,
    /// The maintenance role's pool (erasure), only in the functions that erase.
    pub maintenance: Option<StorePool>,
    /// The checkpoint origin prefix: a tenant's log is `<prefix>/<tenant id>`, and the signed-note
    /// key name is the prefix itself.
    pub checkpoint_origin: String,
    pub receipts: Option<ReceiptKeys>,
    pub checkpoint_key: Option<CheckpointPublicKey>,
    pub api_keys: Option<ApiKeyStore>,
    /// The MAC key viewer tokens are issued with, in the function serving `POST /v1/viewer-tokens`.
    pub viewer_tokens: Option<crate::aws::viewer_tokens::ViewerTokenMac>,
    /// The index queue (and the live tail's queue), in the functions that append: the outbox
    /// row of every append is sent there after commit.
    pub index_queue: Option<OutboxQueues>,
    /// OpenSearch, when configured, serves `q` in `GET /v1/events`; PostgreSQL's full text
    /// otherwise.
    pub search: Option<OpenSearch>,
    /// Export jobs, in the function serving the export routes.
    pub exports: Option<crate::service::export::ExportJobs>,
    /// Tenant console settings, in the function serving the console settings routes.
    pub console_settings: Option<crate::aws::console_settings::ConsoleSettingsStore>,
}

impl ApiState {
    pub fn new(inner: ApiStateInner) -> Self {
        ApiState(Arc::new(inner))
    }

    pub fn receipts(&self) -> Result<&ReceiptKeys, ApiError> {
        self.receipts.as_ref().ok_or_else(|| missing("receipt keys"))
    }

    pub fn checkpoint_key(&self) -> Result<&CheckpointPublicKey, ApiError> {
        self.checkpoint_key.as_ref().ok_or_else(|| missing("the checkpoint key"))
    }

    pub fn maintenance(&self) -> Result<&StorePool, ApiError> {
        self.maintenance.as_ref().ok_or_else(|| missing("the maintenance database"))
    }

    pub fn api_keys(&self) -> Result<&ApiKeyStore, ApiError> {
        self.api_keys.as_ref().ok_or_else(|| missing("the API key store"))
    }

    pub fn viewer_tokens(&self) -> Result<&crate::aws::viewer_tokens::ViewerTokenMac, ApiError> {
        self.viewer_tokens.as_ref().ok_or_else(|| missing("the viewer token MAC key"))
    }

    pub fn console_settings(&self) -> Result<&crate::aws::console_settings::ConsoleSettingsStore, ApiError> {
        self.console_settings.as_ref().ok_or_else(|| missing("the console settings table"))
    }

    pub fn exports(&self) -> Result<&crate::service::export::ExportJobs, ApiError> {
        self.exports.as_ref().ok_or_else(|| missing("export jobs"))
    }

    /// Sends the append's outbox row to the index queue (see `service::indexing`). Never fails
    /// the request: the append is committed, and the relay sends what this could not. It takes
    /// the request's connection and gives it back to the pool first: a slow queue must not hold
    /// a database connection that other appends wait for (the row is marked sent on whichever
    /// connection is free once the queue has answered).
    pub async fn notify_appended(&self, store: PooledStore, tenant: uuid::Uuid, result: &AppendResult) {
        drop(store);
        self.send_outbox(tenant, result).await;
    }

    /// [`ApiState::notify_appended`] for a caller that holds no connection.
    pub async fn send_outbox(&self, tenant: uuid::Uuid, result: &AppendResult) {
        match &self.index_queue {
            Some(queues) => crate::service::indexing::notify_appended(queues, &self.store, tenant, result).await,
            None => tracing::error!("no index queue configured; the relay will send this append's outbox row"),
        }
    }
}

fn missing(what: &str) -> ApiError {
    ApiError::internal("route served by a function without the capability it needs", &format!("{what} not configured"))
}

/// The receipt signing key, decrypted with KMS on first use.
#[derive(Debug)]
pub struct ReceiptKeys {
    config: SdkConfig,
    table: String,
    kek_key_id: String,
    signer: OnceCell<ReceiptSigner>,
}

impl ReceiptKeys {
    pub fn new(config: SdkConfig, table: impl Into<String>, kek_key_id: impl Into<String>) -> Self {
        ReceiptKeys { config, table: table.into(), kek_key_id: kek_key_id.into(), signer: OnceCell::new() }
    }

    pub async fn signer(&self) -> Result<&ReceiptSigner, ApiError> {
        self.signer
            .get_or_try_init(|| ReceiptSigner::load_or_create(&self.config, &self.table, &self.kek_key_id))
            .await
            .map_err(|e| ApiError::unavailable("loading the receipt key failed", &e))
    }

    /// Every receipt public key ever used, so old receipts stay verifiable.
    pub async fn public_keys(&self) -> Result<Vec<PublicReceiptKey>, ApiError> {
        list_receipt_keys(&self.config, &self.table)
            .await
            .map_err(|e| ApiError::unavailable("listing receipt keys failed", &e))
    }
}

/// The checkpoint signing key's public half, fetched from KMS (`GetPublicKey`) on first use.
#[derive(Debug)]
pub struct CheckpointPublicKey {
    kms: aws_sdk_kms::Client,
    key_id: String,
    key_name: String,
    retired: Vec<Vec<u8>>,
    public: OnceCell<(String, Vec<u8>)>,
}

impl CheckpointPublicKey {
    pub fn new(config: &SdkConfig, settings: &crate::config::CheckpointSettings) -> Self {
        CheckpointPublicKey {
            kms: aws_sdk_kms::Client::new(config),
            key_id: settings.key_id.clone(),
            key_name: settings.origin.clone(),
            retired: settings.retired_public_keys.clone(),
            public: OnceCell::new(),
        }
    }

    /// Earlier checkpoint keys (DER), from configuration.
    pub fn retired(&self) -> &[Vec<u8>] {
        &self.retired
    }

    /// The signed-note key name and the DER SubjectPublicKeyInfo.
    pub async fn get(&self) -> Result<(&str, &[u8]), ApiError> {
        let (name, der) = self
            .public
            .get_or_try_init(|| async {
                let signer = KmsSigner::new(self.kms.clone(), &self.key_id, &self.key_name).await?;
                Ok::<_, crate::aws::kms::KmsError>((signer.key_name().to_owned(), signer.public_key_der().to_vec()))
            })
            .await
            .map_err(|e| ApiError::unavailable("fetching the checkpoint public key failed", &e))?;
        Ok((name, der))
    }
}
