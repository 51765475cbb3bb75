//! Every function binary, run as AWS runs it: the binary polls a Lambda runtime API (the one
//! `cargo lambda watch --only-lambda-apis` emulates) with the environment `template.yaml` gives
//! it, and `cargo lambda invoke` sends each sample event in `events/` through that API, against
//! the real local services. Event JSON in, the runtime's response JSON out, through each
//! function's `main`.
//!
//! The test builds the function binaries itself and starts them, so nothing compiles while an
//! invocation waits, and every wait has a limit: a function that crashes or never answers fails
//! the test with its own log instead of hanging it.

mod support;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use localstack::moto::Moto;
use localstack::process::{free_port, wait_for_port, workspace_root};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The tenant the sample events' authorizer context names.
const SAMPLE_TENANT: &str = "01930000-0000-7000-8000-000000000001";

/// How long one invocation may take, start-up of the function's clients included.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long building the function binaries may take on a cold build directory.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// (event file, expected HTTP status, or for non-HTTP functions a JSON field that must be present)
const CASES: &[(&str, Expect)] = &[
    ("authorizer/unknown-key.json", Expect::Authorized(false)),
    ("authorizer/not-bearer.json", Expect::Authorized(false)),
    ("authorizer/websocket-unknown-key.json", Expect::Effect("Deny")),
    ("authorizer/viewer-token-bad-mac.json", Expect::Authorized(false)),
    ("authorizer/oidc-unregistered-issuer.json", Expect::Authorized(false)),
    ("ingest/append-one.json", Expect::Status(201)),
    ("ingest/append-batch.json", Expect::Status(201)),
    ("ingest/append-invalid.json", Expect::Status(400)),
    ("ingest/append-duplicate-member.json", Expect::Status(400)),
    ("query/list-events.json", Expect::Status(200)),
    ("query/get-event.json", Expect::Status(404)),
    ("query/inclusion-proof.json", Expect::Status(404)),
    ("query/consistency-proof.json", Expect::Status(200)),
    ("query/latest-checkpoint.json", Expect::Status(404)),
    ("query/checkpoint-public-key.json", Expect::Status(200)),
    ("query/receipt-public-key.json", Expect::Status(200)),
    ("query/stats.json", Expect::Status(200)),
    ("query/whoami.json", Expect::Status(200)),
    ("query/list-events-viewer-token.json", Expect::Status(200)),
    ("query/stats-viewer-token.json", Expect::Status(403)),
    ("checkpointer/schedule.json", Expect::Field("signed")),
    ("verifier/schedule.json", Expect::Field("entries")),
    ("partitions/schedule.json", Expect::Field("created")),
    ("query/checkpoint-at.json", Expect::Status(200)),
    ("query/log-checkpoint.json", Expect::Status(200)),
    ("query/log-tile.json", Expect::Status(200)),
    ("query/global-proof.json", Expect::Status(200)),
    // Against the checkpoint signed above: the sample's ids are no events, so each is listed as
    // not found in a 200 answer.
    ("query/batch-inclusion-proofs.json", Expect::Status(200)),
    ("verify/verify-all.json", Expect::Status(200)),
    ("admin/create-tenant.json", Expect::Status(201)),
    ("admin/create-tenant-key.json", Expect::Status(201)),
    ("admin/create-key.json", Expect::Status(201)),
    ("admin/list-keys.json", Expect::Status(200)),
    ("admin/revoke-key.json", Expect::Status(404)),
    ("admin/register-signing-key.json", Expect::Status(201)),
    ("admin/list-signing-keys.json", Expect::Status(200)),
    ("admin/revoke-signing-key.json", Expect::Status(200)),
    ("admin/get-settings.json", Expect::Status(200)),
    ("admin/update-settings.json", Expect::Status(200)),
    ("admin/create-viewer-token.json", Expect::Status(201)),
    ("admin/revoke-viewer-token.json", Expect::Status(200)),
    ("admin/get-console-settings.json", Expect::Status(200)),
    ("admin/put-console-settings.json", Expect::Status(200)),
    // Public: no authorizer context; the tenant just registered its issuer above.
    ("admin/console-sign-in.json", Expect::Status(200)),
    ("erasure/erase-subject.json", Expect::Status(200)),
    ("erasure/erase-two-criteria.json", Expect::Status(400)),
    ("exports/create-export.json", Expect::Status(202)),
    ("exports/list-exports.json", Expect::Status(200)),
    ("exports/get-export.json", Expect::Status(404)),
    // The export queue's consumer: a message for an export that does not exist is stale and
    // acknowledged; the export queued above is run by the local pipeline tests.
    ("export/unknown-export.json", Expect::Failures(&[])),
    // The ingest cases above appended seqs 0 to 2 of the sample tenant.
    ("indexer/index-batch.json", Expect::Failures(&[])),
    ("indexer/malformed-message.json", Expect::Failures(&["5b3f8a2e-0f5c-4c1e-9d61-1a2b3c4d5e04"])),
    ("relay/schedule.json", Expect::Field("sent")),
    // The console's pages (public routes): 200 when console/dist was built, else 503.
    ("console/console-root.json", Expect::Status(if CONSOLE_BUILT { 200 } else { 503 })),
    ("console/console-page.json", Expect::Status(if CONSOLE_BUILT { 200 } else { 503 })),
    // The live tail's routes: the sample connection is stored at $connect, but no socket is open
    // for it behind the Management API (this test's gateway answers 410), so its frames find it
    // gone and the connection is forgotten; every route still answers 200.
    ("tail/connect.json", Expect::Status(200)),
    ("tail/connect-without-read.json", Expect::Status(403)),
    ("tail/subscribe.json", Expect::Status(200)),
    ("tail/ping.json", Expect::Status(200)),
    ("tail/unknown-action.json", Expect::Status(200)),
    ("tail/disconnect.json", Expect::Status(200)),
    ("tail-fanout/wake-tenant.json", Expect::Failures(&[])),
    ("tail-fanout/malformed-message.json", Expect::Failures(&["7c1d2e3f-0000-4000-8000-000000000003"])),
];

