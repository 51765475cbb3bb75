//! The export bundle format (docs/FORMATS.md, "Export bundle"): the encoders of data rows (JSON
//! Lines and CSV), of the Merkle proof nodes that complete the tree for the rows, the manifest
//! type, and the offline verifier.
//!
//! A bundle is three objects: the data (one row per exported entry, in seq order), `proof.jsonl`
//! (the perfect subtrees covering every leaf of `[0, tree_size)` that is not a row) and
//! `manifest.json` (counts, file digests and the signed checkpoint of `tree_size`). Merging the
//! rows' leaf hashes with the proof nodes in leaf order rebuilds the signed root, so a filtered
//! export proves that its rows are entries of the signed tree at the seqs they claim.
//!
//! The export Lambda and [`build_bundle`] (tests, test vectors) write rows and proof lines with
//! the same encoders, [`encode_row`] and [`encode_proof_node`], so there is one encoder.
//!
//! [`verify_export`] checks in the order FORMATS.md prescribes and reports the first failure with
//! its code, so every tool reports a tampered bundle the same way. It streams: it holds one row,
//! one proof line and an O(log n) stack of subtree hashes at a time, reading the proof lazily
//! alongside the rows. It only reads what the caller gives it; it opens nothing itself.
//!
//! Where the format leaves a choice to the verifier, this one decides as the Python SDK's
//! (`sdk/python/src/auditlog/export.py`) does, so both report the same code:
//! - Every line of the data is a row: an empty line anywhere (a trailing one after the last row
//!   too) is `row_malformed` at the row number it takes, without a seq; so is a last line
//!   without its final `\n`, and a line over [`MAX_LINE_BYTES`].
//! - A CSV file starts with exactly the header of [`CSV_COLUMNS`]; any other header is
//!   `row_malformed` without a row number. Only `\n` ends a CSV line (a `\r` before it is part
//!   of the last field, so the hash there does not parse).
//! - Hashes are 64 lowercase hex digits and salts the base64 of 32 bytes, or the row (manifest,
//!   proof line) is malformed. Members the format does not define are ignored; the file digests
//!   cover them.
//! - The CSV `event` column is digested exactly as written (it is "the canonical content, exactly
//!   as digested"); a JSON Lines `event` is digested as the JCS of the parsed object.
//! - The leaf hash covers `id` and `received_at` as written, so a row whose id is not a
//!   lowercase hyphenated UUID, or whose time is not `YYYY-MM-DDTHH:MM:SS.ffffffZ`, fails with
//!   `leaf_hash`: no entry of the log has that canonical entry.
//! - Every JSON text in a bundle (the manifest, each JSON Lines row, each CSV `event` column and
//!   each proof line) must be strict JSON ([`super::strict_json`]): a duplicate member name, an
//!   integer outside +-(2^53-1), a number no double holds exactly or a lone surrogate is
//!   `manifest_invalid`, `row_malformed` or `proof_invalid`. A lenient parser would keep one of
//!   two names and round the number, so two verifiers could read different rows from one file.
//! - A reader that fails, or gzip that does not decompress, is reported as a fault of the file
//!   it was reading (`row_malformed` at the row being read, `proof_invalid`, or the file's
//!   digest fault when it fails after the last row).

use super::canonical::jcs;
use super::checkpoint::{self, key_id_ecdsa, Checkpoint, CheckpointError};
use super::entry::{content_digest, Entry, SALT_LEN};
use super::event::{format_timestamp, parse_timestamp};
use super::hash::{chain_link, node_hash, Hash, GENESIS};
use super::merkle::{empty_root, MemoryTree, NodeId, NodeLookup};
use super::strict_json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Read, Write as _};
use uuid::Uuid;

/// The `format` member of every export manifest.
pub const FORMAT: &str = "audit-log-export/v1";

/// The name of the proof object.
pub const PROOF_FILE: &str = "proof.jsonl";

/// The name of the manifest object.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The columns of the CSV data, in order.
pub const CSV_COLUMNS: [&str; 23] = [
    "seq",
    "id",
    "received_at",
    "erased",
    "occurred_at",
    "action",
    "actor_id",
    "actor_type",
    "actor_name",
    "resource_type",
    "resource_id",
    "resource_name",
    "outcome",
    "severity",
    "source",
    "request_id",
    "session_id",
    "metadata",
    "event",
    "salt",
    "content_digest",
    "leaf_hash",
    "chain_hash",
];

/// The CSV copy columns (`occurred_at` to `metadata`) and the event member each one copies.
const COPY_COLUMNS: [(&str, &[&str]); 14] = [
    ("occurred_at", &["occurred_at"]),
    ("action", &["action"]),
    ("actor_id", &["actor", "id"]),
    ("actor_type", &["actor", "type"]),
    ("actor_name", &["actor", "name"]),
    ("resource_type", &["resource", "type"]),
    ("resource_id", &["resource", "id"]),
    ("resource_name", &["resource", "name"]),
    ("outcome", &["outcome"]),
    ("severity", &["severity"]),
    ("source", &["source"]),
    ("request_id", &["request_id"]),
    ("session_id", &["session_id"]),
    ("metadata", &["metadata"]),
];

/// Where the copy columns start in [`CSV_COLUMNS`].
const FIRST_COPY_COLUMN: usize = 4;

/// A data or proof line longer than this is malformed: an event's canonical form is at most
/// 64 KiB, so a valid row never comes near it, and the verifier's memory stays bounded.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// The data encodings of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Jsonl,
    Csv,
}

impl DataFormat {
    /// The data object's file name: `data.jsonl`, `data.jsonl.gz`, `data.csv`, `data.csv.gz`.
    pub fn file_name(self, gzip: bool) -> &'static str {
        match (self, gzip) {
            (DataFormat::Jsonl, false) => "data.jsonl",
            (DataFormat::Jsonl, true) => "data.jsonl.gz",
            (DataFormat::Csv, false) => "data.csv",
            (DataFormat::Csv, true) => "data.csv.gz",
        }
    }

    /// The media type of the (uncompressed) data.
    pub fn content_type(self) -> &'static str {
        match self {
            DataFormat::Jsonl => "application/x-ndjson",
            DataFormat::Csv => "text/csv",
        }
    }
}

/// The folder of one export's objects: `exports/<tenant>/<export id>/`.
pub fn object_prefix(tenant_id: Uuid, export_id: Uuid) -> String {
    format!("exports/{tenant_id}/{export_id}/")
}

/// One exported entry, borrowed from what the store read.
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    /// tenant_id, seq, id, received_at, content_digest.
    pub entry: &'a Entry,
    pub leaf_hash: &'a Hash,
    pub chain_hash: &'a Hash,
    /// Canonical JSON as stored; None once erased.
    pub content: Option<&'a str>,
    /// None once erased.
    pub salt: Option<&'a [u8]>,
}

/// Why a row or bundle could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("seq {seq}: the stored content is not a JSON object: {reason}")]
    ContentNotJson { seq: u64, reason: String },
    #[error("seq {seq}: content and salt must be present together or erased together")]
    ContentIncomplete { seq: u64 },
    #[error("the bundle input is inconsistent: {0}")]
    InvalidInput(String),
    #[error("gzip: {0}")]
    Gzip(String),
}

/// The CSV header line (with its newline).
pub fn csv_header(out: &mut Vec<u8>) {
    write_csv_record(out, &CSV_COLUMNS);
}

/// Appends one data line (with its newline) in `format`. Errors only if `content` is not a JSON
/// object, or is present without its salt (or the reverse).
///
/// `event` is the stored content byte for byte: stored content is canonical JSON already (its
/// JCS is itself), so JSON Lines embed it as it is and only CSV, which copies members into
/// columns, parses it.
pub fn encode_row(format: DataFormat, row: &ExportRow<'_>, out: &mut Vec<u8>) -> Result<(), ExportError> {
    let seq = row.entry.seq;
    let content = match (row.content, row.salt) {
        (Some(content), Some(salt)) => Some((content, salt)),
        (None, None) => None,
        _ => return Err(ExportError::ContentIncomplete { seq }),
    };
    let id = row.entry.id.to_string();
    let received_at = format_timestamp(&row.entry.received_at);
    match format {
        DataFormat::Jsonl => {
            // Built member by member: the order is part of the format, and none of the strings
            // (uuid, timestamp, base64, hex) needs escaping. Writing into a Vec cannot fail.
            let _ = write!(out, r#"{{"seq":{seq},"id":"{id}","received_at":"{received_at}","erased":"#);
            match &content {
                Some((event, salt)) => {
                    if !event.starts_with('{') || !event.ends_with('}') {
                        return Err(ExportError::ContentNotJson { seq, reason: "not an object".into() });
                    }
                    out.extend_from_slice(br#"false,"event":"#);
                    out.extend_from_slice(event.as_bytes());
                    let _ = write!(out, r#","salt":"{}""#, BASE64.encode(salt));
                }
                None => out.extend_from_slice(br#"true,"event":null,"salt":null"#),
            }
            let _ = writeln!(
                out,
                r#","content_digest":"{}","leaf_hash":"{}","chain_hash":"{}"}}"#,
                row.entry.content_digest, row.leaf_hash, row.chain_hash
            );
        }
        DataFormat::Csv => {
            let mut fields: Vec<String> = Vec::with_capacity(CSV_COLUMNS.len());
            fields.push(seq.to_string());
            fields.push(id);
            fields.push(received_at);
            match &content {
                Some((text, salt)) => {
                    let event = parse_content(seq, text)?;
                    fields.push("false".into());
                    fields.extend(COPY_COLUMNS.iter().map(|(_, path)| copy_value(&event, path)));
                    fields.push((*text).to_owned());
                    fields.push(BASE64.encode(salt));
                }
                None => {
                    fields.push("true".into());
                    fields.extend(std::iter::repeat_n(String::new(), COPY_COLUMNS.len() + 2));
                }
            }
            fields.push(row.entry.content_digest.to_hex());
            fields.push(row.leaf_hash.to_hex());
            fields.push(row.chain_hash.to_hex());
            write_csv_record(out, &fields);
        }
    }
    Ok(())
}

fn parse_content(seq: u64, content: &str) -> Result<Value, ExportError> {
    match serde_json::from_str::<Value>(content) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ExportError::ContentNotJson { seq, reason: "not an object".into() }),
        Err(e) => Err(ExportError::ContentNotJson { seq, reason: e.to_string() }),
    }
}

/// One CSV record in the format's dialect: `\n` line ends, fields quoted only when they hold a
/// comma, a quote, CR or LF.
fn write_csv_record<T: AsRef<[u8]>>(out: &mut Vec<u8>, fields: &[T]) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .buffer_capacity(1024)
        .from_writer(out);
    // Writing into a Vec cannot fail, and every record has the same number of fields.
    let _ = writer.write_record(fields);
    let _ = writer.flush();
}

/// The value of a CSV copy column: the member as text (`metadata`, and any member that is not a
/// string, as its JCS), empty when the member is absent or null.
fn copy_value(event: &Value, path: &[&str]) -> String {
    let member = path.iter().try_fold(event, |value, key| value.get(key));
    match member {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if path != ["metadata"] => s.clone(),
        Some(other) => String::from_utf8_lossy(&jcs(other)).into_owned(),
    }
}

/// The proof nodes covering the leaves strictly between the previous row and `next`
/// (exclusive): `after` = seq of the previous row (None before the first row); `next` = the next
/// row's seq, or the tree size after the last row. Largest aligned subtrees, in leaf order.
pub fn proof_nodes_between(after: Option<u64>, next: u64) -> Vec<NodeId> {
    let mut position = after.map_or(0, |seq| seq.saturating_add(1));
    let mut nodes = Vec::new();
    while position < next {
        // The largest subtree that starts here (aligned) and ends by `next`.
        let mut level = if position == 0 { 63 } else { position.trailing_zeros().min(63) };
        while (1u64 << level) > next - position {
            level -= 1;
        }
        nodes.push(NodeId { level: level as u8, index: position >> level });
        position += 1u64 << level;
    }
    nodes
}

/// Appends one proof line `{"level":L,"index":I,"hash":"<hex>"}\n`.
pub fn encode_proof_node(node: NodeId, hash: &Hash, out: &mut Vec<u8>) {
    let line = format!("{{\"level\":{},\"index\":{},\"hash\":\"{hash}\"}}\n", node.level, node.index);
    out.extend_from_slice(line.as_bytes());
}

/// `plain` as one gzip member. Concatenated members are one valid gzip stream, so the export can
/// compress its data chunk by chunk.
pub fn gzip_member(plain: &[u8]) -> Result<Vec<u8>, ExportError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(plain).map_err(|e| ExportError::Gzip(e.to_string()))?;
    encoder.finish().map_err(|e| ExportError::Gzip(e.to_string()))
}

