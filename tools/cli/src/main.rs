//! `auditlog`: the command-line tool of the audit log service.
//!
//! Offline: `verify-export` checks a downloaded export bundle and `verify-proof` an inclusion or
//! consistency proof, both against checkpoint keys obtained out of band, with the verifiers of
//! `shared::chain`. Online: `send`, `query`, `tail` and `export` use the HTTP API.
//!
//! Exit codes: 0 success (valid), 1 invalid (a fault in what was checked, or a failed request),
//! 2 usage error (bad arguments, a missing or unreadable file).
//!
//! Every JSON file read (events, keys, proofs, entries, checkpoints, export bundles) must be
//! strict JSON (docs/FORMATS.md, "Strict JSON (I-JSON)"): a duplicate member name or a number no
//! double holds exactly would be read differently by another tool, so it is refused, not read.

mod client;
mod export;
mod keys;
mod query;
mod send;
mod verify_export;
mod verify_proof;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use shared::chain::strict_json::{self, StrictJsonKind};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A failure the caller fixes by changing the command line: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The verdict of a verifying command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    Invalid,
}

#[derive(Debug, Parser)]
#[command(
    name = "auditlog",
    version,
    about = "Verify audit log exports and proofs offline; send, query and tail events."
)]
#[command(after_help = "Exit codes: 0 valid / success, 1 invalid / request failed, 2 usage error.\n\
Run `auditlog <command> --help` for examples.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The trusted checkpoint keys.
#[derive(Debug, Args)]
struct KeyArgs {
    /// A trusted checkpoint key: a verifier key string (<name>+<key id>+<base64>), or a file
    /// holding a PEM public key, base64 DER SPKI, or the JSON of GET /v1/checkpoints/public-key
    /// (its current and retired keys are all trusted). Repeatable.
    #[arg(long = "public-key", value_name = "KEY")]
    public_key: Vec<String>,
    /// The signed-note key name of PEM or base64 keys (default: the name on the note's signature
    /// line with the key's ID).
    #[arg(long, value_name = "NAME")]
    key_name: Option<String>,
}

/// Where the API is. The API key is never printed.
#[derive(Args)]
struct ApiArgs {
    /// The API's base URL, e.g. https://audit.example.com
    #[arg(long, env = "AUDIT_LOG_URL", value_name = "URL")]
    url: String,
    /// The API key (alk_...). Prefer the environment variable, which stays out of shell history.
    #[arg(long, env = "AUDIT_LOG_API_KEY", hide_env_values = true, value_name = "KEY")]
    api_key: Option<String>,
    /// How many times to retry a request after a network error, 429 or 503.
    #[arg(long, default_value_t = 5, value_name = "N")]
    retries: u32,
}

impl std::fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiArgs")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("retries", &self.retries)
            .finish()
    }
}