/// Whether the console function was built with the console (`console/dist`) embedded.
const CONSOLE_BUILT: bool = !console::ASSETS.is_empty();

#[derive(Debug, Clone, Copy)]
enum Expect {
    Status(u16),
    Authorized(bool),
    /// A REQUEST authorizer's IAM policy, with this effect.
    Effect(&'static str),
    Field(&'static str),
    /// An SQS consumer's batch response, listing exactly these message ids as failed.
    Failures(&'static [&'static str]),
}

/// The functions the cases name, each once.
fn functions() -> BTreeSet<&'static str> {
    CASES.iter().filter_map(|(file, _)| file.split('/').next()).collect()
}

/// The build directory this test binary was built in (`<target>/debug/deps/<test>` → `<target>`).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe.ancestors().nth(3).context("the test binary lives in <target>/<profile>/deps")?;
    Ok(target.to_path_buf())
}

fn cargo() -> Command {
    let root = workspace_root();
    let venv_bin = root.join(".venv/bin");
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root).env("PATH", path).stdin(Stdio::null()).kill_on_drop(true);
    // Cargo gives this test the variables of its own package; handed on, they would change the
    // fingerprints of build scripts that read them (ring's) and rebuild half the tree each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_package = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_PACKAGE"];
        if name == "CARGO" || name == "CARGO_TARGET_TMPDIR" || per_package.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Builds the function binaries into the test's own build directory and returns it. The build
