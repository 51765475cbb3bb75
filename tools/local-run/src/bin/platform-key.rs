//! `platform-key "<name>"`: creates a platform key (it may create tenants, nothing else) in the
//! table `API_KEYS_TABLE` with the KMS HMAC key `API_KEY_MAC_KEY_ID`, using the AWS credentials
//! and region of the environment, and prints it once. See infra/DEPLOY.md.

use anyhow::{bail, Result};
use shared::auth::Scope;
use shared::aws::api_keys::ApiKeyStore;
use shared::config::{ApiKeySettings, Env};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(name), None) = (args.next(), args.next()) else {
        bail!("usage: API_KEYS_TABLE=... API_KEY_MAC_KEY_ID=... platform-key \"<name>\"");
    };
    let mut env = Env::from_process();
    let settings = ApiKeySettings::from_env(&mut env);
    env.finish()?;
    let sdk = shared::aws::load_config().await;
    let key = ApiKeyStore::new(&sdk, &settings.table, &settings.mac_key_id)
        .create(None, &name, &[Scope::Platform], None)
        .await?;
    println!("key id  {}", key.record.key_id);
    println!("secret  {}   (shown once; store it in your secret manager)", key.secret);
    Ok(())
}
