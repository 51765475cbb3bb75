//! `auditlog export`: requests an export (`POST /v1/exports`), waits for it with a progress
//! display, downloads its three objects from their presigned URLs into a folder, and verifies
//! them offline exactly as `verify-export` does.

use crate::client::Client;
use crate::keys::{self, KeySpec};
use crate::query::Filters;
use crate::verify_export::{self, BundleFiles};
use crate::Outcome;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

/// What `auditlog export` was asked for.
#[derive(Debug)]
pub struct ExportArgs<'a> {
    pub filters: &'a Filters,
    pub format: &'a str,
    pub gzip: bool,
    pub out: &'a Path,
    pub keys: Vec<KeySpec>,
    pub key_name: Option<&'a str>,
    pub poll: Duration,
    pub json_output: bool,
}

pub async fn run(client: &Client, args: ExportArgs<'_>) -> Result<Outcome> {
    let filter: Map<String, Value> = args.filters.params().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let body = json!({ "format": args.format, "gzip": args.gzip, "filter": filter });
    let key = uuid::Uuid::new_v4().to_string();
    let job = client.send(Method::POST, "/v1/exports", &[], Some(&body), Some(&key)).await?;
    let id = job.get("id").and_then(Value::as_str).context("POST /v1/exports: the response has no id")?.to_owned();
    if !args.json_output {
        eprintln!("export {id} requested");
    }
    let job = wait(client, &id, args.poll, args.json_output).await?;
    let download =
        job.get("download").filter(|d| !d.is_null()).context("the export is done but has no download URLs")?;

    std::fs::create_dir_all(args.out).with_context(|| format!("creating {}", args.out.display()))?;
    // The manifest names the data and proof objects; they are saved under those names.
    let manifest = fetch(client, download, "manifest").await?;
    let parsed: Value = serde_json::from_slice(&manifest).context("the downloaded manifest is not JSON")?;
    let file_name = |member: &str, fallback: &str| -> String {
        parsed
            .pointer(&format!("/{member}/key"))
            .and_then(Value::as_str)
            .and_then(|k| k.rsplit('/').next())
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or(fallback)
            .to_owned()
    };
    let data_path = args.out.join(file_name("data", "data"));
    let proof_path = args.out.join(file_name("proof", "proof.jsonl"));
    let manifest_path = args.out.join(shared::chain::export::MANIFEST_FILE);
    std::fs::write(&data_path, fetch(client, download, "data").await?)
        .with_context(|| format!("writing {}", data_path.display()))?;
    std::fs::write(&proof_path, fetch(client, download, "proof").await?)
        .with_context(|| format!("writing {}", proof_path.display()))?;
    std::fs::write(&manifest_path, &manifest).with_context(|| format!("writing {}", manifest_path.display()))?;
    if !args.json_output {
        eprintln!("downloaded {}, {} and {}", data_path.display(), proof_path.display(), manifest_path.display());
    }

    let keys = if args.keys.is_empty() {
        let fetched = client.get("/v1/checkpoints/public-key", &[]).await?;
        eprintln!(
            "warning: no --public-key given, so the checkpoint key comes from the service itself; this checks the \
             bundle's integrity but not that the service is honest. Compare this key with one obtained out of band:"
        );
        if let Some(verifier) = fetched.get("verifier_key").and_then(Value::as_str) {
            eprintln!("  {verifier}");
        }
        keys::parse_key_text(&fetched.to_string())?
    } else {
        args.keys
    };
    let trusted = verify_export::trusted_keys(&keys, args.key_name, &manifest);
    let files = BundleFiles { data: Some(data_path), proof: Some(proof_path) };
    verify_export::run(&files, &manifest, &trusted, args.json_output)
}

/// Polls `GET /v1/exports/{id}` until done (returned) or failed (an error), with a spinner, or a
/// bar once the row count is known, on a terminal.
async fn wait(client: &Client, id: &str, poll: Duration, quiet: bool) -> Result<Value> {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} rows [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    };
    let path = format!("/v1/exports/{id}");
    loop {
        let job = client.get(&path, &[]).await?;
        let status = job.get("status").and_then(Value::as_str).unwrap_or("").to_owned();
        let rows = job.get("rows").and_then(Value::as_u64).unwrap_or(0);
        bar.set_message(status.clone());
        bar.set_position(rows);
        match status.as_str() {
            "done" => {
                bar.finish_and_clear();
                if !quiet {
                    eprintln!("export {id} done: {rows} rows");
                }
                return Ok(job);
            }
            "failed" => {
                bar.finish_and_clear();
                let error = job.get("error").and_then(Value::as_str).unwrap_or("no reason given");
                bail!("export {id} failed: {error}");
            }
            "queued" | "running" => {}
            other => {
                bar.finish_and_clear();
                return Err(anyhow!("export {id}: unexpected status {other:?}"));
            }
        }
        tokio::time::sleep(poll).await;
    }
}

async fn fetch(client: &Client, download: &Value, object: &str) -> Result<Vec<u8>> {
    let url = download
        .pointer(&format!("/{object}/url"))
        .and_then(Value::as_str)
        .with_context(|| format!("the export has no {object} URL"))?;
    client.download(url).await.with_context(|| format!("downloading the {object}"))
}
