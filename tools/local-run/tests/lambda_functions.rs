//! Every function binary, run by `cargo lambda watch` (the Lambda runtime API emulator) with the
//! environment `template.yaml` gives it, invoked by `cargo lambda invoke` with each sample event in
//! `events/`, against the real local services. This is the path AWS takes: event JSON in, the
//! runtime's response JSON out, through each function's `main`.

mod support;

use anyhow::{bail, Context, Result};
use localstack::moto::Moto;
use localstack::process::{cleanup_on_exit, free_port, wait_for_port, workspace_root};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

/// The tenant the sample events' authorizer context names.
const SAMPLE_TENANT: &str = "01930000-0000-7000-8000-000000000001";

/// (event file, expected HTTP status, or for non-HTTP functions a JSON field that must be present)
const CASES: &[(&str, Expect)] = &[
    ("authorizer/unknown-key.json", Expect::Authorized(false)),
    ("authorizer/not-bearer.json", Expect::Authorized(false)),
    ("ingest/append-one.json", Expect::Status(201)),
    ("ingest/append-batch.json", Expect::Status(201)),
    ("ingest/append-invalid.json", Expect::Status(400)),
    ("query/list-events.json", Expect::Status(200)),
    ("query/get-event.json", Expect::Status(404)),
    ("query/inclusion-proof.json", Expect::Status(404)),
    ("query/consistency-proof.json", Expect::Status(200)),
    ("query/latest-checkpoint.json", Expect::Status(404)),
    ("query/checkpoint-public-key.json", Expect::Status(200)),
    ("query/receipt-public-key.json", Expect::Status(200)),
    ("query/stats.json", Expect::Status(200)),
    ("checkpointer/schedule.json", Expect::Field("signed")),
    ("verifier/schedule.json", Expect::Field("entries")),
    ("partitions/schedule.json", Expect::Field("created")),
    ("query/checkpoint-at.json", Expect::Status(200)),
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
];

#[derive(Debug, Clone, Copy)]
enum Expect {
    Status(u16),
    Authorized(bool),
    Field(&'static str),
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cargo_lambda() -> Command {
    let root = workspace_root();
    let venv_bin = root.join(".venv/bin");
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("cargo");
    cmd.arg("lambda").current_dir(&root).env("PATH", path);
    cmd
}

#[tokio::test]
async fn every_function_answers_its_sample_events_through_cargo_lambda() -> Result<()> {
    let db = support::db::TestDb::new().await?;
    let moto = Moto::shared()?;
    let sdk = moto.sdk_config();
    let resources = localstack::bootstrap::bootstrap(&sdk).await?;
    let mut store = db.store().await?;
    store.create_tenant_with_id(Uuid::parse_str(SAMPLE_TENANT)?, "sample").await?;
    drop(store);

    let mut env = local_run::function_env(&db.app_url(), &resources);
    env.insert("DATABASE_POOL_SIZE".into(), "1".into());
    for (k, v) in moto.env_vars() {
        env.insert(k.into(), v);
    }
    env.insert("RUST_LOG".into(), "warn".into());

    let port = free_port()?;
    let child = cargo_lambda()
        .args(["watch", "--ignore-changes", "--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
        // The functions inherit the emulator's environment, as in AWS they get the template's.
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting cargo lambda watch (run scripts/setup first)")?;
    cleanup_on_exit(&format!("kill {} 2>/dev/null", child.id()))?;
    let _watch = Watch(child);
    wait_for_port(port, Duration::from_secs(120), "cargo lambda watch")?;

    let root = workspace_root();
    for (file, expect) in CASES {
        let function = file.split('/').next().context("function dir")?;
        let output = cargo_lambda()
            .args(["invoke", function, "--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
            .args(["--output-format", "json", "--data-file"])
            .arg(root.join("events").join(file))
            .output()?;
        if !output.status.success() {
            bail!("invoking {function} with {file} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let response: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("{file}: not JSON: {}", String::from_utf8_lossy(&output.stdout)))?;
        match expect {
            Expect::Status(status) => {
                assert_eq!(response["statusCode"], *status, "{file}: {response}");
                let body: Value = serde_json::from_str(response["body"].as_str().unwrap_or("null"))
                    .with_context(|| format!("{file}: body is not JSON"))?;
                if *status >= 400 {
                    assert!(body["error"]["code"].is_string(), "{file}: {body}");
                }
            }
            Expect::Authorized(allowed) => assert_eq!(response["isAuthorized"], *allowed, "{file}: {response}"),
            Expect::Field(field) => assert!(response.get(*field).is_some(), "{file}: {response}"),
        }
    }
    Ok(())
}
