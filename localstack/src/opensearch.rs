//! A single-node OpenSearch 2.x cluster on loopback, from the integ-test distribution that
//! `scripts/setup` unpacks into `.cache/opensearch-<version>/` (the bare server: no security plugin,
//! and of the modules only `transport-netty4`, so no painless, reindex or analysis-common; the
//! core's `standard` tokenizer and `lowercase` filter, which the audit index uses, are there).
//!
//! Each [`OpenSearch`] is its own node in a fresh temporary folder holding its config (copied from
//! the distribution, so the install folder is never written), data, logs and JVM temp files. HTTP
//! and transport listen on two free ports of 127.0.0.1. OpenSearch refuses to run as root, so as
//! root the node runs as `nobody` through `runuser`, the way [`crate::postgres`] runs PostgreSQL
//! as `postgres`; the node folder is then owned by `nobody`.
//!
//! Outages for tests come in two kinds, because a client sees them differently:
//! - [`OpenSearch::stop`] then [`OpenSearch::restart`]: the node is gone, so a connect is refused
//!   at once; the restart reuses the data folder and both ports, so the same URL works again and
//!   the indices are still there.
//! - [`OpenSearch::pause`] then [`OpenSearch::resume`] (SIGSTOP/SIGCONT of the JVM): the kernel
//!   still completes TCP handshakes on the listening socket, so a connect succeeds and the request
//!   hangs until the client's own timeout; after the resume the node answers the queued requests.
//!   This is the "node hangs" case, and only a client with a request timeout survives it.
//!
//! A watchdog ([`crate::process::cleanup_on_exit`]) kills the node and deletes its folder if this
//! process dies without dropping it.

use crate::process::{cleanup_on_exit, free_port, run_checked, workspace_root};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The OpenSearch version `scripts/setup` installs.
pub const VERSION: &str = "2.19.6";

/// The JVM heap of [`OpenSearch::start`]. Measured with `localstack/tests/opensearch.rs`: a node
/// with a 128 MiB heap starts and takes a 5,000-document bulk load (42 MiB of heap in use after
/// it); 256 MiB leaves room for larger bulk requests before the circuit breakers trip. Benchmarks
/// that load more pick their own with [`OpenSearch::start_with_heap_mib`].
pub const DEFAULT_HEAP_MIB: u32 = 256;

/// The unprivileged user the node runs as when this process is root.
const RUN_AS_WHEN_ROOT: &str = "nobody";

/// A cold start takes 10-20 s on two busy cores; this leaves room for a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped, see [`OpenSearch::stop`]) node, killed and deleted on drop.
#[derive(Debug)]
pub struct OpenSearch {
    http_port: u16,
    transport_port: u16,
    heap_mib: u32,
    /// The node folder: `config/`, `data/`, `logs/`, `tmp/` and `console.log`.
    dir: PathBuf,
    home: PathBuf,
    java_home: PathBuf,
    run_as: Option<&'static str>,
    /// `runuser` (as root) or the start script that execs the JVM; `None` while stopped.
    child: Option<Child>,
}

/// Where `scripts/setup` unpacks the distribution.
pub fn install_dir() -> PathBuf {
    workspace_root().join(".cache").join(format!("opensearch-{VERSION}"))
}

/// Whether the distribution is unpacked, so a caller can skip OpenSearch work when it is not.
pub fn is_installed() -> bool {
    install_dir().join("bin/opensearch").is_file()
}

impl OpenSearch {
    /// Starts a fresh node with [`DEFAULT_HEAP_MIB`] and waits until the cluster is at least yellow.
    pub fn start() -> Result<OpenSearch> {
        Self::start_with_heap_mib(DEFAULT_HEAP_MIB)
    }

    /// Starts a fresh node with a heap of `heap_mib` MiB (minimum and maximum, pre-touched, so
    /// the resident size is known up front) and waits until the cluster is at least yellow.
    pub fn start_with_heap_mib(heap_mib: u32) -> Result<OpenSearch> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let home = install_dir();
        if !is_installed() {
            bail!(
                "OpenSearch {VERSION} is not installed at {}: run scripts/setup first (it downloads \
                 the checksum-pinned distribution from Maven Central)",
                home.display()
            );
        }
        let java_home = find_java_home()?;
        let run_as = is_root().then_some(RUN_AS_WHEN_ROOT);

