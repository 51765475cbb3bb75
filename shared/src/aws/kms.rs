//! Checkpoint signing with an AWS KMS asymmetric key (`ECC_NIST_P256`, `SIGN_VERIFY`).
//!
//! The public key is fetched once, when the signer is built, and checked to be a P-256 signing
//! key; each signature is then one `Sign` call with `MessageType=RAW` and `ECDSA_SHA_256`, which
//! returns the DER signature over SHA-256 of the note text that signed-note type 0x02 specifies.
//! Errors name the KMS operation and the key; nothing here logs key material or message bytes.

use crate::chain::checkpoint::{self, CheckpointError};
use crate::signer::{CheckpointSigner, SignerError};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};

/// The largest message KMS `Sign` accepts with `MessageType=RAW`.
pub const MAX_RAW_MESSAGE_BYTES: usize = 4096;

/// Why a KMS key could not be used or a KMS call failed.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// The call itself failed: unknown key, access denied, disabled key, throttling, network.
    #[error("KMS {operation} with key {key_id} failed: {message}")]
    Request {
        operation: &'static str,
        key_id: String,
        /// The AWS error code (`NotFoundException`, `ThrottlingException`, ...), if any.
        code: Option<String>,
        message: String,
    },
    #[error(
        "KMS key {key_id} cannot sign checkpoints: it is {found}, \
         expected an ECC_NIST_P256 SIGN_VERIFY key that offers ECDSA_SHA_256"
    )]
    UnsuitableKey { key_id: String, found: String },
    #[error("KMS {operation} with key {key_id} returned no {field}")]
    MissingField { operation: &'static str, key_id: String, field: &'static str },
    #[error("KMS GetPublicKey with key {key_id} returned a key that is not P-256")]
    InvalidPublicKey { key_id: String },
    #[error("KMS Sign takes at most {MAX_RAW_MESSAGE_BYTES} bytes of raw message, got {0}")]
    MessageTooLong(usize),
    #[error("invalid checkpoint key name: {0}")]
    InvalidKeyName(#[source] CheckpointError),
}

impl From<KmsError> for SignerError {
    fn from(err: KmsError) -> Self {
        SignerError::Backend(Box::new(err))
    }
}

/// Signs checkpoints with a KMS key. Cheap to share: build it once per process.
#[derive(Clone)]
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    key_name: String,
    public_key_der: Vec<u8>,
    retired: Vec<Vec<u8>>,
}

impl std::fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSigner")
            .field("key_id", &self.key_id)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl KmsSigner {
    /// [`KmsSigner::new`] with a client built from `config`.
    pub async fn from_config(config: &aws_config::SdkConfig, key_id: &str, key_name: &str) -> Result<Self, KmsError> {
        Self::new(aws_sdk_kms::Client::new(config), key_id, key_name).await
    }

    /// The same signer, trusting notes by these earlier checkpoint keys (DER public keys from
    /// `CHECKPOINT_RETIRED_PUBLIC_KEYS`) after a key rotation.
    pub fn with_retired_keys(mut self, retired: Vec<Vec<u8>>) -> Self {
        self.retired = retired;
        self
    }

    /// Fetches the public key of `key_id` (key ID, key ARN, alias name or alias ARN) and checks
    /// that the key can sign checkpoints. `key_name` is the signed-note key name verifiers use.
    pub async fn new(
        client: aws_sdk_kms::Client,
        key_id: impl Into<String>,
        key_name: impl Into<String>,
    ) -> Result<Self, KmsError> {
        let key_id = key_id.into();
        let key_name = key_name.into();
        checkpoint::validate_key_name(&key_name).map_err(KmsError::InvalidKeyName)?;

        const OPERATION: &str = "GetPublicKey";
        let out = client
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|err| request_error(OPERATION, &key_id, err))?;

        // KMS sends the key spec twice, as KeySpec and as the deprecated CustomerMasterKeySpec;
        // moto 5.2 sends only the latter. The parse of the public key below checks the curve
        // again, whatever the metadata says.
        let key_spec = out.key_spec().map(KeySpec::as_str).or_else(|| {
            #[allow(deprecated)]
            out.customer_master_key_spec().map(|spec| spec.as_str())
        });
        let suitable = key_spec == Some(KeySpec::EccNistP256.as_str())
            && out.key_usage() == Some(&KeyUsageType::SignVerify)
            && out.signing_algorithms().contains(&SigningAlgorithmSpec::EcdsaSha256);
        if !suitable {
            let found = format!(
                "{} {} offering {:?}",
                key_spec.unwrap_or("(no key spec)"),
                out.key_usage().map_or("(no key usage)", KeyUsageType::as_str),
                out.signing_algorithms().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            );
            return Err(KmsError::UnsuitableKey { key_id, found });
        }

        let public_key_der = out
            .public_key()
            .ok_or_else(|| KmsError::MissingField {
                operation: OPERATION,
                key_id: key_id.clone(),
                field: "public key",
            })?
            .as_ref()
            .to_vec();
        checkpoint::validate_public_key(&public_key_der)
            .map_err(|_| KmsError::InvalidPublicKey { key_id: key_id.clone() })?;

        Ok(KmsSigner { client, key_id, key_name, public_key_der, retired: Vec::new() })
    }

    /// The KMS key this signer uses, as it was given.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn sign_raw(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        const OPERATION: &str = "Sign";
        if msg.len() > MAX_RAW_MESSAGE_BYTES {
            return Err(KmsError::MessageTooLong(msg.len()));
        }
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(msg))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|err| request_error(OPERATION, &self.key_id, err))?;
        let signature = out.signature().ok_or_else(|| KmsError::MissingField {
            operation: OPERATION,
            key_id: self.key_id.clone(),
            field: "signature",
        })?;
        Ok(signature.as_ref().to_vec())
    }
}

impl CheckpointSigner for KmsSigner {
    fn key_name(&self) -> &str {
        &self.key_name
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.sign_raw(msg).await?)
    }

    fn retired_public_keys(&self) -> &[Vec<u8>] {
        &self.retired
    }
}

fn request_error<E>(operation: &'static str, key_id: &str, err: E) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    // A service error reads best as its code and message; anything else (no connection, a
    // timeout) as its chain of causes. The SDK's own Debug output would add the raw response.
    let message = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => cause_chain(&err),
    };
    KmsError::Request { operation, key_id: key_id.to_owned(), code: err.code().map(str::to_owned), message }
}

fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
