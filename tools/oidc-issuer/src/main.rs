//! `oidc-issuer`: the local OpenID Connect issuer as a command, for signing in to a local run's
//! console. Users and their roles come from the command line; the process serves until Ctrl-C.
//!
//! ```sh
//! oidc-issuer --port 9400 --client-id audit-console --origin http://127.0.0.1:3000 \
//!     --user ada=audit-admins --user bob=auditors --user cy=staff
//! ```
//! then register it for a tenant (`PUT /v1/console/settings` with `"issuer":
//! "http://127.0.0.1:9400"`; the local run accepts loopback issuers).

use anyhow::{Context, Result};
use clap::Parser;
use oidc_issuer::{Issuer, IssuerConfig, User};

#[derive(Debug, Parser)]
#[command(about = "A local OpenID Connect issuer (discovery, JWKS, authorization code + PKCE)")]
struct Args {
    /// Port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 9400)]
    port: u16,
    /// The client id (the tokens' audience).
    #[arg(long, default_value = "audit-console")]
    client_id: String,
    /// An origin whose browser may call the token endpoint (repeatable).
    #[arg(long = "origin")]
    origins: Vec<String>,
    /// The claim that carries the users' roles.
    #[arg(long, default_value = "roles")]
    role_claim: String,
    /// A user: `login=role1,role2` (repeatable).
    #[arg(long = "user", required = true)]
    users: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_target(false).init();
    let args = Args::parse();
    let mut users = Vec::new();
    for spec in &args.users {
        let (login, roles) = spec.split_once('=').with_context(|| format!("--user {spec}: expected login=role,..."))?;
        let roles: Vec<&str> = roles.split(',').filter(|r| !r.is_empty()).collect();
        users.push(User::with_roles(login, &args.role_claim, &roles));
    }
    let config = IssuerConfig { client_id: args.client_id.clone(), allowed_origins: args.origins, users };
    let issuer = Issuer::start_on(args.port, config).await?;
    println!("OIDC issuer {} (client id {}). Ctrl-C stops it.", issuer.url(), issuer.client_id());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