/// The manifest, exactly the JSON of docs/FORMATS.md. It is not hashed, so serde's output is
/// fine here; members are in the documented order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub export_id: Uuid,
    pub tenant_id: Uuid,
    pub created_at: String,
    pub completed_at: String,
    /// The query parameters the export was asked for, as given.
    pub filter: Map<String, Value>,
    /// The pinned filter of the viewer token that asked for the export, if one did: the rows are
    /// those of `filter` ANDed with it. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Map<String, Value>>,
    pub data_format: DataFormat,
    pub gzip: bool,
    pub rows: u64,
    /// Null for an export of no rows, but never absent.
    #[serde(deserialize_with = "Option::deserialize")]
    pub first_seq: Option<u64>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub last_seq: Option<u64>,
    pub data: ObjectInfo,
    pub proof: ProofInfo,
    pub checkpoint: ManifestCheckpoint,
}

/// The data object: its key, and SHA-256 and size of the bytes as stored (compressed with gzip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub key: String,
    #[serde(deserialize_with = "lowercase_hash")]
    pub sha256: Hash,
    pub bytes: u64,
}

/// The proof object, and the number of nodes (lines) in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofInfo {
    pub key: String,
    #[serde(deserialize_with = "lowercase_hash")]
    pub sha256: Hash,
    pub bytes: u64,
    pub nodes: u64,
}

/// The signed checkpoint that covers every row, with the size and root it states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCheckpoint {
    pub tree_size: u64,
    #[serde(deserialize_with = "lowercase_hash")]
    pub root: Hash,
    pub note: String,
}

/// 64 lowercase hex digits, the one spelling of a hash in the formats.
fn parse_hash(s: &str) -> Option<Hash> {
    let lowercase = s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    lowercase.then(|| Hash::from_hex(s).ok()).flatten()
}

fn lowercase_hash<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse_hash(&s).ok_or_else(|| serde::de::Error::custom("a hash must be 64 lowercase hex digits"))
}

/// A trusted checkpoint key: its key name and the DER SubjectPublicKeyInfo of its P-256 public
/// key. Pass the current key and the retired ones; a note is checked with the key its key id
/// names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub key_name: String,
    pub spki_der: Vec<u8>,
}

/// What a verified bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub tree_size: u64,
    pub root: Hash,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Rows whose content was erased (their digest is taken as given).
    pub erased: u64,
}

/// The fault codes of docs/FORMATS.md, "Verifying an export", in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultCode {
    ManifestInvalid,
    CheckpointInvalid,
    RowMalformed,
    RowOrder,
    ContentDigest,
    LeafHash,
    ChainHash,
    RowCount,
    ProofInvalid,
    RootMismatch,
    DataSha256,
    ProofSha256,
}

impl FaultCode {
    /// The snake_case code of FORMATS.md.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::ManifestInvalid => "manifest_invalid",
            FaultCode::CheckpointInvalid => "checkpoint_invalid",
            FaultCode::RowMalformed => "row_malformed",
            FaultCode::RowOrder => "row_order",
            FaultCode::ContentDigest => "content_digest",
            FaultCode::LeafHash => "leaf_hash",
            FaultCode::ChainHash => "chain_hash",
            FaultCode::RowCount => "row_count",
            FaultCode::ProofInvalid => "proof_invalid",
            FaultCode::RootMismatch => "root_mismatch",
            FaultCode::DataSha256 => "data_sha256",
            FaultCode::ProofSha256 => "proof_sha256",
        }
    }
}

impl std::fmt::Display for FaultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first failure of a bundle: its code, and for row faults the 1-based row number among the
/// data rows and the row's seq (when it could be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {}{message}", location(.row, .seq))]
pub struct ExportFault {
    pub code: FaultCode,
    pub row: Option<u64>,
    pub seq: Option<u64>,
    pub message: String,
}

fn location(row: &Option<u64>, seq: &Option<u64>) -> String {
    match (row, seq) {
        (Some(row), Some(seq)) => format!("row {row} (seq {seq}): "),
        (Some(row), None) => format!("row {row}: "),
        (None, Some(seq)) => format!("seq {seq}: "),
        (None, None) => String::new(),
    }
}

impl ExportFault {
    fn new(code: FaultCode, message: impl Into<String>) -> Self {
        ExportFault { code, row: None, seq: None, message: message.into() }
    }

    fn at(code: FaultCode, row: u64, seq: Option<u64>, message: impl Into<String>) -> Self {
        ExportFault { code, row: Some(row), seq, message: message.into() }
    }
}

