//! A PostgreSQL cluster from the machine's own binaries (Debian's `postgresql` package).
//!
//! `initdb` refuses to run as root, so as root the server runs as the `postgres` user through
//! `runuser`. The cluster listens on 127.0.0.1 only, with trust authentication and its socket
//! inside the data directory. A throwaway cluster (tests, benchmarks) lives in a temporary folder
//! with `fsync=off` and is stopped and deleted by a watchdog when the starting process exits; a
//! persistent cluster (the local run) keeps its data folder between runs.

use crate::process::{cleanup_on_exit, free_port, run_checked, wait_for_port};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The cluster's superuser.
pub const SUPERUSER: &str = "postgres";

/// A running cluster.
#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    pub data_dir: PathBuf,
    bin_dir: PathBuf,
    as_postgres_user: bool,
}

/// Finds the server binaries: `$PG_BIN`, else the newest `/usr/lib/postgresql/<v>/bin`.
fn find_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server found under /usr/lib/postgresql: run scripts/setup (it installs Debian's postgresql)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

impl Postgres {
    /// A fresh cluster in a temporary folder, removed when this process exits.
    pub fn start_throwaway() -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "audit-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let pg = Self::start(&dir, true)?;
        let stop = pg.stop_command();
        cleanup_on_exit(&format!("{stop}; rm -rf '{}'", dir.display()))?;
        Ok(pg)
    }

    /// A cluster whose data survives in `dir`; created on first use. It is stopped (not deleted)
    /// when this process exits.
    pub fn start_persistent(dir: &Path) -> Result<Self> {
        let pg = Self::start(dir, false)?;
        cleanup_on_exit(&pg.stop_command())?;
        Ok(pg)
    }

    fn start(dir: &Path, throwaway: bool) -> Result<Self> {
        let bin_dir = find_bin_dir()?;
        let as_postgres_user = is_root();
        let pg = Postgres { port: free_port()?, data_dir: dir.to_path_buf(), bin_dir, as_postgres_user };
        if !dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            pg.chown_to_postgres(dir)?;
            run_checked(
                pg.command("initdb").arg("-D").arg(dir).args([
                    "-A",
                    "trust",
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]),
                "initdb",
            )?;
        }
        let mut opts = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' -c max_connections=200 -c shared_buffers=256MB",
            pg.port,
            dir.display()
        );
        if throwaway {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        run_checked(
            pg.command("pg_ctl")
                .arg("-D")
                .arg(dir)
                .args(["-o", &opts, "-l"])
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        )?;
        wait_for_port(pg.port, Duration::from_secs(30), "PostgreSQL")?;
        Ok(pg)
    }

    fn chown_to_postgres(&self, dir: &Path) -> Result<()> {
        if self.as_postgres_user {
            run_checked(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir), "chown")?;
        }
        Ok(())
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin_dir.join(tool);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn stop_command(&self) -> String {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let prefix = if self.as_postgres_user { "runuser -u postgres -- " } else { "" };
        format!("{prefix}'{}' -D '{}' -m fast -w stop", pg_ctl.display(), self.data_dir.display())
    }

    /// Turns TLS on with this server certificate and key (PEM), for tests of TLS connections.
    /// Plaintext connections stay allowed; clients decide with `sslmode`.
    pub async fn enable_tls(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        let cert = self.data_dir.join("server.crt");
        let key = self.data_dir.join("server.key");
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        if self.as_postgres_user {
            run_checked(Command::new("chown").arg("postgres:postgres").arg(&cert).arg(&key), "chown")?;
        }
        let admin = self.connect_superuser("postgres").await?;
        admin.batch_execute("ALTER SYSTEM SET ssl = on").await?;
        admin.batch_execute("SELECT pg_reload_conf()").await?;
        // The reload is asynchronous; wait until the server reports TLS on.
        for _ in 0..50 {
            let on: String = admin.query_one("SHOW ssl", &[]).await?.get(0);
            if on == "on" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "PostgreSQL did not turn TLS on:\n{}",
            std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
        )
    }

    /// Stops the server now (the watchdog would otherwise do it at exit).
    pub fn stop(&self) -> Result<()> {
        run_checked(Command::new("sh").arg("-c").arg(self.stop_command()), "pg_ctl stop")
    }

    /// A `tokio-postgres` connection string for `user` on database `db`.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname={db}", self.port)
    }

    /// Connects as the superuser to `db`, driving the connection on the current runtime.
    pub async fn connect_superuser(&self, db: &str) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url(SUPERUSER, db), tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to database {db} as {SUPERUSER}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "superuser connection closed");
            }
        });
        Ok(client)
    }
}