        let dir = std::env::temp_dir().join(format!(
            "opensearch-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // The start script makes the config path absolute with `pwd`; canonical paths here make
        // the JVM's `-Dopensearch.path.conf=` argument match ours exactly (see `java_pid`).
        let dir = std::fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?;

        let http_port = free_port()?;
        let mut transport_port = free_port()?;
        while transport_port == http_port {
            transport_port = free_port()?;
        }
        // Built before anything can fail, so a node that never becomes ready is cleaned up on drop.
        let mut node = OpenSearch { http_port, transport_port, heap_mib, dir, home, java_home, run_as, child: None };
        node.write_config()?;
        node.spawn()?;
        Ok(node)
    }

    /// The process-wide node that tests share, started on first use. Tests keep apart by using
    /// their own index names; a test that stops or pauses a node starts its own.
    pub fn shared() -> Result<&'static OpenSearch> {
        static SHARED: OnceLock<std::result::Result<OpenSearch, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| OpenSearch::start().map_err(|err| format!("{err:#}")))
            .as_ref()
            .map_err(|err| anyhow::anyhow!("the shared OpenSearch node did not start: {err}"))
    }

    /// The HTTP endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn transport_port(&self) -> u16 {
        self.transport_port
    }

    /// The node folder (config, data, logs); deleted on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of the node's JVM.
    pub fn pid(&self) -> Result<u32> {
        self.java_pid().context("the OpenSearch JVM is not running")
    }

    /// The JVM's resident memory in KiB (`VmRSS`, what `ps -o rss` shows).
    pub fn resident_kib(&self) -> Result<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS line in /proc/<pid>/status")
    }

    /// Freezes the JVM (SIGSTOP): connects still succeed, requests hang until [`Self::resume`].
    pub fn pause(&self) -> Result<()> {
        signal(self.pid()?, "STOP")
    }

    /// Lets a paused JVM run again (SIGCONT); it then answers the requests that queued up.
    pub fn resume(&self) -> Result<()> {
        signal(self.pid()?, "CONT")?;
        self.continue_runuser();
        Ok(())
    }

    /// `runuser` stops itself when its child stops and waits for a SIGCONT of its own; left
    /// stopped it would never reap the JVM, and waiting for it would hang.
    fn continue_runuser(&self) {
        if let (Some(_), Some(child)) = (self.run_as, self.child.as_ref()) {
            let _ = signal(child.id(), "CONT");
        }
    }

    /// Shuts the node down gracefully (SIGTERM, SIGKILL after 30 s), keeping its data folder and
    /// ports for [`Self::restart`]. Connects are refused while it is stopped.
    pub fn stop(&mut self) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        if let Some(pid) = self.java_pid() {
            // A paused JVM would keep the SIGTERM pending forever.
            signal(pid, "CONT")?;
            signal(pid, "TERM")?;
        }
        self.continue_runuser();
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                if let Some(pid) = self.java_pid() {
                    signal(pid, "KILL")?;
                }
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait().context("waiting for OpenSearch to exit")?;
        Ok(())
    }

    /// Starts a stopped node again on the same data folder and ports, and waits until it is
    /// yellow; the indices written before the stop are there again.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("OpenSearch on {} is running; stop it before restarting", self.url());
        }
        self.spawn()
    }

    /// The node's console output (its log), for error messages.
    pub fn log(&self) -> String {
        let path = self.dir.join("console.log");
        std::fs::read_to_string(&path).unwrap_or_else(|err| format!("({} unreadable: {err})", path.display()))
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// Copies the distribution's config into the node folder, with this node's settings and the
    /// JVM's log and dump files pointed into the node folder (the distribution writes them
    /// relative to the install folder, which `nobody` cannot write).
    fn write_config(&self) -> Result<()> {
        let conf = self.conf_dir();
        copy_dir(&self.home.join("config"), &conf)?;
        for sub in ["data", "logs", "tmp"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        let dir = self.dir.display();
        let settings = format!(
            "# Written by localstack::opensearch for one throwaway node.\n\
             cluster.name: audit-local\n\
             node.name: local\n\
             network.host: 127.0.0.1\n\
             http.port: {http}\n\
             transport.port: {transport}\n\
             discovery.type: single-node\n\
             path.data: {dir}/data\n\
             path.logs: {dir}/logs\n\
             # Test machines run with full disks more often than not; never go read-only for it.\n\
             cluster.routing.allocation.disk.threshold_enabled: false\n",
            http = self.http_port,
            transport = self.transport_port,
        );
        std::fs::write(conf.join("opensearch.yml"), settings)?;

        let jvm_options_path = conf.join("jvm.options");
        let jvm_options = std::fs::read_to_string(&jvm_options_path)
            .with_context(|| format!("reading {}", jvm_options_path.display()))?;
        let jvm_options: String = jvm_options
            .lines()
            // The heap is set through OPENSEARCH_JAVA_OPTS.
            .filter(|line| !line.starts_with("-Xms") && !line.starts_with("-Xmx"))
            .map(|line| {
                line.replace("file=logs/", &format!("file={dir}/logs/"))
                    .replace("-XX:ErrorFile=logs/", &format!("-XX:ErrorFile={dir}/logs/"))
                    .replace("-XX:HeapDumpPath=data", &format!("-XX:HeapDumpPath={dir}/logs"))
                    + "\n"
            })
            .collect();
        std::fs::write(&jvm_options_path, jvm_options)?;

        if let Some(user) = self.run_as {
            run_checked(Command::new("chown").arg("-R").arg(user).arg(&self.dir), "chown")?;
        }
        Ok(())
    }

    /// Starts the node's process, arms its watchdog and waits until it is yellow.
    fn spawn(&mut self) -> Result<()> {
        let pid_file = self.dir.join("opensearch.pid");
        let _ = std::fs::remove_file(&pid_file);
        let log_path = self.dir.join("console.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let script = self.home.join("bin/opensearch");
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&script);
                c
            }
            None => Command::new(&script),
        };
        cmd.arg("-p")
            .arg(&pid_file)
            .env("OPENSEARCH_JAVA_HOME", &self.java_home)
            .env("OPENSEARCH_PATH_CONF", self.conf_dir())
            // Set, so the start script does not launch a JVM just to pick a temp folder.
            .env("OPENSEARCH_TMPDIR", self.dir.join("tmp"))
            .env("OPENSEARCH_JAVA_OPTS", format!("-Xms{0}m -Xmx{0}m", self.heap_mib))
            .env_remove("JAVA_TOOL_OPTIONS")
            .env_remove("JAVA_OPTS")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log);
        let child = cmd.spawn().with_context(|| format!("starting {}", script.display()))?;
        let child_pid = child.id();
        self.child = Some(child);

        // The JVM is found by its config path, which is unique to this node; the child (runuser or
        // the start script) is signalled too, in case this process dies before the JVM exists.
        // Its pid is checked against this node's folder first, so a reused pid is never hit.
        let dir = self.dir.display();
        cleanup_on_exit(&format!(
            "kill_node() {{ for f in /proc/[0-9]*/cmdline; do \
               tr '\\0' '\\n' < \"$f\" 2>/dev/null | grep -qxF -- \"-Dopensearch.path.conf=$1\" \
               && p=${{f#/proc/}} && kill -KILL \"${{p%/cmdline}}\" 2>/dev/null; done; }}; \
             kill_node '{dir}/config'; \
             grep -qaF '{dir}/' /proc/{child_pid}/cmdline 2>/dev/null && kill -TERM {child_pid} && kill -CONT {child_pid}; \
             sleep 2; kill_node '{dir}/config'; rm -rf '{dir}'"
        ))?;
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!("OpenSearch exited ({status}) during start-up:\n{}", tail(&self.log(), 80));
                }
            }
            // Answers 200 once the cluster is yellow, 408 when it is not within the timeout.
            if let Ok((200, _)) = http_get(self.http_port, "/_cluster/health?wait_for_status=yellow&timeout=2s") {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "OpenSearch on {} was not yellow within {START_TIMEOUT:?}:\n{}",
                    self.url(),
                    tail(&self.log(), 80)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The JVM's pid: the process whose `-Dopensearch.path.conf=` is this node's config folder.
    /// Found in /proc rather than trusted from the pid file, which a killed JVM leaves behind.
    fn java_pid(&self) -> Option<u32> {
        let wanted = format!("-Dopensearch.path.conf={}", self.conf_dir().display());
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            cmdline.split(|b| *b == 0).any(|arg| arg == wanted.as_bytes()).then_some(pid)
        })
    }
}

