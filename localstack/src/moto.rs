//! The local AWS endpoint: moto's server mode (pinned in `localstack/requirements.txt`), which
//! serves KMS, SQS, S3 and DynamoDB on one port.
//!
//! Each [`Moto`] is its own server with its own in-memory state on a fresh port. Tests share one
//! per process through [`Moto::shared`] and keep apart by creating their own resources (a key, a
//! queue) rather than by restarting the server. Clients get the endpoint, a region and static
//! dummy credentials explicitly, so the SDK never goes looking for credentials on its own (no
//! profile files, no instance metadata service).

use crate::process::{cleanup_on_exit, free_port, wait_for_port, workspace_root};
use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";
/// moto accepts any credentials; these only have to be well-formed.
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server, stopped on drop (and by a watchdog if this process dies first).
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Moto {
    /// Starts `moto_server` from the workspace venv on a free port and waits until it answers.
    pub fn start() -> Result<Moto> {
        let server = workspace_root().join(".venv/bin/moto_server");
        if !server.exists() {
            bail!(
                "{} is missing: run scripts/setup first (it creates the venv from \
                 localstack/requirements.txt)",
                server.display()
            );
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("moto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log_path = dir.join("moto.log");
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let pid = child.id();
        // The watchdog checks that the pid still belongs to moto, so a pid reused after a normal
        // drop is never killed.
        cleanup_on_exit(&format!(
            "grep -qa moto_server /proc/{pid}/cmdline 2>/dev/null && kill {pid}; rm -rf '{}'",
            dir.display()
        ))?;
        // Built before waiting so that a server that never becomes ready is killed on drop.
        let mut moto = Moto { child, port, dir };
        moto.wait_until_ready(&log_path)?;
        Ok(moto)
    }

    /// The process-wide server that tests share, started on first use.
    pub fn shared() -> Result<&'static Moto> {
        static SHARED: OnceLock<std::result::Result<Moto, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Moto::start().map_err(|err| format!("{err:#}")))
            .as_ref()
            .map_err(|err| anyhow::anyhow!("the shared moto server did not start: {err}"))
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this server: its endpoint, [`REGION`] and static dummy credentials.
    /// Built directly rather than loaded, so no credential chain runs and no metadata endpoint is
    /// ever asked.
    pub fn sdk_config(&self) -> SdkConfig {
        let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "localstack-moto");
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.url())
            .region(Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build()
    }

    /// The environment a child process (a function run locally, a CLI) needs to reach this server
    /// through `shared::aws::load_config`.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto_server exited ({status}) during start-up:\n{}", read_log(log_path));
            }
            if wait_for_port(self.port, Duration::from_millis(250), "moto_server").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto_server did not accept connections on port {} within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    read_log(log_path)
                );
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The server may already be gone; there is nothing useful to do about a failure here.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| format!("({} unreadable: {err})", path.display()))
}