impl ApiArgs {
    fn client(&self) -> Result<client::Client> {
        client::Client::new(&self.url, self.api_key.clone(), self.retries)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a downloaded export bundle offline (manifest, data and proof).
    #[command(after_help = "Examples:\n  \
auditlog verify-export ./export-0190f6e2 --public-key key.json\n  \
auditlog verify-export ./export/manifest.json --data ./data.jsonl.gz --public-key key.pem\n  \
auditlog verify-export ./export --public-key 'audit.example.com/log+1a2b3c4d+AjBZMBMG...' --json\n\n\
key.json is the saved output of GET /v1/checkpoints/public-key, obtained out of band.\n\
The data and proof files are found beside the manifest by the last part of their `key`.\n\
On a fault it prints e.g. `export INVALID: content_digest at row 3 (seq 41): ...` and exits 1.")]
    VerifyExport {
        /// The export folder, or its manifest.json.
        #[arg(value_name = "DIR or MANIFEST")]
        path: PathBuf,
        /// The data file (default: beside the manifest).
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// The proof file (default: beside the manifest).
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
        #[command(flatten)]
        keys: KeyArgs,
        /// Print one JSON object: {"valid":true,...} or {"valid":false,"code":..,"row":..,"seq":..,"message":..}.
        #[arg(long)]
        json: bool,
    },
    /// Verify an inclusion or consistency proof offline against a signed checkpoint.
    #[command(after_help = "Examples:\n  \
auditlog verify-proof proof.json --public-key key.json\n  \
auditlog verify-proof proof.json --entry event.json --public-key key.json\n  \
auditlog verify-proof proof.json --checkpoint checkpoint.json --public-key key.pem\n  \
auditlog verify-proof consistency.json --checkpoint old.json --checkpoint new.json --public-key key.json\n\n\
proof.json is GET /v1/events/{id}/proof (its embedded checkpoint is used when present), event.json\n\
GET /v1/events/{id} (the leaf is then recomputed from the event and salt), consistency.json\n\
GET /v1/proofs/consistency, checkpoint.json GET /v1/checkpoints/latest or /v1/checkpoints/{size}\n\
(or the note text).")]
    VerifyProof {
        /// The proof response (JSON).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The entry (GET /v1/events/{id}), to recompute the leaf hash from the event and salt.
        #[arg(long, value_name = "FILE")]
        entry: Option<PathBuf>,
        /// A checkpoint: the note text or the JSON of GET /v1/checkpoints/... Repeatable (for a
        /// consistency proof, one per tree size).
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        #[command(flatten)]
        keys: KeyArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Append events (POST /v1/events/batch, up to 1000 per request).
    #[command(after_help = "Examples:\n  \
auditlog send '{\"action\":\"user.login\",\"actor\":{\"id\":\"ada\"}}'\n  \
echo '{\"action\":\"user.login\",\"actor\":{\"id\":\"ada\"}}' | auditlog send -\n  \
auditlog send --file events.jsonl --idempotency-key import-2026-11-24\n  \
auditlog send --file event.json --signing-key publisher.key --key-id billing-1\n\n\
Each request carries an Idempotency-Key (generated, or --idempotency-key; with several batches\n\
batch n uses <key>-n), and is retried with the same key after a network error, 429 or 503.\n\
The signing key is a 32-byte Ed25519 seed as hex or base64.")]
    Send {
        /// The event as JSON, or - to read it (or JSON Lines) from stdin.
        #[arg(value_name = "EVENT", conflicts_with = "file", required_unless_present = "file")]
        event: Option<String>,
        /// A file with one event, a JSON array of events, or JSON Lines.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The Idempotency-Key of the request.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Sign each event with this Ed25519 seed (hex or base64 file).
        #[arg(long, value_name = "FILE", requires = "key_id")]
        signing_key: Option<PathBuf>,
        /// The registered id of the signing key.
        #[arg(long, value_name = "ID", requires = "signing_key")]
        key_id: Option<String>,
        /// Print each appended event (with its receipt) as JSON Lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List events matching filters, following pages (GET /v1/events).
    #[command(after_help = "Examples:\n  \
auditlog query --action 'user.*' --outcome failure --limit 500\n  \
auditlog query --actor-id ada --from 2026-11-01T00:00:00Z --order asc --json\n  \
auditlog query -q '\"password reset\" -test'")]
    Query {
        #[command(flatten)]
        filters: query::Filters,
        /// asc (oldest first) or desc (newest first).
        #[arg(long, default_value = "desc", value_parser = ["asc", "desc"])]
        order: String,
        /// The total number of events wanted (pages are followed until then).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Print JSON Lines (one entry per line) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print new events as they are appended (polls GET /v1/events).
    #[command(after_help = "Examples:\n  \
auditlog tail\n  \
auditlog tail --action 'payment.*' --interval 5 --json\n  \
auditlog tail --from-start --severity critical")]
    Tail {
        #[command(flatten)]
        filters: query::Filters,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Start from the first event instead of the newest.
        #[arg(long)]
        from_start: bool,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Export events, download the bundle and verify it offline.
    #[command(after_help = "Examples:\n  \
auditlog export --action 'user.*' --format jsonl --gzip --out ./export --public-key key.json\n  \
auditlog export --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --format csv --out ./nov\n\n\
Without --public-key the key is fetched from GET /v1/checkpoints/public-key, i.e. from the\n\
service being checked: compare it with a key obtained out of band.")]
    Export {
        #[command(flatten)]
        filters: query::Filters,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
        /// Gzip the data object.
        #[arg(long)]
        gzip: bool,
        /// The folder to download into (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        keys: KeyArgs,
        /// Seconds between status polls.
        #[arg(long, default_value_t = 2.0)]
        poll: f64,
        /// No progress display; print the verification result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Valid) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|cause| cause.is::<UsageError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| UsageError(format!("{flag} must be a non-negative number of seconds")).into())
}

fn read_text(path: &std::path::Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read the {what} {}: {e}", path.display())).into())
}

/// Parses JSON text that must be strict JSON. The error completes "the file is ...": "not
/// valid JSON: ..." or "not strict JSON: ...", naming the place.
pub fn parse_strict_json(text: &str) -> std::result::Result<serde_json::Value, String> {
    if let Err(e) = strict_json::check(text.as_bytes()) {
        return Err(match e.kind {
            StrictJsonKind::InvalidJson => e.message,
            _ => format!("not strict JSON: {}", e.message),
        });
    }
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

/// Reads a JSON input of `verify-proof`: a file that is JSON but not strict JSON is a fault of
/// that file (`code`, exit 1), as in an export bundle; one that is not JSON is a usage error.
fn read_proof_input(
    path: &std::path::Path,
    what: &str,
    code: &'static str,
) -> Result<std::result::Result<serde_json::Value, verify_proof::ProofFault>> {
    let text = read_text(path, what)?;
    match strict_json::check(text.as_bytes()) {
        Err(e) if e.kind != StrictJsonKind::InvalidJson => Ok(Err(verify_proof::ProofFault {
            code,
            message: format!("the {what} {} is not strict JSON: {e}", path.display()),
        })),
        _ => parse_strict_json(&text)
            .map(Ok)
            .map_err(|e| UsageError(format!("the {what} {} is {e}", path.display())).into()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

fn require_keys(keys: &KeyArgs) -> Result<Vec<keys::KeySpec>> {
    if keys.public_key.is_empty() {
        return Err(UsageError(
            "at least one --public-key is required (the checkpoint key, obtained out of band)".into(),
        )
        .into());
    }
    keys::load(&keys.public_key)
}

fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::VerifyExport { path, data, proof, keys, json } => {
            let specs = require_keys(&keys)?;
            let (files, manifest) = verify_export::locate(&path, data, proof)?;
            let trusted = verify_export::trusted_keys(&specs, keys.key_name.as_deref(), &manifest);
            verify_export::run(&files, &manifest, &trusted, json)
        }
        Command::VerifyProof { file, entry, checkpoint, keys, json } => {
            let specs = require_keys(&keys)?;
            let proof = read_proof_input(&file, "proof", "proof_malformed")?;
            let entry = entry.map(|p| read_proof_input(&p, "entry", "entry_malformed")).transpose()?;
            let (proof, entry) = match (proof, entry.transpose()) {
                (Ok(proof), Ok(entry)) => (proof, entry),
                (Err(fault), _) | (_, Err(fault)) => return Ok(verify_proof::report(&Err(fault), json)),
            };
            let notes = checkpoint
                .iter()
                .map(|p| {
                    verify_proof::checkpoint_note(&read_text(p, "checkpoint")?)
                        .map_err(|e| UsageError(format!("{}: {e:#}", p.display())).into())
                })
                .collect::<Result<Vec<_>>>()?;
            let input = verify_proof::ProofInput {
                proof: &proof,
                entry: entry.as_ref(),
                checkpoints: &notes,
                keys: &specs,
                key_name: keys.key_name.as_deref(),
            };
            let result = verify_proof::verify(&input)?;
            Ok(verify_proof::report(&result, json))
        }
        Command::Send { event, file, idempotency_key, signing_key, key_id, json, api } => {
            let (text, source) = match (&event, &file) {
                (_, Some(path)) => (read_text(path, "event file")?, path.display().to_string()),
                (Some(arg), None) if arg == "-" => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|e| UsageError(format!("reading stdin: {e}")))?;
                    (text, "stdin".to_owned())
                }
                (Some(arg), None) => (arg.clone(), "the EVENT argument".to_owned()),
                (None, None) => return Err(UsageError("give an event, - for stdin, or --file".into()).into()),
            };
            let mut events = send::parse_events(&text, &source)?;
            if let (Some(key_file), Some(key_id)) = (&signing_key, &key_id) {
                let key = send::read_signing_key(key_file)?;
                events = events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| send::sign_event(e, &key, key_id, i))
                    .collect::<Result<_>>()?;
            }
            let client = api.client()?;
            runtime()?.block_on(send::run(&client, &events, idempotency_key.as_deref(), json))?;
            Ok(Outcome::Valid)
        }
        Command::Query { filters, order, limit, json, api } => {
            let client = api.client()?;
            runtime()?.block_on(query::run_query(&client, &filters, &order, limit, json))?;
            Ok(Outcome::Valid)
        }
        Command::Tail { filters, interval, from_start, json, api } => {
            let interval = seconds(interval, "--interval")?;
            let client = api.client()?;
            runtime()?.block_on(query::run_tail(&client, &filters, interval, from_start, json))?;
            Ok(Outcome::Valid)
        }
        Command::Export { filters, format, gzip, out, keys, poll, json, api } => {
            let specs = keys::load(&keys.public_key)?;
            let client = api.client()?;
            let args = export::ExportArgs {
                filters: &filters,
                format: &format,
                gzip,
                out: &out,
                keys: specs,
                key_name: keys.key_name.as_deref(),
                poll: seconds(poll, "--poll")?,
                json_output: json,
            };
            runtime()?.block_on(export::run(&client, args))
        }
    }
}