impl Drop for OpenSearch {
    fn drop(&mut self) {
        // A throwaway node needs no graceful shutdown; its folder goes with it.
        if let Some(pid) = self.java_pid() {
            let _ = signal(pid, "KILL");
        }
        self.continue_runuser();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `$OPENSEARCH_JAVA_HOME`, else `$JAVA_HOME`, else the JDK that `java` on the PATH belongs to
/// (through its symlinks, e.g. `/usr/lib/jvm/java-17-openjdk-amd64`).
fn find_java_home() -> Result<PathBuf> {
    for var in ["OPENSEARCH_JAVA_HOME", "JAVA_HOME"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let java = std::env::split_paths(&path).map(|dir| dir.join("java")).find(|candidate| candidate.is_file()).context(
        "no `java` on the PATH and neither OPENSEARCH_JAVA_HOME nor JAVA_HOME set: OpenSearch needs a JDK 17+",
    )?;
    let real = std::fs::canonicalize(&java).with_context(|| format!("resolving {}", java.display()))?;
    real.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .with_context(|| format!("{} is not inside a JDK's bin/", real.display()))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn signal(pid: u32, name: &str) -> Result<()> {
    run_checked(Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()), "kill")
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {} to {}", entry.path().display(), target.display()))?;
        }
    }
    Ok(())
}

/// A bare HTTP/1.1 GET for the readiness check, so starting a node needs no async runtime.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))?;
    Ok((status, response))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