/// Verifies a bundle offline, streaming: memory stays O(log n) whatever the number of rows.
///
/// `manifest` is the manifest's bytes; `data` and `proof` read the data and proof objects as
/// stored (the data still gzip'd when the manifest says so). Only these readers are read, each to
/// its end; nothing is opened or fetched. `keys` are the checkpoint keys trusted out of band.
pub fn verify_export(
    manifest: &[u8],
    data: impl Read,
    proof: impl Read,
    keys: &[TrustedKey],
) -> Result<ExportSummary, ExportFault> {
    // 1. The manifest.
    strict_json::check(manifest)
        .map_err(|e| ExportFault::new(FaultCode::ManifestInvalid, format!("the manifest is not strict JSON: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| ExportFault::new(FaultCode::ManifestInvalid, format!("the manifest does not parse: {e}")))?;
    if manifest.format != FORMAT {
        return Err(ExportFault::new(
            FaultCode::ManifestInvalid,
            format!("format is {:?}, not {FORMAT:?}", manifest.format),
        ));
    }
    // 2. The checkpoint.
    check_checkpoint(&manifest, keys)?;
    let tree_size = manifest.checkpoint.tree_size;

    // 3. The rows, with the proof read alongside.
    let mut data = HashingReader::new(data);
    let mut proof = ProofReader::new(HashingReader::new(proof));
    let mut tree = TreeBuilder::default();
    // A proof fault found while reading rows is reported after the row checks (step 5).
    let mut proof_fault: Option<String> = None;
    let mut rows = 0u64;
    let mut erased = 0u64;
    let mut first_seq = None;
    let mut previous: Option<(u64, Hash)> = None;
    {
        let decoded: Box<dyn Read + '_> =
            if manifest.gzip { Box::new(MultiGzDecoder::new(&mut data)) } else { Box::new(&mut data) };
        let mut source = RowSource::new(manifest.data_format, decoded)?;
        while let Some(row) = source.next_row(rows + 1)? {
            let number = rows + 1;
            let seq = row.seq;
            let fault = |code, message: String| ExportFault::at(code, number, Some(seq), message);
            if let Some((previous_seq, _)) = previous {
                if seq <= previous_seq {
                    return Err(fault(FaultCode::RowOrder, format!("seq {seq} does not follow seq {previous_seq}")));
                }
            }
            if seq >= tree_size {
                return Err(fault(FaultCode::RowOrder, format!("seq {seq} is not below the tree size {tree_size}")));
            }
            match &row.content {
                Some((content, salt)) => {
                    let digest = content_digest(salt, content);
                    if digest != row.content_digest {
                        return Err(fault(
                            FaultCode::ContentDigest,
                            format!("the event and salt digest to {digest}, the row says {}", row.content_digest),
                        ));
                    }
                }
                None => erased += 1,
            }
            let (Some(id), Some(received_at)) = (row.id, row.received_at) else {
                return Err(fault(
                    FaultCode::LeafHash,
                    "id or received_at is not in its canonical spelling, which no entry's leaf hash covers".into(),
                ));
            };
            let entry =
                Entry { tenant_id: manifest.tenant_id, seq, id, received_at, content_digest: row.content_digest };
            let leaf = entry.leaf_hash();
            if leaf != row.leaf_hash {
                return Err(fault(
                    FaultCode::LeafHash,
                    format!("the entry's leaf hash is {leaf}, the row says {}", row.leaf_hash),
                ));
            }
            let chain_before = match previous {
                _ if seq == 0 => Some(GENESIS),
                Some((previous_seq, chain)) if previous_seq + 1 == seq => Some(chain),
                _ => None,
            };
            if let Some(before) = chain_before {
                let link = chain_link(&before, &leaf);
                if link != row.chain_hash {
                    return Err(fault(
                        FaultCode::ChainHash,
                        format!("the chain hash follows as {link}, the row says {}", row.chain_hash),
                    ));
                }
            }
            if proof_fault.is_none() {
                match tree.fill_to(seq, &mut proof) {
                    Ok(()) => tree.push_leaf(leaf),
                    Err(message) => proof_fault = Some(message),
                }
            }
            previous = Some((seq, row.chain_hash));
            first_seq.get_or_insert(seq);
            rows += 1;
        }
    }
    let last_seq = previous.map(|(seq, _)| seq);

    // 4. The counts.
    if (rows, first_seq, last_seq) != (manifest.rows, manifest.first_seq, manifest.last_seq) {
        return Err(ExportFault::new(
            FaultCode::RowCount,
            format!(
                "the data has {rows} rows from seq {} to {}, the manifest says {} rows from seq {} to {}",
                show(first_seq),
                show(last_seq),
                manifest.rows,
                show(manifest.first_seq),
                show(manifest.last_seq)
            ),
        ));
    }

    // 5. The proof tiles the rest of the tree.
    let proof_fault = match proof_fault {
        Some(message) => Some(message),
        None => tree.fill_to(tree_size, &mut proof).err(),
    };
    if let Some(message) = proof_fault {
        return Err(ExportFault::new(FaultCode::ProofInvalid, message));
    }
    match proof.next_node() {
        Ok(None) => {}
        Ok(Some((node, _))) => {
            return Err(ExportFault::new(
                FaultCode::ProofInvalid,
                format!(
                    "proof line {} (level {}, index {}) is past the end of the tree of size {tree_size}",
                    proof.lines, node.level, node.index
                ),
            ))
        }
        Err(message) => return Err(ExportFault::new(FaultCode::ProofInvalid, message)),
    }
    if proof.lines != manifest.proof.nodes {
        return Err(ExportFault::new(
            FaultCode::ProofInvalid,
            format!("the proof has {} nodes, the manifest says {}", proof.lines, manifest.proof.nodes),
        ));
    }

    // 6. The root.
    let root = tree.root();
    if root != manifest.checkpoint.root {
        return Err(ExportFault::new(
            FaultCode::RootMismatch,
            format!("the rows and proof rebuild root {root}, the checkpoint's is {}", manifest.checkpoint.root),
        ));
    }

    // 7. The files as stored.
    check_file(FaultCode::DataSha256, "data", data.finish(), &manifest.data.sha256, manifest.data.bytes)?;
    check_file(
        FaultCode::ProofSha256,
        "proof",
        proof.into_inner().finish(),
        &manifest.proof.sha256,
        manifest.proof.bytes,
    )?;

    Ok(ExportSummary { rows, tree_size, root, first_seq, last_seq, erased })
}

fn show(seq: Option<u64>) -> String {
    seq.map_or_else(|| "null".into(), |s| s.to_string())
}

fn check_file(
    code: FaultCode,
    name: &str,
    read: io::Result<(Hash, u64)>,
    sha256: &Hash,
    bytes: u64,
) -> Result<(), ExportFault> {
    let (found, length) =
        read.map_err(|e| ExportFault::new(code, format!("the {name} file cannot be read to its end: {e}")))?;
    if found != *sha256 || length != bytes {
        return Err(ExportFault::new(
            code,
            format!(
                "the {name} file has SHA-256 {found} over {length} bytes, the manifest says {sha256} over {bytes} bytes"
            ),
        ));
    }
    Ok(())
}

/// Step 2: the note verifies with a trusted key, names this tenant's log, and states the
/// manifest's size and root.
fn check_checkpoint(manifest: &Manifest, keys: &[TrustedKey]) -> Result<Checkpoint, ExportFault> {
    let invalid = |message: String| ExportFault::new(FaultCode::CheckpointInvalid, message);
    let note = &manifest.checkpoint.note;
    // Each trusted key judges only its own signatures (signed-note rules), so trying every key
    // checks the note with the key its key id names, and every signature by a trusted key must
    // verify.
    let mut verified: Option<(Checkpoint, Vec<&str>)> = None;
    for key in keys {
        match checkpoint::verify(note, &key.key_name, &key.spki_der) {
            Ok(checkpoint) => match &mut verified {
                Some((_, names)) => names.push(&key.key_name),
                None => verified = Some((checkpoint, vec![key.key_name.as_str()])),
            },
            Err(CheckpointError::NoSignatureByKey { .. }) => {}
            Err(e) => {
                return Err(invalid(format!(
                    "the note does not verify with key {} ({}): {e}",
                    key.key_name,
                    hex::encode(key_id_ecdsa(&key.spki_der))
                )))
            }
        }
    }
    let Some((checkpoint, names)) = verified else {
        let trusted: Vec<String> =
            keys.iter().map(|k| format!("{} ({})", k.key_name, hex::encode(key_id_ecdsa(&k.spki_der)))).collect();
        return Err(invalid(format!("the note has no signature by a trusted key; trusted: [{}]", trusted.join(", "))));
    };
    let tenant = manifest.tenant_id;
    if !names.iter().any(|name| checkpoint.origin == format!("{name}/{tenant}")) {
        return Err(invalid(format!(
            "the note's origin {:?} is not {:?}",
            checkpoint.origin,
            format!("{}/{tenant}", names[0])
        )));
    }
    if checkpoint.size != manifest.checkpoint.tree_size || checkpoint.root != manifest.checkpoint.root {
        return Err(invalid(format!(
            "the note states tree size {} with root {}, the manifest says tree size {} with root {}",
            checkpoint.size, checkpoint.root, manifest.checkpoint.tree_size, manifest.checkpoint.root
        )));
    }
    Ok(checkpoint)
}

/// A reader that hashes and counts every byte it passes on, so file digests are over the bytes
/// as stored, whatever decodes them above.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Reads the rest of the input, and returns the SHA-256 and length of all of it.
    fn finish(mut self) -> io::Result<(Hash, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Hash(self.hasher.finalize().into()), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Why a line could not be read.
enum LineError {
    TooLong,
    NoFinalNewline,
    Read(io::Error),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::TooLong => f.write_str("the line is too long"),
            LineError::NoFinalNewline => f.write_str("the last line does not end with a newline"),
            LineError::Read(e) => write!(f, "the file cannot be read: {e}"),
        }
    }
}

/// Reads `\n`-terminated lines of at most `max` bytes (newline excluded) into `line`, without
/// the newline. `Ok(false)` at the end of the input.
fn read_line(reader: &mut impl BufRead, max: usize, line: &mut Vec<u8>) -> Result<bool, LineError> {
    line.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(limit).read_until(b'\n', line).map_err(LineError::Read)?;
    if line.is_empty() {
        return Ok(false);
    }
    if line.pop() != Some(b'\n') {
        return Err(if line.len() >= max { LineError::TooLong } else { LineError::NoFinalNewline });
    }
    Ok(true)
}

/// A data row as parsed, before any hash is checked.
struct DataRow {
    seq: u64,
    /// The id and time, when written in their canonical spelling.
    id: Option<Uuid>,
    received_at: Option<DateTime<Utc>>,
    /// The digested content and the decoded salt; None when erased.
    content: Option<(Vec<u8>, Vec<u8>)>,
    content_digest: Hash,
    leaf_hash: Hash,
    chain_hash: Hash,
}

/// A JSON Lines row as the format defines it.
#[derive(Deserialize)]
struct JsonRow {
    seq: u64,
    id: String,
    received_at: String,
    erased: bool,
    #[serde(deserialize_with = "Option::deserialize")]
    event: Option<Map<String, Value>>,
    #[serde(deserialize_with = "Option::deserialize")]
    salt: Option<String>,
    #[serde(deserialize_with = "lowercase_hash")]
    content_digest: Hash,
    #[serde(deserialize_with = "lowercase_hash")]
    leaf_hash: Hash,
    #[serde(deserialize_with = "lowercase_hash")]
    chain_hash: Hash,
}

/// The data rows, decoded.
enum RowSource<'a> {
    Jsonl { reader: BufReader<Box<dyn Read + 'a>>, line: Vec<u8> },
    Csv { reader: csv::Reader<Box<dyn Read + 'a>>, record: csv::ByteRecord, line: u64 },
}

impl<'a> RowSource<'a> {
    /// Starts reading; for CSV, reads and checks the header.
    fn new(format: DataFormat, decoded: Box<dyn Read + 'a>) -> Result<Self, ExportFault> {
        match format {
            DataFormat::Jsonl => Ok(RowSource::Jsonl { reader: BufReader::new(decoded), line: Vec::new() }),
            DataFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_reader(decoded);
                let mut record = csv::ByteRecord::new();
                let header = |message: String| ExportFault::new(FaultCode::RowMalformed, message);
                match reader.read_byte_record(&mut record) {
                    Ok(true) => {}
                    Ok(false) => return Err(header("the CSV data has no header line".into())),
                    Err(e) => return Err(header(format!("the CSV header cannot be read: {e}"))),
                }
                let header_ok = record.len() == CSV_COLUMNS.len()
                    && record.iter().zip(CSV_COLUMNS).all(|(field, name)| field == name.as_bytes())
                    && reader.position().line() == 2;
                if !header_ok {
                    return Err(header(format!("the CSV header is not `{}`", CSV_COLUMNS.join(","))));
                }
                Ok(RowSource::Csv { reader, record, line: 2 })
            }
        }
    }

    /// The next row, which is row `number` (1-based); None at the end of the data.
    fn next_row(&mut self, number: u64) -> Result<Option<DataRow>, ExportFault> {
        let malformed =
            |seq: Option<u64>, message: String| ExportFault::at(FaultCode::RowMalformed, number, seq, message);
        match self {
            RowSource::Jsonl { reader, line } => {
                match read_line(reader, MAX_LINE_BYTES, line) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(e) => return Err(malformed(None, e.to_string())),
                }
                parse_json_row(line).map(Some).map_err(|(seq, message)| malformed(seq, message))
            }
            RowSource::Csv { reader, record, line } => {
                let more = reader
                    .read_byte_record(record)
                    .map_err(|e| malformed(None, format!("the line is not a CSV record: {e}")))?;
                let end = reader.position().line();
                if !more {
                    // The reader skips empty lines; any line it passed after the last record
                    // is one.
                    if end != *line {
                        return Err(malformed(None, "an empty line follows the last row".into()));
                    }
                    return Ok(None);
                }
                // A record spans one line plus one per newline inside its quoted fields; more
                // means the reader skipped empty lines before it, fewer that it ends without
                // a newline.
                let newlines = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
                let spans = end - *line;
                *line = end;
                if spans > newlines + 1 {
                    return Err(malformed(None, "an empty line where a row should be".into()));
                }
                if spans < newlines + 1 {
                    return Err(malformed(None, LineError::NoFinalNewline.to_string()));
                }
                parse_csv_row(record).map(Some).map_err(|(seq, message)| malformed(seq, message))
            }
        }
    }
}

type RowError = (Option<u64>, String);

fn parse_json_row(line: &[u8]) -> Result<DataRow, RowError> {
    if line.is_empty() {
        return Err((None, "an empty line where a row should be".into()));
    }
    // Name the seq when the row has a readable one, so the fault points at the entry.
    let readable_seq = || serde_json::from_slice::<Value>(line).ok().and_then(|v| v.get("seq").and_then(Value::as_u64));
    strict_json::check(line).map_err(|e| (readable_seq(), format!("the row is not strict JSON: {e}")))?;
    let row: JsonRow =
        serde_json::from_slice(line).map_err(|e| (readable_seq(), format!("the row does not parse: {e}")))?;
    let seq = Some(row.seq);
    let content = match (row.erased, row.event, row.salt) {
        (false, Some(event), Some(salt)) => Some((jcs(&Value::Object(event)), decode_salt(&salt, seq)?)),
        (true, None, None) => None,
        (erased, _, _) => return Err((seq, erased_disagrees(erased))),
    };
    Ok(DataRow {
        seq: row.seq,
        id: canonical_id(&row.id),
        received_at: canonical_time(&row.received_at),
        content,
        content_digest: row.content_digest,
        leaf_hash: row.leaf_hash,
        chain_hash: row.chain_hash,
    })
}

fn erased_disagrees(erased: bool) -> String {
    if erased {
        "erased is true but event or salt is present".into()
    } else {
        "erased is false but event or salt is missing".into()
    }
}

fn decode_salt(salt: &str, seq: Option<u64>) -> Result<Vec<u8>, RowError> {
    match BASE64.decode(salt) {
        Ok(bytes) if bytes.len() == SALT_LEN => Ok(bytes),
        _ => Err((seq, format!("salt is not the standard padded base64 of {SALT_LEN} bytes"))),
    }
}

/// The id, if `s` is its canonical (lowercase, hyphenated) spelling.
fn canonical_id(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s).ok().filter(|id| id.to_string() == s)
}

