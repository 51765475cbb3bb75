//! Checkpoint signing through KMS, against the local AWS endpoint (moto). Every test creates its
//! own key, so tests share the server but no state.

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use localstack::moto::Moto;
use p256::pkcs8::der::pem::LineEnding;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use shared::aws::kms::{KmsError, KmsSigner, MAX_RAW_MESSAGE_BYTES};
use shared::chain::checkpoint::{self, Checkpoint, CheckpointError};
use shared::chain::hash::sha256;
use shared::signer::{sign_checkpoint, CheckpointSigner, SignerError};

const KEY_NAME: &str = "audit.example.com/log/v1";

fn kms_client() -> anyhow::Result<aws_sdk_kms::Client> {
    Ok(aws_sdk_kms::Client::new(&Moto::shared()?.sdk_config()))
}

async fn create_key(client: &aws_sdk_kms::Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let out = client
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .description("checkpoint signing test key")
        .send()
        .await
        .expect("CreateKey");
    out.key_metadata().expect("key metadata").key_id().to_owned()
}

async fn create_signing_key(client: &aws_sdk_kms::Client) -> String {
    create_key(client, KeySpec::EccNistP256, KeyUsageType::SignVerify).await
}

/// The public key as KMS reports it, fetched apart from the signer.
async fn public_key_der(client: &aws_sdk_kms::Client, key_id: &str) -> Vec<u8> {
    let out = client.get_public_key().key_id(key_id).send().await.expect("GetPublicKey");
    out.public_key().expect("public key").as_ref().to_vec()
}

fn checkpoint() -> Checkpoint {
    Checkpoint::new(KEY_NAME, 1042, sha256(&[b"root"])).with_timestamp(1_735_689_600)
}

#[tokio::test]
async fn kms_signed_checkpoint_verifies_with_the_public_key_alone() -> anyhow::Result<()> {
    let client = kms_client()?;
    let key_id = create_signing_key(&client).await;
    let signer = KmsSigner::new(client.clone(), &key_id, KEY_NAME).await?;

    let signed = sign_checkpoint(&signer, checkpoint()).await?;

    let spki_der = public_key_der(&client, &key_id).await;
    assert_eq!(signer.public_key_der(), spki_der);
    assert_eq!(signed.key_id, checkpoint::key_id_ecdsa(&spki_der));
    assert_eq!(checkpoint::verify(&signed.note, KEY_NAME, &spki_der)?, checkpoint());
    Ok(())
}

#[tokio::test]
async fn kms_signed_checkpoint_verifies_with_the_pem_public_key() -> anyhow::Result<()> {
    let client = kms_client()?;
    let key_id = create_signing_key(&client).await;
    let signer = KmsSigner::new(client.clone(), &key_id, KEY_NAME).await?;
    let signed = sign_checkpoint(&signer, checkpoint()).await?;

    // What a user pastes: the PEM form of the GetPublicKey answer (as `openssl` prints it).
    let spki_der = public_key_der(&client, &key_id).await;
    let pem = p256::PublicKey::from_public_key_der(&spki_der)?.to_public_key_pem(LineEnding::LF)?;
    let from_pem = checkpoint::public_key_der_from_pem(&pem)?;

    assert_eq!(from_pem, spki_der);
    assert_eq!(checkpoint::verify(&signed.note, KEY_NAME, &from_pem)?, checkpoint());
    Ok(())
}

