//! `local-run`: the local stack behind `scripts/local`. Starts a persistent PostgreSQL cluster
//! (data in `.local/pg`, kept between runs; `--reset` deletes it first), creates and migrates the
//! `audit` database, starts the local AWS endpoint and creates the resources the service uses,
//! serves the whole API on 127.0.0.1:3000 through the local gateway (same authorizer, same
//! handlers), starts a local OpenSearch node when it is installed and consumes the index and
//! export queues as the functions' event source mappings do (and the tail queue, for the live
//! tail's WebSocket on `/v1/tail`), runs the schedules (checkpoints,
//! verification, the outbox relay) on short periods, prints a platform key and how to reach
//! everything, and stops it all on Ctrl-C.

use anyhow::{bail, Context, Result};
use local_run::create_platform_key;
use local_run::{
    console_env, function_env, gateway, index_template, retire_earlier_checkpoint_keys, run_checkpointer_schedule,
    run_exporter, run_indexer, run_relay_schedule, run_tail_fanout, run_verifier_schedule, with_gateway_url,
    EXPORT_RUN_LIMIT,
};
use localstack::bootstrap::{bootstrap, CHECKPOINT_KEY_ALIAS};
use localstack::moto::{Moto, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use localstack::postgres::Postgres;
use localstack::process::workspace_root;
use shared::store::migrate::{ensure_maintenance_login, ensure_service_login, migrate};
use std::time::Duration;

const DATABASE: &str = "audit";
const SERVICE_USER: &str = "audit_app";
const MAINTENANCE_USER: &str = "audit_maint";
const USAGE: &str = "usage: scripts/local [--reset] [--port N] [--state-dir DIR] [--ready-file FILE]
  --reset            delete the local database (.local/) and start afresh
  --state-dir DIR    keep the local state (database, checkpoint keys) in DIR instead of .local/
  --ready-file FILE  once everything is up, write {\"url\",\"platform_key\",\"console_url\",
                     \"owner_database_url\"} as JSON to FILE (for scripts that drive a local run,
                     like the SDK end-to-end and console tests)
  --port N  serve the API on 127.0.0.1:N (default 3000)";
/// How often the local run signs checkpoints (the template's schedule is every minute).
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(5);
/// How often the local run verifies new entries (the template's schedule is every 5 minutes).
const VERIFY_PERIOD: Duration = Duration::from_secs(30);
/// How often the local run's outbox relay runs (the template's schedule is every minute).
const RELAY_PERIOD: Duration = Duration::from_secs(10);

/// Waits for Ctrl-C, or SIGTERM from a script that started the run in the background.
async fn wait_for_stop() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut state_dir: Option<std::path::PathBuf> = None;
    let mut ready_file: Option<std::path::PathBuf> = None;
    let mut reset = false;
    let mut port: u16 = 3000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reset" => reset = true,
            "--state-dir" => {
                state_dir = Some(
                    args.next()
                        .map(std::path::PathBuf::from)
                        .with_context(|| format!("--state-dir needs a folder\n{USAGE}"))?,
                )
            }
            "--ready-file" => {
                ready_file = Some(
                    args.next()
                        .map(std::path::PathBuf::from)
                        .with_context(|| format!("--ready-file needs a path\n{USAGE}"))?,
                )
            }
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .with_context(|| format!("--port needs a number\n{USAGE}"))?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }

    let state = state_dir.unwrap_or_else(|| workspace_root().join(".local"));
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
    ensure_maintenance_login(&owner, MAINTENANCE_USER).await?;

    let moto = Moto::start().context("starting the local AWS endpoint")?;
    let sdk = moto.sdk_config();
    let resources = bootstrap(&sdk).await.context("creating the AWS resources")?;
    let mut env = function_env(&pg.url(SERVICE_USER, DATABASE), &pg.url(MAINTENANCE_USER, DATABASE), &resources);
    let platform_key = create_platform_key(&sdk, &resources).await.context("creating a platform key")?;
    let retired = retire_earlier_checkpoint_keys(&state.join("checkpoint-keys"), &mut env, &sdk)
        .await
        .context("recording the checkpoint key")?;
    console_env(&mut env, &sdk, port).await.context("configuring the console")?;
    // OpenSearch, when installed (scripts/setup does): a fresh node each run, so every stored
    // entry is queued for indexing again; without it, PostgreSQL's full text serves `q`.
    let opensearch = if localstack::opensearch::is_installed() {
        let node = localstack::opensearch::OpenSearch::start().context("starting OpenSearch")?;
        env.insert("OPENSEARCH_URL".into(), node.url());
        let client = shared::search::OpenSearch::new(&sdk, &node.url(), "audit-events")?;
        client.ensure_index(&index_template()?).await.context("applying the index template")?;
        let requeued: i64 =
            owner.query_one("SELECT audit_outbox_requeue_all(1000)", &[]).await.context("queueing a reindex")?.get(0);
        Some((node, requeued))
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port} (is another local run using it? try --port)"))?;
    // The live tail's fan-out posts to connections through this gateway's Management API.
    let env = with_gateway_url(env, &format!("http://127.0.0.1:{port}"));
    let app = gateway(&env, &sdk).await?.into_router();
    let console_key = local_run::console_key(&app, &platform_key, &state).await;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let checkpointer = tokio::spawn(run_checkpointer_schedule(env.clone(), sdk.clone(), CHECKPOINT_PERIOD));
    let verifier = tokio::spawn(run_verifier_schedule(env.clone(), sdk.clone(), VERIFY_PERIOD));
    let relay = tokio::spawn(run_relay_schedule(env.clone(), sdk.clone(), RELAY_PERIOD));
    let exporter = tokio::spawn(run_exporter(env.clone(), sdk.clone(), EXPORT_RUN_LIMIT));
    let tail_fanout = tokio::spawn(run_tail_fanout(env.clone(), sdk.clone()));
    let indexer = tokio::spawn(run_indexer(env.clone(), sdk.clone()));

    println!();
    println!("The local stack is up. Ctrl-C stops everything.");
    println!("  PostgreSQL     {}   (data: {})", pg.url(SERVICE_USER, DATABASE), pg_dir.display());
    println!("  migrations     {} applied now", applied.len());
    if retired > 0 {
        println!("  checkpoint key new this run; the {retired} earlier one(s) stay trusted as retired keys");
    }
    println!("  AWS endpoint   {}   (region {REGION}, credentials {ACCESS_KEY_ID}/{SECRET_ACCESS_KEY})", moto.url());
    println!(
        "  KMS key        {CHECKPOINT_KEY_ALIAS} = {} (checkpoint signing, ECC_NIST_P256)",
        resources.checkpoint_key_id
    );
    println!(
        "  API            http://127.0.0.1:{port}   (checkpoints signed every {}s, new entries verified every {}s)",
        CHECKPOINT_PERIOD.as_secs(),
        VERIFY_PERIOD.as_secs()
    );
    match &opensearch {
        Some((node, requeued)) => println!(
            "  OpenSearch     {}   (index audit-events; {requeued} outbox rows queued to reindex what is stored)",
            node.url()
        ),
        None => println!("  search         PostgreSQL full text (OpenSearch is not installed: run scripts/setup)"),
    }
    match &console_key {
        Ok(key) => {
            println!(
                "  console        http://127.0.0.1:{port}/console/   (API docs: http://127.0.0.1:{port}/console/docs/)"
            );
            println!("                 open it and sign in with this key of tenant \"local console\" (all scopes):");
            println!("  console key    {key}");
        }
        Err(e) => println!("  console        http://127.0.0.1:{port}/console/   (no sign-in key: {e:#})"),
    }
    println!("  queues         index, export and tail queues consumed here, as their event source mappings do in AWS");
    println!("  live tail      ws://127.0.0.1:{port}/v1/tail?token=<key>   (docs/TAIL.md)");
    println!("  platform key   {platform_key}");
    println!("                 (new on every start: the local AWS endpoint keeps no state between runs;");
    println!("                 POST /v1/tenants/<id>/keys with it issues keys for tenants of earlier runs)");
    println!();
    println!("  Create a tenant and its first admin key:");
    println!("    curl -s -X POST http://127.0.0.1:{port}/v1/tenants -H 'Authorization: Bearer {platform_key}' \\");
    println!("         -H 'Content-Type: application/json' -d '{{\"name\":\"acme\"}}'");
    println!("  environment    export AWS_ENDPOINT_URL={} AWS_REGION={REGION} AWS_ACCESS_KEY_ID={ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY} AWS_EC2_METADATA_DISABLED=true", moto.url());
    println!();

    if let Some(path) = &ready_file {
        let ready = serde_json::json!({
            "url": format!("http://127.0.0.1:{port}"),
            "platform_key": platform_key,
            "console_url": format!("http://127.0.0.1:{port}/console/"),
            // The database owner (the cluster's superuser), for tests that tamper with stored rows.
            "owner_database_url": format!("postgresql://postgres@127.0.0.1:{}/{DATABASE}", pg.port),
        });
        std::fs::write(path, ready.to_string()).with_context(|| format!("writing {}", path.display()))?;
    }
    wait_for_stop().await?;
    println!("stopping");
    server.abort();
    checkpointer.abort();
    verifier.abort();
    relay.abort();
    exporter.abort();
    tail_fanout.abort();
    indexer.abort();
    if let Some((mut node, _)) = opensearch {
        node.stop()?;
    }
    drop(moto);
    pg.stop()?;
    Ok(())
}