/// The time, if `s` is its canonical spelling (UTC, six fractional digits).
fn canonical_time(s: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(s).ok().filter(|t| format_timestamp(t) == s)
}

fn parse_csv_row(record: &csv::ByteRecord) -> Result<DataRow, RowError> {
    if record.len() != CSV_COLUMNS.len() {
        return Err((None, format!("the row has {} columns, not {}", record.len(), CSV_COLUMNS.len())));
    }
    let mut fields = Vec::with_capacity(CSV_COLUMNS.len());
    for (field, name) in record.iter().zip(CSV_COLUMNS) {
        fields.push(std::str::from_utf8(field).map_err(|_| (None, format!("column {name} is not UTF-8")))?);
    }
    let seq = parse_decimal(fields[0]).ok_or_else(|| (None, format!("seq {:?} is not a decimal number", fields[0])))?;
    let at = Some(seq);
    let bad = |name: &str, value: &str| (at, format!("column {name} {value:?} is not valid"));
    if fields[1].is_empty() || fields[2].is_empty() {
        return Err((at, "id or received_at is empty".into()));
    }
    let erased = match fields[3] {
        "true" => true,
        "false" => false,
        other => return Err(bad("erased", other)),
    };
    let copies = &fields[FIRST_COPY_COLUMN..FIRST_COPY_COLUMN + COPY_COLUMNS.len()];
    let (event, salt) = (fields[18], fields[19]);
    let content = if erased {
        if !event.is_empty() || !salt.is_empty() || copies.iter().any(|c| !c.is_empty()) {
            return Err((at, "erased is true but event, salt or a copy column is present".into()));
        }
        None
    } else {
        if event.is_empty() || salt.is_empty() {
            return Err((at, erased_disagrees(false)));
        }
        if let Err(e) = strict_json::check(event.as_bytes()) {
            return Err((at, format!("column event is not strict JSON: {e}")));
        }
        let value = match serde_json::from_str::<Value>(event) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => return Err((at, "column event is not a JSON object".into())),
            Err(e) => return Err((at, format!("column event does not parse: {e}"))),
        };
        for ((name, path), found) in COPY_COLUMNS.iter().zip(copies) {
            let expected = copy_value(&value, path);
            if *found != expected {
                return Err((at, format!("column {name} is {found:?}, but the event's member is {expected:?}")));
            }
        }
        Some((event.as_bytes().to_vec(), decode_salt(salt, at)?))
    };
    let hash = |i: usize| parse_hash(fields[i]).ok_or_else(|| bad(CSV_COLUMNS[i], fields[i]));
    Ok(DataRow {
        seq,
        id: canonical_id(fields[1]),
        received_at: canonical_time(fields[2]),
        content,
        content_digest: hash(20)?,
        leaf_hash: hash(21)?,
        chain_hash: hash(22)?,
    })
}

/// ASCII decimal without sign, spaces or leading zeros ("0" itself is fine).
fn parse_decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// A proof line as the format defines it.
#[derive(Deserialize)]
struct ProofLine {
    level: u8,
    index: u64,
    #[serde(deserialize_with = "lowercase_hash")]
    hash: Hash,
}

/// The proof nodes, read one line at a time.
struct ProofReader<R: Read> {
    reader: BufReader<HashingReader<R>>,
    line: Vec<u8>,
    /// Lines read so far.
    lines: u64,
}

impl<R: Read> ProofReader<R> {
    fn new(inner: HashingReader<R>) -> Self {
        ProofReader { reader: BufReader::new(inner), line: Vec::new(), lines: 0 }
    }

    /// The next node; None at the end of the proof.
    fn next_node(&mut self) -> Result<Option<(NodeId, Hash)>, String> {
        let number = self.lines + 1;
        match read_line(&mut self.reader, MAX_LINE_BYTES, &mut self.line) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(format!("proof line {number}: {e}")),
        }
        strict_json::check(&self.line).map_err(|e| format!("proof line {number} is not strict JSON: {e}"))?;
        let parsed: ProofLine =
            serde_json::from_slice(&self.line).map_err(|e| format!("proof line {number} does not parse: {e}"))?;
        self.lines = number;
        Ok(Some((NodeId { level: parsed.level, index: parsed.index }, parsed.hash)))
    }

    fn into_inner(self) -> HashingReader<R> {
        // The BufReader's unread buffer is empty here: the proof was read to its end.
        self.reader.into_inner()
    }
}

/// Rebuilds a root from perfect subtrees pushed in leaf order: a stack of (level, hash) from the
/// largest subtree down, merging equal-sized neighbours as they complete. Each pushed node must
/// start exactly where the previous one ended and be aligned to its size, so the stack is always
/// the binary decomposition of the position and never holds more than 64 entries.
#[derive(Debug, Default)]
struct TreeBuilder {
    stack: Vec<(u8, Hash)>,
    position: u64,
}

impl TreeBuilder {
    fn push_leaf(&mut self, leaf: Hash) {
        // A leaf is always aligned at the position.
        let _ = self.push(NodeId::leaf(self.position), leaf);
    }

    fn push(&mut self, node: NodeId, hash: Hash) -> Result<(), String> {
        let span = node_span(node)
            .ok_or_else(|| format!("node (level {}, index {}) is outside any tree", node.level, node.index))?;
        if span.0 != self.position {
            return Err(format!(
                "node (level {}, index {}) starts at leaf {}, not at leaf {} where the previous one ended",
                node.level, node.index, span.0, self.position
            ));
        }
        let mut top = (node.level, hash);
        while let Some(&(level, left)) = self.stack.last() {
            if level != top.0 {
                break;
            }
            self.stack.pop();
            top = (level + 1, node_hash(&left, &top.1));
        }
        self.stack.push(top);
        self.position = span.1;
        Ok(())
    }

    /// Reads proof nodes until the leaves before `target` are covered.
    fn fill_to<R: Read>(&mut self, target: u64, proof: &mut ProofReader<R>) -> Result<(), String> {
        while self.position < target {
            let Some((node, hash)) = proof.next_node()? else {
                return Err(format!(
                    "the proof ends at leaf {}, but leaves [{}, {target}) are neither rows nor proof nodes",
                    self.position, self.position
                ));
            };
            if let Some((_, end)) = node_span(node) {
                if end > target {
                    return Err(format!(
                        "proof line {} (level {}, index {}) covers leaves up to {end}, past leaf {target}",
                        proof.lines, node.level, node.index
                    ));
                }
            }
            self.push(node, hash).map_err(|e| format!("proof line {}: {e}", proof.lines))?;
        }
        Ok(())
    }

    /// RFC 9162 root of the leaves covered so far, folded right to left.
    fn root(&self) -> Hash {
        let mut pieces = self.stack.iter().rev().map(|(_, hash)| hash);
        match pieces.next() {
            None => empty_root(),
            Some(last) => pieces.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The leaves `[start, end)` a node covers; None when they do not fit in u64.
fn node_span(node: NodeId) -> Option<(u64, u64)> {
    let width = 1u64.checked_shl(u32::from(node.level))?;
    let start = node.index.checked_mul(width)?;
    Some((start, start.checked_add(width)?))
}

/// What [`build_bundle`] needs: the whole tree's entries and which of them are rows.
#[derive(Debug, Clone)]
pub struct BundleInput<'a> {
    pub tenant_id: Uuid,
    pub export_id: Uuid,
    pub created_at: String,
    pub completed_at: String,
    pub filter: Map<String, Value>,
    pub data_format: DataFormat,
    pub gzip: bool,
    /// With gzip, every this many rows start a new gzip member (at least 1).
    pub gzip_member_rows: usize,
    /// Every entry of the tree, seq 0 to tree_size - 1 in order.
    pub entries: &'a [ExportRow<'a>],
    /// The seqs that are rows, ascending.
    pub rows: &'a [u64],
    /// The signed note of the checkpoint at `entries.len()` (its root is the tree's).
    pub note: String,
}

/// The three objects of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Pretty-printed JSON.
    pub manifest: Vec<u8>,
    pub data: Vec<u8>,
    pub proof: Vec<u8>,
}