#[tokio::test]
async fn note_altered_by_one_byte_fails_verification() -> anyhow::Result<()> {
    let client = kms_client()?;
    let key_id = create_signing_key(&client).await;
    let signer = KmsSigner::new(client, &key_id, KEY_NAME).await?;
    let signed = sign_checkpoint(&signer, checkpoint()).await?;

    let altered = signed.note.replacen("\n1042\n", "\n1043\n", 1);
    assert_ne!(altered, signed.note);
    let result = checkpoint::verify(&altered, KEY_NAME, signer.public_key_der());
    assert!(matches!(result, Err(CheckpointError::InvalidSignature { .. })), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn checkpoint_signed_by_another_key_fails_verification() -> anyhow::Result<()> {
    let client = kms_client()?;
    let trusted = KmsSigner::new(client.clone(), create_signing_key(&client).await, KEY_NAME).await?;
    let other = KmsSigner::new(client.clone(), create_signing_key(&client).await, KEY_NAME).await?;
    let signed = sign_checkpoint(&other, checkpoint()).await?;

    let result = checkpoint::verify(&signed.note, KEY_NAME, trusted.public_key_der());
    assert!(matches!(result, Err(CheckpointError::NoSignatureByKey { .. })), "{result:?}");

    // Relabelled with the trusted key's ID, the other key's signature is checked and fails.
    let relabelled = checkpoint::assemble(
        checkpoint(),
        KEY_NAME,
        checkpoint::key_id_ecdsa(trusted.public_key_der()),
        signed.signature,
    )?;
    let result = checkpoint::verify(&relabelled.note, KEY_NAME, trusted.public_key_der());
    assert!(matches!(result, Err(CheckpointError::InvalidSignature { .. })), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn unknown_key_id_gives_an_error_naming_operation_and_key() -> anyhow::Result<()> {
    let client = kms_client()?;
    let missing = "00000000-0000-4000-8000-000000000000";
    let err = KmsSigner::new(client, missing, KEY_NAME).await.expect_err("no such key");

    let message = err.to_string();
    assert!(matches!(&err, KmsError::Request { operation: "GetPublicKey", .. }), "{message}");
    assert!(message.contains("GetPublicKey") && message.contains(missing), "{message}");
    assert!(matches!(&err, KmsError::Request { code: Some(code), .. } if code == "NotFoundException"), "{message}");
    Ok(())
}

#[tokio::test]
async fn rejects_key_that_is_not_p256_signing() -> anyhow::Result<()> {
    let client = kms_client()?;
    let rsa = create_key(&client, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let err = KmsSigner::new(client.clone(), &rsa, KEY_NAME).await.expect_err("RSA key");
    assert!(matches!(err, KmsError::UnsuitableKey { .. }), "{err}");

    let symmetric = create_key(&client, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let err = KmsSigner::new(client, &symmetric, KEY_NAME).await.expect_err("symmetric key");
    // KMS has no public key for a symmetric key: GetPublicKey itself fails.
    assert!(
        matches!(err, KmsError::Request { operation: "GetPublicKey", .. } | KmsError::UnsuitableKey { .. }),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn sign_failure_reaches_the_caller_naming_the_operation() -> anyhow::Result<()> {
    let client = kms_client()?;
    let key_id = create_signing_key(&client).await;
    let alias = format!("alias/checkpoint-{key_id}");
    client.create_alias().alias_name(&alias).target_key_id(&key_id).send().await?;
    let signer = KmsSigner::new(client.clone(), &alias, KEY_NAME).await?;
    // The alias disappears between start-up and the first checkpoint.
    client.delete_alias().alias_name(&alias).send().await?;

    let err = sign_checkpoint(&signer, checkpoint()).await.expect_err("alias is gone");
    let SignerError::Backend(source) = &err else { panic!("expected a backend error: {err}") };
    let kms = source.downcast_ref::<KmsError>().expect("a KMS error");
    assert!(matches!(kms, KmsError::Request { operation: "Sign", .. }), "{kms}");
    assert!(err.to_string().contains(&format!("KMS Sign with key {alias} failed")), "{err}");
    Ok(())
}

#[tokio::test]
async fn refuses_message_longer_than_kms_raw_limit() -> anyhow::Result<()> {
    let client = kms_client()?;
    let signer = KmsSigner::new(client.clone(), create_signing_key(&client).await, KEY_NAME).await?;
    let long_origin = format!("audit.example.com/{}", "a".repeat(MAX_RAW_MESSAGE_BYTES));
    let err = sign_checkpoint(&signer, Checkpoint::new(long_origin, 1, sha256(&[b"root"])))
        .await
        .expect_err("too long for KMS");
    assert!(err.to_string().contains("at most 4096 bytes"), "{err}");
    Ok(())
}

#[tokio::test]
async fn unreachable_endpoint_gives_an_error_naming_operation_and_cause() -> anyhow::Result<()> {
    let closed_port = localstack::process::free_port()?;
    let config = aws_sdk_kms::config::Builder::from(&Moto::shared()?.sdk_config())
        .endpoint_url(format!("http://127.0.0.1:{closed_port}"))
        .retry_config(RetryConfig::disabled())
        .build();
    let client = aws_sdk_kms::Client::from_conf(config);

    let err = KmsSigner::new(client, "any-key", KEY_NAME).await.expect_err("nothing listens");
    let message = err.to_string();
    assert!(matches!(&err, KmsError::Request { code: None, .. }), "{message}");
    assert!(message.starts_with("KMS GetPublicKey with key any-key failed: "), "{message}");
    assert!(message.contains("onnect"), "the cause is missing: {message}");
    Ok(())
}
