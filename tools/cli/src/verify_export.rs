//! `auditlog verify-export`: checks a downloaded export bundle offline with
//! `shared::chain::export::verify_export`, which reports the first fault in the order of
//! docs/FORMATS.md ("Verifying an export"), so this tool names a tampered bundle exactly as the
//! SDKs do.

use crate::keys::{self, KeySpec};
use crate::{Outcome, UsageError};
use anyhow::Result;
use serde_json::{json, Value};
use shared::chain::export::{verify_export, ExportFault, ExportSummary, TrustedKey, MANIFEST_FILE};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The data and proof files of a bundle on disk (the manifest is read up front).
#[derive(Debug, Clone)]
pub struct BundleFiles {
    pub data: Option<PathBuf>,
    pub proof: Option<PathBuf>,
}

/// Finds the manifest (`DIR/manifest.json` or the file given) and, unless given, the data and
/// proof files beside it, named by the last part of the manifest's `data.key` and `proof.key`.
/// A manifest that does not parse leaves them unresolved; the verifier then reports
/// `manifest_invalid` before it reads either.
pub fn locate(path: &Path, data: Option<PathBuf>, proof: Option<PathBuf>) -> Result<(BundleFiles, Vec<u8>)> {
    let manifest = if path.is_dir() { path.join(MANIFEST_FILE) } else { path.to_path_buf() };
    if !manifest.is_file() {
        return Err(UsageError(format!("manifest not found: {}", manifest.display())).into());
    }
    let bytes = std::fs::read(&manifest)
        .map_err(|e| UsageError(format!("cannot read the manifest {}: {e}", manifest.display())))?;
    let dir = manifest.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let beside = |member: &str| -> Option<PathBuf> {
        let key = parsed.as_ref()?.get(member)?.get("key")?.as_str()?;
        let name = key.rsplit('/').next().filter(|n| !n.is_empty() && *n != "." && *n != "..")?;
        Some(dir.join(name))
    };
    let data = data.or_else(|| beside("data"));
    let proof = proof.or_else(|| beside("proof"));
    for (what, flag, file) in [("data", "--data", &data), ("proof", "--proof", &proof)] {
        if let Some(file) = file {
            if !file.is_file() {
                return Err(UsageError(format!(
                    "{what} file not found: {} (pass its path with {flag})",
                    file.display()
                ))
                .into());
            }
        }
    }
    Ok((BundleFiles { data, proof }, bytes))
}

fn open(path: &Option<PathBuf>) -> Result<Box<dyn Read>> {
    Ok(match path {
        Some(path) => Box::new(BufReader::new(
            File::open(path).map_err(|e| UsageError(format!("cannot open {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::empty()),
    })
}

/// The trusted keys for this manifest's note.
pub fn trusted_keys(keys: &[KeySpec], key_name: Option<&str>, manifest: &[u8]) -> Vec<TrustedKey> {
    let parsed: Option<Value> = serde_json::from_slice(manifest).ok();
    let note = parsed.as_ref().and_then(|m| m.pointer("/checkpoint/note")).and_then(Value::as_str).unwrap_or("");
    keys::resolve(keys, key_name, &[note])
}

/// Verifies the bundle and prints the result; `Outcome::Invalid` for a fault.
pub fn run(files: &BundleFiles, manifest: &[u8], keys: &[TrustedKey], json_output: bool) -> Result<Outcome> {
    let result = verify_export(manifest, open(&files.data)?, open(&files.proof)?, keys);
    Ok(report(&result, json_output))
}

/// Prints a verification result: a summary on stdout, or the fault on stderr (both on stdout as
/// one JSON object with `--json`).
pub fn report(result: &Result<ExportSummary, ExportFault>, json_output: bool) -> Outcome {
    match result {
        Ok(summary) => {
            if json_output {
                println!("{}", summary_json(summary));
            } else {
                let seqs = match (summary.first_seq, summary.last_seq) {
                    (Some(first), Some(last)) => format!("{first} to {last}"),
                    _ => "none".to_owned(),
                };
                println!("export valid");
                println!("  rows       {}", summary.rows);
                println!("  tree size  {}", summary.tree_size);
                println!("  root       {}", summary.root.to_hex());
                println!("  seqs       {seqs}");
                println!("  erased     {}", summary.erased);
            }
            Outcome::Valid
        }
        Err(fault) => {
            if json_output {
                println!("{}", fault_json(fault));
            } else {
                eprintln!("export INVALID: {}", fault_text(fault));
            }
            Outcome::Invalid
        }
    }
}

pub fn summary_json(summary: &ExportSummary) -> Value {
    json!({
        "valid": true,
        "rows": summary.rows,
        "tree_size": summary.tree_size,
        "root": summary.root.to_hex(),
        "first_seq": summary.first_seq,
        "last_seq": summary.last_seq,
        "erased": summary.erased,
    })
}

pub fn fault_json(fault: &ExportFault) -> Value {
    json!({
        "valid": false,
        "code": fault.code.as_str(),
        "row": fault.row,
        "seq": fault.seq,
        "message": fault.message,
    })
}

/// `content_digest at row 3 (seq 41): <message>`.
pub fn fault_text(fault: &ExportFault) -> String {
    let location = match (fault.row, fault.seq) {
        (Some(row), Some(seq)) => format!(" at row {row} (seq {seq})"),
        (Some(row), None) => format!(" at row {row}"),
        (None, Some(seq)) => format!(" at seq {seq}"),
        (None, None) => String::new(),
    };
    format!("{}{location}: {}", fault.code.as_str(), fault.message)
}
