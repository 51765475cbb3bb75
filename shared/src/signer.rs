//! Who signs checkpoints: the [`CheckpointSigner`] capability and [`sign_checkpoint`], which turns
//! a checkpoint into a published signed note.
//!
//! Production signs with an AWS KMS key (`aws::kms::KmsSigner`) so that the private key never
//! leaves KMS; [`LocalSigner`] holds a P-256 key in memory for unit tests and benchmarks. Both
//! return ASN.1 DER ECDSA-SHA256 signatures, the format `chain::checkpoint` expects.

use crate::chain::checkpoint::{self, Checkpoint, CheckpointError, SignedCheckpoint};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use std::future::Future;

/// A P-256 key that signs checkpoint note text.
pub trait CheckpointSigner: Send + Sync {
    /// The signed-note key name, which verifiers must be configured with.
    fn key_name(&self) -> &str;

    /// The DER `SubjectPublicKeyInfo` of the public key; its SHA-256 prefix is the key ID.
    fn public_key_der(&self) -> &[u8];

    /// Signs `msg` (ECDSA over SHA-256 of `msg`) and returns the ASN.1 DER signature.
    fn sign(&self, msg: &[u8]) -> impl Future<Output = Result<Vec<u8>, SignerError>> + Send;

    /// DER public keys of the log's earlier checkpoint keys, trusted out of band (configuration,
    /// never the database), so that after a key rotation the signer still checks the last note
    /// it builds on.
    fn retired_public_keys(&self) -> &[Vec<u8>] {
        &[]
    }
}

/// Why a checkpoint was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The checkpoint or key name would not make a valid note; nothing was sent to the signer.
    #[error("refusing to sign: {0}")]
    InvalidInput(#[from] CheckpointError),
    /// The signing service failed; the source names the operation and the key.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The signature came back but does not verify with the signer's public key, so the note is
    /// withheld rather than published.
    #[error("the signature by key {key_name} does not verify with its own public key: {source}")]
    SelfCheck { key_name: String, source: CheckpointError },
}

/// Signs `checkpoint` with `signer` and assembles the signed note. The result is verified with the
/// signer's public key before it is returned: one local ECDSA verification per checkpoint guards
/// against publishing a note that no client can verify (a misconfigured key, a wrong algorithm).
pub async fn sign_checkpoint<S: CheckpointSigner>(
    signer: &S,
    checkpoint: Checkpoint,
) -> Result<SignedCheckpoint, SignerError> {
    checkpoint.validate()?;
    checkpoint::validate_key_name(signer.key_name())?;
    let body = checkpoint.body();
    let signature = signer.sign(body.as_bytes()).await?;
    let key_id = checkpoint::key_id_ecdsa(signer.public_key_der());
    let signed = checkpoint::assemble(checkpoint, signer.key_name(), key_id, signature)?;
    checkpoint::verify(&signed.note, signer.key_name(), signer.public_key_der())
        .map_err(|source| SignerError::SelfCheck { key_name: signer.key_name().to_owned(), source })?;
    Ok(signed)
}

/// A P-256 key held in memory.
pub struct LocalSigner {
    key_name: String,
    signing_key: SigningKey,
    public_key_der: Vec<u8>,
    retired: Vec<Vec<u8>>,
}

impl LocalSigner {
    /// A signer for `key_name` with the given key; `SigningKey::from_slice(&[7; 32])` gives a
    /// reproducible key for tests.
    pub fn new(key_name: impl Into<String>, signing_key: SigningKey) -> Result<Self, SignerError> {
        let key_name = key_name.into();
        checkpoint::validate_key_name(&key_name)?;
        let public_key_der = signing_key
            .verifying_key()
            .to_public_key_der()
            .map_err(|_| SignerError::InvalidInput(CheckpointError::InvalidPublicKey))?
            .into_vec();
        Ok(LocalSigner { key_name, signing_key, public_key_der, retired: Vec::new() })
    }

