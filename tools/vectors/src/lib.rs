//! The test vectors of `test-vectors/v1` (see `test-vectors/README.md`), computed with the chain
//! core in `shared::chain`, so the files hold exactly what the service computes.
//!
//! Each vector file has one generator in [`GENERATORS`]. A generator returns the files it owns as
//! [`VectorFile`]s (a path relative to the repository root and the exact bytes); the binary writes
//! or checks them and a test compares them with the committed files. A new kind of vector is one
//! more module and one more entry in that list; a generator may return any number of files, in
//! subfolders too (the export bundles of `v1/exports/` are one folder per case).
//!
//! Everything is deterministic: every key comes from a fixed seed, ECDSA signatures use RFC 6979
//! nonces, Ed25519 is deterministic, and ids, salts and times are fixed.

pub mod canonical;
pub mod strict_json;
pub mod events;
pub mod entries;
pub mod merkle;
pub mod checkpoints;
pub mod receipts;
pub mod exports;

use anyhow::{Context, Result};
use serde::{ser::SerializeMap, Serialize, Serializer};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The folder, relative to the repository root, that the generators write into.
pub const VECTORS_DIR: &str = "test-vectors/v1";

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorFile {
    /// Relative to the repository root, with `/` separators, e.g. `test-vectors/v1/merkle.json`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A named producer of vector files.
#[derive(Debug, Clone, Copy)]
pub struct Generator {
    pub name: &'static str,
    pub generate: fn() -> Result<Vec<VectorFile>>,
}

/// Every generator, in the order the README lists the files.
pub const GENERATORS: &[Generator] = &[
    Generator { name: "canonical", generate: canonical::generate },
    Generator { name: "strict-json", generate: strict_json::generate },
    Generator { name: "events", generate: events::generate },
    Generator { name: "entries", generate: entries::generate },
    Generator { name: "merkle", generate: merkle::generate },
    Generator { name: "checkpoints", generate: checkpoints::generate },
    Generator { name: "receipts", generate: receipts::generate },
    Generator { name: "exports", generate: exports::generate },
];

/// Runs every generator and returns all files, in generator order.
pub fn generate_all() -> Result<Vec<VectorFile>> {
    let mut files = Vec::new();
    for generator in GENERATORS {
        let generated = (generator.generate)().with_context(|| format!("generating the {} vectors", generator.name))?;
        files.extend(generated);
    }
    Ok(files)
}

/// The repository root: this crate lives in `tools/vectors`.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The paths of the files whose committed bytes under `root` differ from the generated ones
/// (missing files included).
pub fn changed_files(root: &Path, files: &[VectorFile]) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for file in files {
        let on_disk = match std::fs::read(root.join(&file.path)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.path)),
        };
        if on_disk.as_deref() != Some(file.bytes.as_slice()) {
            changed.push(file.path.clone());
        }
    }
    Ok(changed)
}

/// The files under `root`'s [`VECTORS_DIR`] that no generator produces (a removed case, a renamed
/// file), as paths relative to `root` with `/` separators, sorted.
pub fn stray_files(root: &Path, files: &[VectorFile]) -> Result<Vec<String>> {
    let generated: std::collections::BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut stray = Vec::new();
    let mut folders = vec![VECTORS_DIR.to_owned()];
    while let Some(folder) = folders.pop() {
        let listing = match std::fs::read_dir(root.join(&folder)) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {folder}")),
        };
        for item in listing {
            let item = item.with_context(|| format!("listing {folder}"))?;
            let name = item.file_name();
            let path = format!("{folder}/{}", name.to_string_lossy());
            if item.file_type().with_context(|| format!("reading {path}"))?.is_dir() {
                folders.push(path);
            } else if !generated.contains(path.as_str()) {
                stray.push(path);
            }
        }
    }
    stray.sort();
    Ok(stray)
}

/// Writes `files` under `root`, creating folders as needed.
pub fn write_files(root: &Path, files: &[VectorFile]) -> Result<()> {
    for file in files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &file.bytes).with_context(|| format!("writing {}", file.path))?;
    }
    Ok(())
}

/// A vector file of `test-vectors/v1` holding `value` as pretty-printed JSON (two-space indent)
/// with a trailing newline.
pub(crate) fn json_file(name: &str, value: &impl Serialize) -> Result<VectorFile> {
    let mut bytes = serde_json::to_vec_pretty(value).with_context(|| format!("serialising {name}"))?;
    bytes.push(b'\n');
    Ok(VectorFile { path: format!("{VECTORS_DIR}/{name}"), bytes })
}

/// Serialises a JSON value with the members of every object in sorted order, whatever order the
/// `serde_json` build keeps (the `preserve_order` feature could be switched on by any crate in the
/// workspace and would otherwise change the files).
pub(crate) fn sorted<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    Sorted(value).serialize(serializer)
}

struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    out.serialize_entry(key, &Sorted(value))?;
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(serializer),
        }
    }
}

/// Standard padded base64, the encoding of every salt, key and signature in the files.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A UTC time from RFC 3339 text, normalised as the chain core does.
pub(crate) fn time(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    shared::chain::event::parse_timestamp(text).map_err(anyhow::Error::msg).with_context(|| format!("parsing {text}"))
}
