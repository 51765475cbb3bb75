//! `local-run`: the local stack behind `scripts/local`. Starts a persistent PostgreSQL cluster
//! (data in `.local/pg`, kept between runs; `--reset` deletes it first), creates and migrates the
//! `audit` database, starts the local AWS endpoint and creates the resources the service uses,
//! prints how to reach everything, and stops it all on Ctrl-C.

use anyhow::{bail, Context, Result};
use localstack::bootstrap::{bootstrap, CHECKPOINT_KEY_ALIAS};
use localstack::moto::{Moto, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use localstack::postgres::Postgres;
use localstack::process::workspace_root;
use shared::store::migrate::{ensure_service_login, migrate};

const DATABASE: &str = "audit";
const SERVICE_USER: &str = "audit_app";
const USAGE: &str = "usage: scripts/local [--reset]\n  --reset  delete the local database (.local/) and start afresh";

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut reset = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--reset" => reset = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }

    let state = workspace_root().join(".local");
    if reset && state.exists() {
        std::fs::remove_dir_all(&state).with_context(|| format!("deleting {}", state.display()))?;
        println!("reset: deleted {}", state.display());
    }
    let pg_dir = state.join("pg");
    let pg = Postgres::start_persistent(&pg_dir).context("starting PostgreSQL")?;
    let admin = pg.connect_superuser("postgres").await?;
    let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE]).await?.is_some();
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE {DATABASE}")).await.context("creating the database")?;
    }
    let mut owner = pg.connect_superuser(DATABASE).await?;
    let applied = migrate(&mut owner).await.context("applying migrations")?;
    ensure_service_login(&owner, SERVICE_USER).await?;

    let moto = Moto::start().context("starting the local AWS endpoint")?;
    let resources = bootstrap(&moto.sdk_config()).await.context("creating the AWS resources")?;

    println!();
    println!("The local stack is up. Ctrl-C stops everything.");
    println!("  PostgreSQL     {}   (data: {})", pg.url(SERVICE_USER, DATABASE), pg_dir.display());
    println!("  migrations     {} applied now", applied.len());
    println!("  AWS endpoint   {}   (region {REGION}, credentials {ACCESS_KEY_ID}/{SECRET_ACCESS_KEY})", moto.url());
    println!(
        "  KMS key        {CHECKPOINT_KEY_ALIAS} = {} (checkpoint signing, ECC_NIST_P256)",
        resources.checkpoint_key_id
    );
    println!("  environment    export AWS_ENDPOINT_URL={} AWS_REGION={REGION} AWS_ACCESS_KEY_ID={ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY} AWS_EC2_METADATA_DISABLED=true", moto.url());
    println!();

    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("stopping");
    drop(moto);
    pg.stop()?;
    Ok(())
}