    /// The same signer, trusting notes by these earlier keys (DER public keys).
    pub fn with_retired_keys(mut self, retired: Vec<Vec<u8>>) -> Self {
        self.retired = retired;
        self
    }

    /// A signer with a fresh random key, for benchmarks and the local run.
    pub fn random(key_name: impl Into<String>) -> Result<Self, SignerError> {
        LocalSigner::new(key_name, SigningKey::random(&mut rand::rngs::OsRng))
    }
}

impl std::fmt::Debug for LocalSigner {
    // The secret scalar stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner").field("key_name", &self.key_name).finish_non_exhaustive()
    }
}

impl CheckpointSigner for LocalSigner {
    fn key_name(&self) -> &str {
        &self.key_name
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        let signature: Signature = self.signing_key.sign(msg);
        Ok(signature.to_der().as_bytes().to_vec())
    }

    fn retired_public_keys(&self) -> &[Vec<u8>] {
        &self.retired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::hash::sha256;

    const KEY_NAME: &str = "audit.example.com/log/v1";

    fn local_signer(secret_byte: u8) -> LocalSigner {
        let signing_key = SigningKey::from_slice(&[secret_byte; 32]).expect("a valid scalar");
        LocalSigner::new(KEY_NAME, signing_key).expect("a valid key name")
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new(KEY_NAME, 7, sha256(&[b"root"])).with_timestamp(1_735_689_600)
    }

    /// A signer whose signatures come from a different key than the public key it reports.
    struct MismatchedSigner {
        reported: LocalSigner,
        actual: LocalSigner,
    }

    impl CheckpointSigner for MismatchedSigner {
        fn key_name(&self) -> &str {
            self.reported.key_name()
        }
        fn public_key_der(&self) -> &[u8] {
            self.reported.public_key_der()
        }
        async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
            self.actual.sign(msg).await
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime").block_on(future)
    }

    #[test]
    fn signed_checkpoint_verifies_with_the_signers_public_key() {
        let signer = local_signer(7);
        let signed = block_on(sign_checkpoint(&signer, checkpoint())).expect("signed");
        assert_eq!(signed.key_id, checkpoint::key_id_ecdsa(signer.public_key_der()));
        assert_eq!(checkpoint::verify(&signed.note, KEY_NAME, signer.public_key_der()), Ok(checkpoint()));
    }

    #[test]
    fn refuses_invalid_checkpoint_before_signing() {
        let signer = local_signer(7);
        let invalid = Checkpoint::new("", 7, sha256(&[b"root"]));
        let err = block_on(sign_checkpoint(&signer, invalid)).expect_err("refused");
        assert!(matches!(err, SignerError::InvalidInput(CheckpointError::EmptyOrigin)));
    }

    #[test]
    fn rejects_key_name_with_space() {
        let signing_key = SigningKey::from_slice(&[7; 32]).expect("a valid scalar");
        let err = LocalSigner::new("audit log", signing_key).expect_err("refused");
        assert!(matches!(err, SignerError::InvalidInput(CheckpointError::InvalidKeyName(_))));
    }

    #[test]
    fn withholds_note_whose_signature_does_not_match_the_public_key() {
        let signer = MismatchedSigner { reported: local_signer(7), actual: local_signer(9) };
        let err = block_on(sign_checkpoint(&signer, checkpoint())).expect_err("withheld");
        assert!(matches!(err, SignerError::SelfCheck { .. }), "{err}");
    }

    #[test]
    fn signing_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let signer = local_signer(7);
        assert_send(&sign_checkpoint(&signer, checkpoint()));
    }

    #[test]
    fn random_keys_differ() {
        let a = LocalSigner::random(KEY_NAME).expect("valid key name");
        let b = LocalSigner::random(KEY_NAME).expect("valid key name");
        assert_ne!(a.public_key_der(), b.public_key_der());
    }

    #[test]
    fn debug_output_omits_the_secret() {
        let signer = local_signer(7);
        assert_eq!(format!("{signer:?}"), "LocalSigner { key_name: \"audit.example.com/log/v1\", .. }");
    }
}