/// Builds a whole bundle in memory, with the encoders the export Lambda uses.
pub fn build_bundle(input: &BundleInput<'_>) -> Result<Bundle, ExportError> {
    let invalid = |message: String| ExportError::InvalidInput(message);
    let mut tree = MemoryTree::new();
    for (position, row) in input.entries.iter().enumerate() {
        if row.entry.seq != position as u64 {
            return Err(invalid(format!("entry {position} has seq {}", row.entry.seq)));
        }
    }
    let leaves: Vec<Hash> = input.entries.iter().map(|row| *row.leaf_hash).collect();
    tree.append(&leaves).map_err(|e| invalid(e.to_string()))?;
    let tree_size = tree.size();
    if input.rows.windows(2).any(|w| w[0] >= w[1]) || input.rows.last().is_some_and(|&seq| seq >= tree_size) {
        return Err(invalid("row seqs must be ascending and below the tree size".into()));
    }

    let mut proof = Vec::new();
    let mut nodes = 0u64;
    let mut write_proof = |after: Option<u64>, next: u64| -> Result<(), ExportError> {
        for node in proof_nodes_between(after, next) {
            let hash = tree.node(node).ok_or_else(|| invalid(format!("no hash for node {node:?}")))?;
            encode_proof_node(node, &hash, &mut proof);
            nodes += 1;
        }
        Ok(())
    };
    let mut data = Vec::new();
    let mut chunk = Vec::new();
    if input.data_format == DataFormat::Csv {
        csv_header(&mut chunk);
    }
    let per_member = input.gzip_member_rows.max(1);
    let mut after = None;
    for (i, &seq) in input.rows.iter().enumerate() {
        write_proof(after, seq)?;
        encode_row(input.data_format, &input.entries[seq as usize], &mut chunk)?;
        after = Some(seq);
        if input.gzip && (i + 1) % per_member == 0 {
            data.extend(gzip_member(&chunk)?);
            chunk.clear();
        }
    }
    write_proof(after, tree_size)?;
    if input.gzip {
        // An empty gzip file is not a gzip stream, so an export of nothing still has one member.
        if !chunk.is_empty() || data.is_empty() {
            data.extend(gzip_member(&chunk)?);
        }
    } else {
        data = chunk;
    }

    let prefix = object_prefix(input.tenant_id, input.export_id);
    let manifest = Manifest {
        format: FORMAT.into(),
        export_id: input.export_id,
        tenant_id: input.tenant_id,
        created_at: input.created_at.clone(),
        completed_at: input.completed_at.clone(),
        filter: input.filter.clone(),
        pin: None,
        data_format: input.data_format,
        gzip: input.gzip,
        rows: input.rows.len() as u64,
        first_seq: input.rows.first().copied(),
        last_seq: input.rows.last().copied(),
        data: ObjectInfo {
            key: format!("{prefix}{}", input.data_format.file_name(input.gzip)),
            sha256: super::hash::sha256(&[&data]),
            bytes: data.len() as u64,
        },
        proof: ProofInfo {
            key: format!("{prefix}{PROOF_FILE}"),
            sha256: super::hash::sha256(&[&proof]),
            bytes: proof.len() as u64,
            nodes,
        },
        checkpoint: ManifestCheckpoint { tree_size, root: tree.root(), note: input.note.clone() },
    };
    let mut manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| invalid(e.to_string()))?;
    manifest.push(b'\n');
    Ok(Bundle { manifest, data, proof })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::checkpoint::assemble;
    use crate::chain::entry::{link_entries, Linked};
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey as _;
    use serde_json::json;

    const KEY_NAME: &str = "audit.example.com/log";
    /// Rows 1, 4, 5 and 9 of a tree of 13: gaps at both ends and between rows.
    const FILTERED: [u64; 4] = [1, 4, 5, 9];
    const VARIANTS: [(DataFormat, bool); 4] =
        [(DataFormat::Jsonl, false), (DataFormat::Jsonl, true), (DataFormat::Csv, false), (DataFormat::Csv, true)];

    fn tenant() -> Uuid {
        Uuid::parse_str("0190f6e2-0000-7000-8000-000000000001").expect("uuid")
    }

    fn event(seq: u64) -> Value {
        json!({
            "action": format!("user.login.{seq}"),
            "actor": {"id": format!("u{seq}"), "type": "user"},
            "metadata": {"n": seq, "tags": ["a", null]},
            "occurred_at": "2026-11-24T10:00:00.000000Z",
            "outcome": "success",
        })
    }

    /// A tenant's whole log: entries with content, salt, leaf and chain hashes.
    struct Log {
        entries: Vec<Entry>,
        contents: Vec<Option<String>>,
        salts: Vec<Option<Vec<u8>>>,
        linked: Vec<Linked>,
    }

    impl Log {
        fn new(size: u64) -> Self {
            Self::with_events((0..size).map(event).collect())
        }

        fn with_events(events: Vec<Value>) -> Self {
            let contents: Vec<String> =
                events.iter().map(|e| String::from_utf8(jcs(e)).expect("JCS is UTF-8")).collect();
            let salts: Vec<Vec<u8>> = (0..contents.len()).map(|i| vec![i as u8; SALT_LEN]).collect();
            let start = parse_timestamp("2026-11-24T10:00:00.5Z").expect("time");
            let entries: Vec<Entry> = contents
                .iter()
                .zip(&salts)
                .enumerate()
                .map(|(i, (content, salt))| Entry {
                    tenant_id: tenant(),
                    seq: i as u64,
                    id: Uuid::from_u128(0x0190f6e2_0000_7000_8000_000000001000 + i as u128),
                    received_at: start + chrono::Duration::milliseconds(250 * i as i64),
                    content_digest: content_digest(salt, content.as_bytes()),
                })
                .collect();
            let linked = link_entries(GENESIS, &entries);
            Log {
                entries,
                contents: contents.into_iter().map(Some).collect(),
                salts: salts.into_iter().map(Some).collect(),
                linked,
            }
        }

        fn erase(&mut self, seq: usize) {
            self.contents[seq] = None;
            self.salts[seq] = None;
        }

        fn rows(&self) -> Vec<ExportRow<'_>> {
            (0..self.entries.len())
                .map(|i| ExportRow {
                    entry: &self.entries[i],
                    leaf_hash: &self.linked[i].leaf_hash,
                    chain_hash: &self.linked[i].chain_hash,
                    content: self.contents[i].as_deref(),
                    salt: self.salts[i].as_deref(),
                })
                .collect()
        }

        fn tree(&self) -> MemoryTree {
            let mut tree = MemoryTree::new();
            let leaves: Vec<Hash> = self.linked.iter().map(|l| l.leaf_hash).collect();
            tree.append(&leaves).expect("append");
            tree
        }
    }

    fn signing_key(byte: u8) -> SigningKey {
        SigningKey::from_slice(&[byte; 32]).expect("a valid scalar")
    }

    fn spki(key: &SigningKey) -> Vec<u8> {
        key.verifying_key().to_public_key_der().expect("encodable").as_bytes().to_vec()
    }

    fn note(key: &SigningKey, origin: &str, size: u64, root: Hash) -> String {
        let checkpoint = Checkpoint::new(origin, size, root).with_timestamp(1_735_689_600);
        let signature: Signature = key.sign(checkpoint.body().as_bytes());
        let signed = assemble(checkpoint, KEY_NAME, key_id_ecdsa(&spki(key)), signature.to_der().as_bytes().to_vec());
        signed.expect("valid input").note
    }

    fn origin() -> String {
        format!("{KEY_NAME}/{}", tenant())
    }

    fn trusted() -> Vec<TrustedKey> {
        vec![TrustedKey { key_name: KEY_NAME.into(), spki_der: spki(&signing_key(7)) }]
    }

    fn build(log: &Log, format: DataFormat, gzip: bool, rows: &[u64], note: String) -> Bundle {
        let entries = log.rows();
        let input = BundleInput {
            tenant_id: tenant(),
            export_id: Uuid::from_u128(42),
            created_at: "2026-11-24T11:00:00.000000Z".into(),
            completed_at: "2026-11-24T11:00:02.000000Z".into(),
            filter: json!({"action": "user.*"}).as_object().cloned().expect("object"),
            data_format: format,
            gzip,
            gzip_member_rows: 2,
            entries: &entries,
            rows,
            note,
        };
        build_bundle(&input).expect("bundle")
    }

    fn bundle(log: &Log, format: DataFormat, gzip: bool, rows: &[u64]) -> Bundle {
        let size = log.entries.len() as u64;
        build(log, format, gzip, rows, note(&signing_key(7), &origin(), size, log.tree().root()))
    }

    fn filtered(format: DataFormat) -> Bundle {
        bundle(&Log::new(13), format, false, &FILTERED)
    }

    fn verify(b: &Bundle) -> Result<ExportSummary, ExportFault> {
        verify_export(&b.manifest, &b.data[..], &b.proof[..], &trusted())
    }

    /// The fault's code, row and seq.
    fn fault(b: &Bundle) -> (FaultCode, Option<u64>, Option<u64>) {
        let f = verify(b).expect_err("the bundle must be rejected");
        (f.code, f.row, f.seq)
    }

    fn manifest(b: &Bundle) -> Value {
        serde_json::from_slice(&b.manifest).expect("manifest JSON")
    }

    fn edit_manifest(b: &mut Bundle, edit: impl FnOnce(&mut Value)) {
        let mut m = manifest(b);
        edit(&mut m);
        b.manifest = serde_json::to_vec(&m).expect("JSON");
    }

    /// Replaces the first `from` in line `line` (0-based) of a line-based file.
    fn edit_line(file: &mut Vec<u8>, line: usize, from: &str, to: &str) {
        let text = String::from_utf8(file.clone()).expect("UTF-8");
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
        assert!(lines[line].contains(from), "line {line} must contain {from:?}: {}", lines[line]);
        lines[line] = lines[line].replacen(from, to, 1);
        *file = lines.concat().into_bytes();
    }

    fn lines(file: &[u8]) -> Vec<String> {
        String::from_utf8(file.to_vec()).expect("UTF-8").lines().map(str::to_owned).collect()
    }

    #[test]
    fn file_names_and_content_types() {
        assert_eq!(DataFormat::Jsonl.file_name(false), "data.jsonl");
        assert_eq!(DataFormat::Jsonl.file_name(true), "data.jsonl.gz");
        assert_eq!(DataFormat::Csv.file_name(false), "data.csv");
        assert_eq!(DataFormat::Csv.file_name(true), "data.csv.gz");
        assert_eq!(DataFormat::Jsonl.content_type(), "application/x-ndjson");
        assert_eq!(DataFormat::Csv.content_type(), "text/csv");
    }

    #[test]
    fn fault_codes_are_the_documented_snake_case() {
        let codes = [
            (FaultCode::ManifestInvalid, "manifest_invalid"),
            (FaultCode::CheckpointInvalid, "checkpoint_invalid"),
            (FaultCode::RowMalformed, "row_malformed"),
            (FaultCode::RowOrder, "row_order"),
            (FaultCode::ContentDigest, "content_digest"),
            (FaultCode::LeafHash, "leaf_hash"),
            (FaultCode::ChainHash, "chain_hash"),
            (FaultCode::RowCount, "row_count"),
            (FaultCode::ProofInvalid, "proof_invalid"),
            (FaultCode::RootMismatch, "root_mismatch"),
            (FaultCode::DataSha256, "data_sha256"),
            (FaultCode::ProofSha256, "proof_sha256"),
        ];
        for (code, text) in codes {
            assert_eq!(code.as_str(), text);
            assert_eq!(serde_json::to_value(code).expect("JSON"), json!(text));
        }
    }

    #[test]
    fn fault_display_names_code_row_and_seq() {
        let at_row = ExportFault::at(FaultCode::ContentDigest, 3, Some(41), "digest differs");
        assert_eq!(at_row.to_string(), "content_digest: row 3 (seq 41): digest differs");
        let at_row_only = ExportFault::at(FaultCode::RowMalformed, 5, None, "empty line");
        assert_eq!(at_row_only.to_string(), "row_malformed: row 5: empty line");
        assert_eq!(ExportFault::new(FaultCode::RowCount, "short").to_string(), "row_count: short");
    }

    #[test]
    fn csv_header_is_the_documented_column_list() {
        let mut out = Vec::new();
        csv_header(&mut out);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "seq,id,received_at,erased,occurred_at,action,actor_id,actor_type,actor_name,resource_type,resource_id,\
             resource_name,outcome,severity,source,request_id,session_id,metadata,event,salt,content_digest,\
             leaf_hash,chain_hash\n"
        );
        assert_eq!(CSV_COLUMNS[FIRST_COPY_COLUMN], COPY_COLUMNS[0].0);
        for (i, (name, _)) in COPY_COLUMNS.iter().enumerate() {
            assert_eq!(CSV_COLUMNS[FIRST_COPY_COLUMN + i], *name);
        }
    }

    #[test]
    fn jsonl_row_layout_is_pinned() {
        let log = Log::new(2);
        let rows = log.rows();
        let mut out = Vec::new();
        encode_row(DataFormat::Jsonl, &rows[1], &mut out).expect("encodes");
        let expected = format!(
            concat!(
                r#"{{"seq":1,"id":"0190f6e2-0000-7000-8000-000000001001","received_at":"2026-11-24T10:00:00.750000Z","#,
                r#""erased":false,"event":{},"salt":"{}","content_digest":"{}","leaf_hash":"{}","chain_hash":"{}"}}"#,
                "\n"
            ),
            log.contents[1].as_deref().expect("content"),
            BASE64.encode([1u8; SALT_LEN]),
            log.entries[1].content_digest,
            log.linked[1].leaf_hash,
            log.linked[1].chain_hash,
        );
        assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
    }

    #[test]
    fn csv_row_copies_members_and_metadata_as_jcs() {
        let log = Log::new(2);
        let mut out = Vec::new();
        encode_row(DataFormat::Csv, &log.rows()[1], &mut out).expect("encodes");
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&out[..]);
        let record = reader.records().next().expect("one record").expect("parses");
        let content = log.contents[1].as_deref().expect("content");
        let fields: Vec<&str> = record.iter().collect();
        assert_eq!(
            fields[..6],
            [
                "1",
                "0190f6e2-0000-7000-8000-000000001001",
                "2026-11-24T10:00:00.750000Z",
                "false",
                "2026-11-24T10:00:00.000000Z",
                "user.login.1"
            ]
        );
        assert_eq!(fields[6..9], ["u1", "user", ""]);
        assert_eq!(fields[12], "success");
        assert_eq!(fields[17], r#"{"n":1,"tags":["a",null]}"#);
        assert_eq!(fields[18], content);
    }

    #[test]
    fn encode_row_rejects_content_that_is_not_a_json_object() {
        let log = Log::new(1);
        let mut row = log.rows()[0];
        for content in ["not json", "[1]"] {
            row.content = Some(content);
            let err = encode_row(DataFormat::Jsonl, &row, &mut Vec::new()).expect_err("not an object");
            assert!(matches!(err, ExportError::ContentNotJson { seq: 0, .. }), "{err}");
        }
        row.salt = None;
        row.content = log.contents[0].as_deref();
        assert_eq!(encode_row(DataFormat::Csv, &row, &mut Vec::new()), Err(ExportError::ContentIncomplete { seq: 0 }));
    }

    #[test]
    fn proof_nodes_between_are_the_largest_aligned_subtrees_in_leaf_order() {
        let n = |level: u8, index: u64| NodeId { level, index };
        let cases: [(Option<u64>, u64, Vec<NodeId>); 7] = [
            (None, 0, vec![]),
            (None, 1, vec![n(0, 0)]),
            (Some(0), 1, vec![]),
            (None, 13, vec![n(3, 0), n(2, 2), n(0, 12)]),
            (Some(0), 8, vec![n(0, 1), n(1, 1), n(2, 1)]),
            (Some(2), 16, vec![n(0, 3), n(2, 1), n(3, 1)]),
            (Some(5), 9, vec![n(1, 3), n(0, 8)]),
        ];
        for (after, next, expected) in cases {
            assert_eq!(proof_nodes_between(after, next), expected, "after {after:?}, next {next}");
        }
        // Every gap is tiled exactly, with aligned nodes.
        for start in 0..40u64 {
            for next in start..40 {
                let after = start.checked_sub(1);
                let mut position = start;
                for node in proof_nodes_between(after, next) {
                    let (from, to) = node_span(node).expect("fits");
                    assert_eq!(from, position, "gap [{start}, {next})");
                    position = to;
                }
                assert_eq!(position, next.max(start), "gap [{start}, {next})");
            }
        }
    }

    #[test]
    fn proof_line_layout_is_pinned() {
        let mut out = Vec::new();
        let hash = Hash([0xab; 32]);
        encode_proof_node(NodeId { level: 2, index: 5 }, &hash, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            format!("{{\"level\":2,\"index\":5,\"hash\":\"{hash}\"}}\n")
        );
    }

    #[test]
    fn bundle_of_every_entry_verifies_with_an_empty_proof() {
        let log = Log::new(13);
        let all: Vec<u64> = (0..13).collect();
        for (format, gzip) in VARIANTS {
            let b = bundle(&log, format, gzip, &all);
            assert!(b.proof.is_empty());
            let summary = verify(&b).expect("verifies");
            let expected = ExportSummary {
                rows: 13,
                tree_size: 13,
                root: log.tree().root(),
                first_seq: Some(0),
                last_seq: Some(12),
                erased: 0,
            };
            assert_eq!(summary, expected, "{format:?}, gzip {gzip}");
        }
    }

    #[test]
    fn filtered_bundle_verifies_and_its_proof_holds_exactly_the_gaps() {
        let log = Log::new(13);
        let tree = log.tree();
        let n = |level: u8, index: u64| NodeId { level, index };
        // Gaps [0, 1), [2, 4), [6, 9), [10, 13).
        let gaps = [n(0, 0), n(1, 1), n(1, 3), n(0, 8), n(1, 5), n(0, 12)];
        for (format, gzip) in VARIANTS {
            let b = bundle(&log, format, gzip, &FILTERED);
            let expected: Vec<u8> = gaps.iter().fold(Vec::new(), |mut out, &id| {
                encode_proof_node(id, &tree.node(id).expect("stored"), &mut out);
                out
            });
            assert_eq!(b.proof, expected);
            assert_eq!(manifest(&b)["proof"]["nodes"], json!(6));
            let summary = verify(&b).expect("verifies");
            assert_eq!((summary.rows, summary.first_seq, summary.last_seq), (4, Some(1), Some(9)));
        }
    }

    #[test]
    fn empty_export_verifies() {
        let log = Log::new(5);
        for (format, gzip) in VARIANTS {
            let b = bundle(&log, format, gzip, &[]);
            let m = manifest(&b);
            assert_eq!((&m["rows"], &m["first_seq"], &m["last_seq"]), (&json!(0), &Value::Null, &Value::Null));
            assert_eq!(lines(&b.proof).len(), 2, "nodes (2, 0) and (0, 4)");
            let summary = verify(&b).expect("verifies");
            assert_eq!((summary.rows, summary.tree_size, summary.first_seq), (0, 5, None));
        }
    }

    #[test]
    fn empty_tree_verifies_against_the_empty_root() {
        let log = Log::new(0);
        let b = bundle(&log, DataFormat::Jsonl, false, &[]);
        assert!(b.data.is_empty() && b.proof.is_empty());
        assert_eq!(verify(&b).expect("verifies").root, empty_root());
    }

    #[test]
    fn manifest_has_the_documented_members_in_order() {
        let b = filtered(DataFormat::Csv);
        let text = String::from_utf8(b.manifest.clone()).expect("UTF-8");
        let members = [
            "format",
            "export_id",
            "tenant_id",
            "created_at",
            "completed_at",
            "filter",
            "data_format",
            "gzip",
            "rows",
            "first_seq",
            "last_seq",
            "data",
            "proof",
            "checkpoint",
        ];
        let positions: Vec<usize> =
            members.iter().map(|m| text.find(&format!("\n  \"{m}\":")).expect("member")).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        let m = manifest(&b);
        let prefix = format!("exports/{}/{}/", tenant(), Uuid::from_u128(42));
        assert_eq!(m["data"]["key"], json!(format!("{prefix}data.csv")));
        assert_eq!(m["proof"]["key"], json!(format!("{prefix}proof.jsonl")));
        assert_eq!(m["data"]["sha256"], json!(crate::chain::hash::sha256(&[&b.data]).to_hex()));
        assert_eq!(m["data_format"], json!("csv"));
        let parsed: Manifest = serde_json::from_slice(&b.manifest).expect("round trip");
        assert_eq!(serde_json::to_value(&parsed).expect("JSON"), m);
    }

    #[test]
    fn gzip_data_is_several_members_read_as_one_stream() {
        let log = Log::new(13);
        let b = bundle(&log, DataFormat::Jsonl, true, &FILTERED);
        let plain = bundle(&log, DataFormat::Jsonl, false, &FILTERED).data;
        let mut all = Vec::new();
        MultiGzDecoder::new(&b.data[..]).read_to_end(&mut all).expect("gzip");
        assert_eq!(all, plain);
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(&b.data[..]).read_to_end(&mut first).expect("gzip");
        assert_eq!(lines(&first).len(), 2, "the first member holds two rows");
        assert_eq!(manifest(&b)["data"]["key"].as_str().map(|k| k.ends_with("/data.jsonl.gz")), Some(true));
    }

    #[test]
    fn csv_quoting_of_commas_quotes_and_newlines_round_trips() {
        let name = "Ann, \"the\" admin\nsecond line\r\nthird";
        let mut events: Vec<Value> = (0..3).map(event).collect();
        events[1]["actor"]["name"] = json!(name);
        events[1]["resource"] = json!({"type": "doc", "id": "a,b", "name": "q\"uote"});
        events[1]["metadata"] = json!({"note": "x,y\nz"});
        let log = Log::with_events(events);
        for gzip in [false, true] {
            let b = bundle(&log, DataFormat::Csv, gzip, &[0, 1, 2]);
            verify(&b).expect("verifies");
        }
        let b = bundle(&log, DataFormat::Csv, false, &[0, 1, 2]);
        let text = String::from_utf8(b.data.clone()).expect("UTF-8");
        assert!(text.contains("\"Ann, \"\"the\"\" admin\nsecond line\r\nthird\""), "{text}");
        let mut reader = csv::ReaderBuilder::new().from_reader(&b.data[..]);
        let record = reader.records().nth(1).expect("row 2").expect("parses");
        assert_eq!(&record[8], name);
        assert_eq!(&record[10], "a,b");
        assert_eq!(&record[11], "q\"uote");
        assert_eq!(&record[17], r#"{"note":"x,y\nz"}"#);
        assert_eq!(&record[18], log.contents[1].as_deref().expect("content"));
    }

    #[test]
    fn erased_row_still_verifies() {
        let mut log = Log::new(13);
        log.erase(4);
        for (format, gzip) in VARIANTS {
            let b = bundle(&log, format, gzip, &FILTERED);
            assert_eq!(verify(&b).expect("verifies").erased, 1, "{format:?}, gzip {gzip}");
        }
        let b = bundle(&log, DataFormat::Jsonl, false, &FILTERED);
        assert!(lines(&b.data)[1].contains(r#""erased":true,"event":null,"salt":null,"content_digest""#));
        let b = bundle(&log, DataFormat::Csv, false, &FILTERED);
        let erased = format!("4,{},2026-11-24T10:00:01.500000Z,true,{}", log.entries[4].id, ",".repeat(16));
        assert!(lines(&b.data)[2].starts_with(&erased), "{}", lines(&b.data)[2]);
    }

    #[test]
    fn changed_event_byte_is_a_content_digest_fault_at_its_row() {
        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.data, 1, "user.login.4", "user.logon.4");
        assert_eq!(fault(&b), (FaultCode::ContentDigest, Some(2), Some(4)));
    }

    #[test]
    fn erased_row_with_content_put_back_is_row_malformed() {
        let mut log = Log::new(13);
        log.erase(4);
        let mut b = bundle(&log, DataFormat::Jsonl, false, &FILTERED);
        edit_line(&mut b.data, 1, r#""event":null"#, r#""event":{"action":"x"}"#);
        assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(2), Some(4)));
    }

    #[test]
    fn swapped_rows_are_a_row_order_fault() {
        for format in [DataFormat::Jsonl, DataFormat::Csv] {
            let mut b = filtered(format);
            let skip = usize::from(format == DataFormat::Csv);
            let mut ls: Vec<String> = lines(&b.data);
            ls.swap(skip + 1, skip + 2);
            b.data = ls.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
            assert_eq!(fault(&b), (FaultCode::RowOrder, Some(3), Some(4)), "{format:?}");
        }
    }

    #[test]
    fn dropped_last_row_is_a_row_count_fault() {
        let mut b = filtered(DataFormat::Jsonl);
        let ls = lines(&b.data);
        b.data = ls[..3].iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
        assert_eq!(fault(&b), (FaultCode::RowCount, None, None));
    }

    #[test]
    fn changed_csv_copy_column_is_row_malformed() {
        let mut b = filtered(DataFormat::Csv);
        // The action column; in the event column the value is followed by a doubled quote.
        edit_line(&mut b.data, 2, "user.login.4,", "user.logout.4,");
        assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(2), Some(4)));
    }

    #[test]
    fn changed_csv_event_column_is_a_content_digest_fault() {
        let mut b = filtered(DataFormat::Csv);
        // In the event column only: the "n" of the metadata; its copy is changed to match.
        edit_line(&mut b.data, 2, r#"{""n"":4,"#, r#"{""n"":5,"#);
        edit_line(&mut b.data, 2, r#"{""n"":4,"#, r#"{""n"":5,"#);
        assert_eq!(fault(&b), (FaultCode::ContentDigest, Some(2), Some(4)));
    }

    #[test]
    fn changed_hashes_are_leaf_and_chain_faults() {
        let log = Log::new(6);
        let all: Vec<u64> = (0..6).collect();
        let mut b = bundle(&log, DataFormat::Jsonl, false, &all);
        let leaf = log.linked[3].leaf_hash.to_hex();
        edit_line(&mut b.data, 3, &leaf, &crate::chain::hash::sha256(&[b"other"]).to_hex());
        assert_eq!(fault(&b), (FaultCode::LeafHash, Some(4), Some(3)));

        let mut b = bundle(&log, DataFormat::Jsonl, false, &all);
        edit_line(&mut b.data, 2, "10:00:01.000000Z", "10:00:01.000001Z");
        assert_eq!(fault(&b), (FaultCode::LeafHash, Some(3), Some(2)));

        let mut b = bundle(&log, DataFormat::Csv, false, &all);
        edit_line(&mut b.data, 3, ",2026-11-24T10:00:01.000000Z,", ",2026-11-24T10:00:01Z,");
        assert_eq!(fault(&b), (FaultCode::LeafHash, Some(3), Some(2)), "a non-canonical time spelling");

        let mut b = bundle(&log, DataFormat::Jsonl, false, &all);
        let chain = log.linked[5].chain_hash.to_hex();
        edit_line(&mut b.data, 5, &chain, &crate::chain::hash::sha256(&[b"other"]).to_hex());
        assert_eq!(fault(&b), (FaultCode::ChainHash, Some(6), Some(5)));
    }

    #[test]
    fn malformed_rows_are_reported_at_their_row() {
        let cases = [
            (r#""erased":false"#, r#""erased":"no""#, Some(4)),
            (r#"{"seq":4,"#, r#"{"seq":"4","#, None),
            (r#","salt":"BAQE"#, r#","salt":"BAQ"#, Some(4)),
        ];
        for (from, to, seq) in cases {
            let mut b = filtered(DataFormat::Jsonl);
            edit_line(&mut b.data, 1, from, to);
            assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(2), seq), "{to}");
        }
        let mut b = filtered(DataFormat::Jsonl);
        let digest = b.data.len();
        let upper = lines(&b.data)[1].split("\"content_digest\":\"").nth(1).expect("digest")[..64].to_owned();
        edit_line(&mut b.data, 1, &upper, &upper.to_uppercase());
        assert_eq!(b.data.len(), digest);
        assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(2), Some(4)), "uppercase hex");
    }

    #[test]
    fn json_lines_row_that_is_not_strict_json_is_row_malformed_at_its_row_and_seq() {
        // Row 2 is seq 4. A duplicate whose last value is the original reads, last-wins, as the
        // digested event; the strict check refuses it all the same. A row serde_json cannot read
        // at all (a lone surrogate) has no readable seq.
        let cases = [
            (r#""event":{"action":"#, r#""event":{"action":"user.logout","action":"#, Some(4)),
            (r#""content_digest":"#, r#""content_digest":"00","content_digest":"#, Some(4)),
            (r#""metadata":{"n":4"#, r#""metadata":{"n":18446744073709551616"#, Some(4)),
            (r#""metadata":{"n":4"#, r#""metadata":{"n":1e20"#, Some(4)),
            (r#""metadata":{"n":4"#, r#""metadata":{"n":0.10000000000000001"#, Some(4)),
            (r#""type":"user""#, r#""type":"user\ud800""#, None),
        ];
        for (from, to, seq) in cases {
            let mut b = filtered(DataFormat::Jsonl);
            edit_line(&mut b.data, 1, from, to);
            let f = verify(&b).expect_err(to);
            assert_eq!((f.code, f.row, f.seq), (FaultCode::RowMalformed, Some(2), seq), "{to}");
            assert!(f.message.starts_with("the row is not strict JSON: "), "{}", f.message);
        }
        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.data, 1, r#""event":{"action":"#, r#""event":{"action":"user.logout","action":"#);
        assert_eq!(
            verify(&b).expect_err("a duplicate").message,
            r#"the row is not strict JSON: duplicate member name "action" at event.action"#
        );
    }

    #[test]
    fn csv_event_column_that_is_not_strict_json_is_row_malformed() {
        let mut b = filtered(DataFormat::Csv);
        edit_line(&mut b.data, 2, r#""{""action"":"#, r#""{""action"":""user.logout"",""action"":"#);
        let f = verify(&b).expect_err("a duplicate");
        assert_eq!((f.code, f.row, f.seq), (FaultCode::RowMalformed, Some(2), Some(4)));
        assert_eq!(f.message, r#"column event is not strict JSON: duplicate member name "action" at action"#);
    }

    #[test]
    fn manifest_that_is_not_strict_json_is_manifest_invalid() {
        let b = filtered(DataFormat::Jsonl);
        let text = String::from_utf8(b.manifest.clone()).expect("UTF-8");
        for (from, to) in
            [("\"rows\": ", "\"rows\": 1,\n  \"rows\": "), ("\"gzip\": false", "\"gzip\": false, \"n\": 1e400")]
        {
            let mut changed = b.clone();
            assert_eq!(text.matches(from).count(), 1, "{from}");
            changed.manifest = text.replacen(from, to, 1).into_bytes();
            let f = verify(&changed).expect_err(to);
            assert_eq!((f.code, f.row, f.seq), (FaultCode::ManifestInvalid, None, None), "{to}");
            assert!(f.message.starts_with("the manifest is not strict JSON: "), "{}", f.message);
        }
    }

    #[test]
    fn proof_line_that_is_not_strict_json_is_proof_invalid() {
        for (from, to) in
            [(r#""level":0,"#, r#""level":0,"level":0,"#), (r#""index":"#, r#""index":18446744073709551616,"x":"#)]
        {
            let mut b = filtered(DataFormat::Jsonl);
            edit_line(&mut b.proof, 0, from, to);
            let f = verify(&b).expect_err(to);
            assert_eq!((f.code, f.row, f.seq), (FaultCode::ProofInvalid, None, None), "{to}");
            assert!(f.message.starts_with("proof line 1 is not strict JSON: "), "{}", f.message);
        }
    }

    #[test]
    fn changed_manifest_root_is_checkpoint_invalid() {
        let mut b = filtered(DataFormat::Jsonl);
        edit_manifest(&mut b, |m| m["checkpoint"]["root"] = json!(Hash([1; 32]).to_hex()));
        assert_eq!(fault(&b), (FaultCode::CheckpointInvalid, None, None));
    }

    #[test]
    fn note_by_an_unknown_key_is_checkpoint_invalid() {
        let log = Log::new(13);
        let size = 13;
        let b =
            build(&log, DataFormat::Jsonl, false, &FILTERED, note(&signing_key(9), &origin(), size, log.tree().root()));
        assert_eq!(fault(&b), (FaultCode::CheckpointInvalid, None, None));
    }

    #[test]
    fn note_by_a_retired_key_verifies_with_its_key_id() {
        let log = Log::new(13);
        let b = bundle(&log, DataFormat::Jsonl, false, &FILTERED);
        let keys = [
            TrustedKey { key_name: KEY_NAME.into(), spki_der: spki(&signing_key(8)) },
            TrustedKey { key_name: KEY_NAME.into(), spki_der: spki(&signing_key(7)) },
        ];
        verify_export(&b.manifest, &b.data[..], &b.proof[..], &keys).expect("the retired key signed it");
    }

    #[test]
    fn note_of_another_log_is_checkpoint_invalid() {
        let log = Log::new(13);
        let other = format!("{KEY_NAME}/{}", Uuid::from_u128(9));
        let b = build(&log, DataFormat::Jsonl, false, &FILTERED, note(&signing_key(7), &other, 13, log.tree().root()));
        let f = verify(&b).expect_err("another tenant's origin");
        assert_eq!((f.code, f.row), (FaultCode::CheckpointInvalid, None));
        assert!(f.message.contains("origin"), "{f}");
    }

    #[test]
    fn invalid_manifests_are_manifest_invalid() {
        let b = filtered(DataFormat::Jsonl);
        type Edit = Box<dyn Fn(&mut Value)>;
        let edits: [(&str, Edit); 5] = [
            ("format", Box::new(|m| m["format"] = json!("audit-log-export/v2"))),
            ("missing first_seq", Box::new(|m| drop(m.as_object_mut().and_then(|o| o.remove("first_seq"))))),
            ("rows as text", Box::new(|m| m["rows"] = json!("4"))),
            ("uppercase root", Box::new(|m| m["checkpoint"]["root"] = json!(Hash([0xab; 32]).to_hex().to_uppercase()))),
            ("data format", Box::new(|m| m["data_format"] = json!("xml"))),
        ];
        for (name, edit) in edits {
            let mut changed = b.clone();
            edit_manifest(&mut changed, edit);
            assert_eq!(fault(&changed), (FaultCode::ManifestInvalid, None, None), "{name}");
        }
        let mut not_json = b.clone();
        not_json.manifest = b"{".to_vec();
        assert_eq!(fault(&not_json), (FaultCode::ManifestInvalid, None, None));
    }

    #[test]
    fn changed_proof_hash_is_root_mismatch() {
        let mut b = filtered(DataFormat::Jsonl);
        let hash = lines(&b.proof)[2].split("\"hash\":\"").nth(1).expect("hash")[..64].to_owned();
        let flipped = format!("{}{}", if hash.starts_with('0') { '1' } else { '0' }, &hash[1..]);
        edit_line(&mut b.proof, 2, &hash, &flipped);
        assert_eq!(fault(&b), (FaultCode::RootMismatch, None, None));
    }

    #[test]
    fn changed_proof_index_or_missing_node_is_proof_invalid() {
        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.proof, 2, r#""index":3"#, r#""index":4"#);
        assert_eq!(fault(&b), (FaultCode::ProofInvalid, None, None));

        let mut b = filtered(DataFormat::Jsonl);
        let ls = lines(&b.proof);
        b.proof = ls[..5].iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
        assert_eq!(fault(&b), (FaultCode::ProofInvalid, None, None), "the last node dropped");

        let mut b = filtered(DataFormat::Jsonl);
        b.proof.extend_from_slice(format!("{{\"level\":0,\"index\":13,\"hash\":\"{}\"}}\n", Hash([1; 32])).as_bytes());
        assert_eq!(fault(&b), (FaultCode::ProofInvalid, None, None), "a node past the tree");

        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.proof, 0, r#""level":0"#, r#""level":64"#);
        assert_eq!(fault(&b), (FaultCode::ProofInvalid, None, None), "a node outside any tree");
    }

    #[test]
    fn proof_node_covering_a_row_is_proof_invalid() {
        let log = Log::new(13);
        let mut b = filtered(DataFormat::Jsonl);
        // Replace the nodes of [2, 4) and [6, 8) by one of [0, 8), which covers rows 1, 4 and 5.
        let big = NodeId { level: 3, index: 0 };
        let mut proof = Vec::new();
        encode_proof_node(big, &log.tree().node(big).expect("stored"), &mut proof);
        b.proof = proof;
        assert_eq!(fault(&b), (FaultCode::ProofInvalid, None, None));
    }

    #[test]
    fn row_faults_come_before_proof_faults() {
        let mut b = filtered(DataFormat::Jsonl);
        b.proof.clear();
        edit_line(&mut b.data, 3, "user.login.9", "user.logon.9");
        assert_eq!(fault(&b), (FaultCode::ContentDigest, Some(4), Some(9)));
    }

    #[test]
    fn appended_empty_line_is_a_malformed_row_after_the_last() {
        for (format, gzip) in VARIANTS {
            let log = Log::new(13);
            let mut b = bundle(&log, format, gzip, &FILTERED);
            if gzip {
                b.data.extend(gzip_member(b"\n").expect("gzip"));
            } else {
                b.data.push(b'\n');
            }
            assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(5), None), "{format:?}, gzip {gzip}");
        }
    }

    #[test]
    fn empty_line_between_rows_and_missing_final_newline_are_malformed() {
        for format in [DataFormat::Jsonl, DataFormat::Csv] {
            let skip = usize::from(format == DataFormat::Csv);
            let mut b = filtered(format);
            let mut ls = lines(&b.data);
            ls.insert(skip + 2, String::new());
            b.data = ls.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
            assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(3), None), "{format:?}: empty line");

            let mut b = filtered(format);
            b.data.pop();
            assert_eq!(fault(&b), (FaultCode::RowMalformed, Some(4), None), "{format:?}: no final newline");
        }
    }

    #[test]
    fn csv_with_another_header_is_row_malformed() {
        let mut b = filtered(DataFormat::Csv);
        edit_line(&mut b.data, 0, "seq,id", "id,seq");
        assert_eq!(fault(&b), (FaultCode::RowMalformed, None, None));
        let mut b = filtered(DataFormat::Csv);
        b.data = b.data.iter().flat_map(|&c| if c == b'\n' { vec![b'\r', b'\n'] } else { vec![c] }).collect();
        assert_eq!(fault(&b).0, FaultCode::RowMalformed, "CRLF line ends");
    }

    #[test]
    fn bytes_no_row_covers_are_caught_by_the_file_digests() {
        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.data, 1, r#"{"seq":4,"#, r#"{"seq": 4,"#);
        assert_eq!(fault(&b), (FaultCode::DataSha256, None, None), "whitespace in a row");

        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.data, 1, r#"{"seq":4,"#, r#"{"seq":4,"extra":1,"#);
        assert_eq!(fault(&b), (FaultCode::DataSha256, None, None), "a member the format does not define");

        let mut b = filtered(DataFormat::Jsonl);
        edit_line(&mut b.proof, 1, r#""level":1,"#, r#""level": 1,"#);
        assert_eq!(fault(&b), (FaultCode::ProofSha256, None, None), "whitespace in a proof line");

        let mut b = filtered(DataFormat::Jsonl);
        edit_manifest(&mut b, |m| m["data"]["bytes"] = json!(1));
        assert_eq!(fault(&b), (FaultCode::DataSha256, None, None), "a wrong size");
    }

    #[test]
    fn changed_gzip_member_is_reported_not_ignored() {
        let mut b = bundle(&Log::new(13), DataFormat::Csv, true, &FILTERED);
        let last = b.data.len() - 10;
        b.data[last] ^= 0xff;
        assert_eq!(fault(&b).0, FaultCode::RowMalformed, "a corrupt member does not decompress");
    }

    #[test]
    fn build_bundle_rejects_rows_out_of_order() {
        let log = Log::new(5);
        let entries = log.rows();
        let input = BundleInput {
            tenant_id: tenant(),
            export_id: Uuid::from_u128(42),
            created_at: String::new(),
            completed_at: String::new(),
            filter: Map::new(),
            data_format: DataFormat::Jsonl,
            gzip: false,
            gzip_member_rows: 100,
            entries: &entries,
            rows: &[3, 2],
            note: String::new(),
        };
        assert!(matches!(build_bundle(&input), Err(ExportError::InvalidInput(_))));
        assert!(matches!(build_bundle(&BundleInput { rows: &[5], ..input }), Err(ExportError::InvalidInput(_))));
    }
}
