//! Creates the AWS resources the service uses on the local endpoint, idempotently: each resource
//! is found by its alias or name first and created only when missing. The names are the ones
//! `template.yaml` gives the same resources in AWS.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};

/// The alias of the KMS key that signs checkpoints (ECC_NIST_P256, SIGN_VERIFY).
pub const CHECKPOINT_KEY_ALIAS: &str = "alias/audit-log-checkpoints";

/// What the bootstrap created or found.
#[derive(Debug, Clone)]
pub struct Resources {
    pub checkpoint_key_id: String,
}

/// Creates (or finds) every resource.
pub async fn bootstrap(config: &SdkConfig) -> Result<Resources> {
    let kms = aws_sdk_kms::Client::new(config);
    let checkpoint_key_id = ensure_signing_key(&kms, CHECKPOINT_KEY_ALIAS).await?;
    Ok(Resources { checkpoint_key_id })
}

async fn ensure_signing_key(kms: &aws_sdk_kms::Client, alias: &str) -> Result<String> {
    if let Ok(found) = kms.describe_key().key_id(alias).send().await {
        if let Some(meta) = found.key_metadata() {
            return Ok(meta.key_id().to_owned());
        }
    }
    let created = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description("Signs the audit log's checkpoints (local)")
        .send()
        .await
        .context("KMS CreateKey for the checkpoint key")?;
    let key_id = created.key_metadata().map(|m| m.key_id().to_owned()).context("CreateKey returned no key id")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&key_id)
        .send()
        .await
        .with_context(|| format!("KMS CreateAlias {alias}"))?;
    Ok(key_id)
}