/// asks for what `cargo test --workspace --all-targets` builds, so under the test suite it reuses
/// that build's artifacts and only links the binaries.
async fn build_functions(target: &Path) -> Result<PathBuf> {
    let mut build = cargo();
    build.args(["build", "--locked", "--quiet", "--workspace", "--all-targets", "--target-dir"]).arg(target);
    let output = tokio::time::timeout(BUILD_TIMEOUT, build.output())
        .await
        .context("building the function binaries took too long")??;
    if !output.status.success() {
        // A linker's own message comes last, after its whole command line: keep the end.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        bail!(
            "building the function binaries failed (the last lines):\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
    Ok(target.join("debug"))
}

struct Running {
    child: Child,
    log: PathBuf,
}

#[tokio::test]
async fn every_function_answers_its_sample_events_through_the_lambda_runtime_api() -> Result<()> {
    let target = target_dir()?;
    let bin_dir = build_functions(&target).await?;
    let logs = target.join("lambda-functions-test");
    std::fs::create_dir_all(&logs)?;

    let db = support::db::TestDb::new().await?;
    let moto = Moto::shared()?;
    let sdk = moto.sdk_config();
    let resources = localstack::bootstrap::bootstrap(&sdk).await?;
    let mut store = db.store().await?;
    store.create_tenant_with_id(Uuid::parse_str(SAMPLE_TENANT)?, "sample").await?;
    drop(store);

    let mut env: HashMap<String, String> = local_run::function_env(&db.app_url(), &db.maintenance_url(), &resources);
    env.insert("DATABASE_POOL_SIZE".into(), "1".into());
    for (k, v) in moto.env_vars() {
        env.insert(k.into(), v);
    }
    env.insert("RUST_LOG".into(), "info".into());
    // The indexer writes to a real OpenSearch node, into an index of this test's own.
    let opensearch = localstack::opensearch::OpenSearch::shared()?;
    let index = format!("audit-events-{}", Uuid::new_v4().simple());
    shared::search::OpenSearch::new(&sdk, &opensearch.url(), &index)?
        .ensure_index(&local_run::index_template()?)
        .await?;
    env.insert("OPENSEARCH_URL".into(), opensearch.url());
    env.insert("OPENSEARCH_INDEX".into(), index);
    // The live tail posts through a Management API: the local gateway's, on a port of its own.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let env = local_run::with_gateway_url(env, &format!("http://{}", listener.local_addr()?));
    let app = local_run::gateway(&env, &sdk).await?.into_router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The runtime API emulator: it starts no function itself, it only queues invocations for
    // the binaries started below, each polling its own path as a Lambda sandbox would.
    let port = free_port()?;
    let watch_log = logs.join("runtime-api.log");
    let _runtime_api = cargo()
        .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string()])
        .stdout(std::fs::File::create(&watch_log)?)
        .stderr(std::fs::File::create(logs.join("runtime-api.err.log"))?)
        .spawn()
        .context("starting cargo lambda watch (run scripts/setup first)")?;
    wait_for_port(port, Duration::from_secs(60), "the Lambda runtime API emulator")
        .with_context(|| tail(&logs.join("runtime-api.err.log")))?;

    let mut running: HashMap<&str, Running> = HashMap::new();
    for function in functions() {
        let log = logs.join(format!("{function}.log"));
        let child = Command::new(bin_dir.join(function))
            .envs(&env)
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{function}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::options().append(true).open(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin_dir.join(function).display()))?;
        running.insert(function, Running { child, log });
    }

    let root = workspace_root();
    for (file, expect) in CASES {
        let function = file.split('/').next().context("function dir")?;
        let process = running.get_mut(function).context("every case's function was started")?;
        if let Some(status) = process.child.try_wait()? {
            bail!("{function} exited ({status}) before {file}:\n{}", tail(&process.log));
        }
        let invoke = cargo()
            .args(["lambda", "invoke", function, "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string(), "--output-format", "json", "--data-file"])
            .arg(root.join("events").join(file))
            .output();
        let output = match tokio::time::timeout(INVOKE_TIMEOUT, invoke).await {
            Ok(output) => output?,
            Err(_) => bail!("{function} did not answer {file} within {INVOKE_TIMEOUT:?}:\n{}", tail(&process.log)),
        };
        if !output.status.success() {
            bail!(
                "invoking {function} with {file} failed: {}\n{function}'s log:\n{}",
                String::from_utf8_lossy(&output.stderr),
                tail(&process.log)
            );
        }
        let response: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("{file}: not JSON: {}", String::from_utf8_lossy(&output.stdout)))?;
        match expect {
            Expect::Status(status) => {
                assert_eq!(response["statusCode"], *status, "{file}: {response}");
                // The console's pages are HTML (and may be compressed), the log's checkpoint a
                // signed note and its tiles binary (base64 in the Lambda response, as API Gateway
                // expects); everything else is JSON.
                let content_type = response["headers"]["content-type"].as_str().unwrap_or("application/json");
                if content_type.starts_with("application/json") {
                    let body: Value = serde_json::from_str(response["body"].as_str().unwrap_or("null"))
                        .with_context(|| format!("{file}: body is not JSON"))?;
                    if *status >= 400 {
                        assert!(body["error"]["code"].is_string(), "{file}: {body}");
                    }
                } else if content_type == "application/octet-stream" {
                    assert_eq!(response["isBase64Encoded"], true, "{file}: {response}");
                    let body = base64::engine::general_purpose::STANDARD
                        .decode(response["body"].as_str().unwrap_or_default())
                        .with_context(|| format!("{file}: body is not base64"))?;
                    assert_eq!(body.len(), 32, "{file}: a tile of one hash");
                } else if content_type.starts_with("text/plain") {
                    let note = response["body"].as_str().unwrap_or_default();
                    assert!(note.contains("\n\n\u{2014} "), "{file}: not a signed note: {note}");
                } else {
                    assert!(content_type.starts_with("text/html"), "{file}: {content_type}");
                    assert!(*status < 400, "{file}: an error answered as {content_type}");
                }
            }
            Expect::Authorized(allowed) => assert_eq!(response["isAuthorized"], *allowed, "{file}: {response}"),
            Expect::Effect(effect) => {
                assert_eq!(response["policyDocument"]["Statement"][0]["Effect"], *effect, "{file}: {response}")
            }
            Expect::Field(field) => assert!(response.get(*field).is_some(), "{file}: {response}"),
            Expect::Failures(ids) => {
                let failed: Vec<&str> = response["batchItemFailures"]
                    .as_array()
                    .with_context(|| format!("{file}: not a batch response: {response}"))?
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .collect();
                assert_eq!(failed, *ids, "{file}: {response}");
            }
        }
    }
    Ok(())
}

/// Every sample event in `events/` is one of the cases above, so none goes stale untried.
#[test]
fn every_sample_event_is_invoked() -> Result<()> {
    let events = workspace_root().join("events");
    let mut files = BTreeSet::new();
    for dir in std::fs::read_dir(&events)? {
        let dir = dir?;
        for file in std::fs::read_dir(dir.path())? {
            let file = file?;
            files.insert(format!("{}/{}", dir.file_name().to_string_lossy(), file.file_name().to_string_lossy()));
        }
    }
    let cased: BTreeSet<String> = CASES.iter().map(|(file, _)| (*file).to_owned()).collect();
    assert_eq!(files, cased, "events/ and the cases differ");
    Ok(())
}
