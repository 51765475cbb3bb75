//! Child processes that never outlive the process that started them.
//!
//! Tests, benchmarks and the local run start servers (PostgreSQL, the AWS endpoint, OpenSearch).
//! Rust runs no destructors for statics at exit and a test binary can be killed at any point, so
//! each server is paired with a small shell watchdog: it polls the parent's pid and, once the
//! parent is gone, runs the server's stop command. No unsafe code (`prctl`) is needed and the
//! watchdog also covers a SIGKILLed parent.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts a detached watchdog that runs `on_parent_exit` (a shell command) once this process has
/// exited. The watchdog ignores SIGINT/SIGTERM sent to the process group, so Ctrl-C on a test run
/// still leads to cleanup.
pub fn cleanup_on_exit(on_parent_exit: &str) -> Result<()> {
    let script = format!(
        "trap '' INT TERM HUP; while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {on_parent_exit}",
        pid = std::process::id(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning the cleanup watchdog")?;
    Ok(())
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not accept connections on 127.0.0.1:{port} within {timeout:?}")
}

/// Runs a command to completion and fails with its output when it exits non-zero.
pub fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The workspace root (the folder holding the workspace `Cargo.toml`).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("localstack lives one level below the workspace root")
        .to_path_buf()
}
