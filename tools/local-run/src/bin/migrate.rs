//! `migrate "<connection string>"`: applies the migrations in `infra/migrations` (embedded at
//! build time) as the database owner; that also creates the coming months' event partitions. TLS as the
//! string's `sslmode` says; extra CA certificates from `DATABASE_CA_FILE`. Run by operators at
//! deploy time (see infra/DEPLOY.md); the functions never migrate.

use anyhow::{bail, Context, Result};
use shared::store::connect::DbConfig;
use shared::store::migrate::migrate;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), None) = (args.next(), args.next()) else {
        bail!("usage: migrate \"host=... user=<owner> dbname=audit sslmode=require\"");
    };
    let extra_ca_pem = match std::env::var("DATABASE_CA_FILE") {
        Ok(path) => Some(std::fs::read(&path).with_context(|| format!("reading {path}"))?),
        Err(_) => None,
    };
    let config = DbConfig { url, extra_ca_pem, ..Default::default() };
    let mut client = config.connect().await.context("connecting")?;
    let applied = migrate(&mut client).await.context("migrating")?;
    println!("applied {} migration(s): {}", applied.len(), applied.join(", "));
    Ok(())
}
