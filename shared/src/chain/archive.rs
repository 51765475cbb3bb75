//! The archive format of pruned content: per tenant and pruned partition, a gzip'd JSON Lines
//! file with one line per entry in seq order, and a manifest beside it. An archive verifies
//! offline against the chain: starting from the manifest's `chain_hash_before` (the chain hash of
//! the entry before the first one archived), every line's content digest, leaf hash and chain
//! link are recomputed, and the last chain hash must be the manifest's `last_chain_hash`, which
//! is also the hash the log's skeleton keeps for that seq.
//!
//! A line: `{"seq","id","received_at","content","salt","content_digest","leaf_hash","chain_hash"}`
//! where `content` is the canonical JSON exactly as digested (a string) and `salt` its base64;
//! both are null for an entry erased before it was archived.

use super::entry::Entry;
use super::event::{format_timestamp, parse_timestamp};
use super::hash::Hash;
use super::verify::{ChainVerifier, EntryRecord, Fault, Verified};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One archived entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveLine {
    pub seq: u64,
    pub id: Uuid,
    pub received_at: String,
    pub content: Option<String>,
    pub salt: Option<String>,
    pub content_digest: Hash,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
}

impl ArchiveLine {
    pub fn new(entry: &Entry, leaf_hash: Hash, chain_hash: Hash, content: Option<&str>, salt: Option<&[u8]>) -> Self {
        ArchiveLine {
            seq: entry.seq,
            id: entry.id,
            received_at: format_timestamp(&entry.received_at),
            content: content.map(str::to_owned),
            salt: salt.map(|s| STANDARD.encode(s)),
            content_digest: entry.content_digest,
            leaf_hash,
            chain_hash,
        }
    }
}

/// Why an archive does not verify: a line that does not parse, or the first chain fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error(transparent)]
    Fault(#[from] Fault),
    #[error("the archive ends in chain hash {found}, the manifest says {expected}")]
    EndMismatch { expected: Hash, found: Hash },
}

/// Verifies archived lines (in order) of `tenant` against the chain: from `chain_hash_before`,
/// every digest, leaf and link, gapless from the first line's seq; the end must be
/// `last_chain_hash`.
pub fn verify_archive(
    tenant: Uuid,
    lines: &[ArchiveLine],
    chain_hash_before: Hash,
    last_chain_hash: Hash,
) -> Result<Verified, ArchiveError> {
    let first = lines.first().map_or(0, |l| l.seq);
    let mut verifier = ChainVerifier::new(tenant, first, chain_hash_before);
    for (i, line) in lines.iter().enumerate() {
        let malformed = |message: &str| ArchiveError::Malformed { line: i + 1, message: message.to_owned() };
        let received_at =
            parse_timestamp(&line.received_at).map_err(|_| malformed("received_at is not a timestamp"))?;
        let salt = match &line.salt {
            Some(s) => Some(STANDARD.decode(s).map_err(|_| malformed("salt is not base64"))?),
            None => None,
        };
        let entry =
            Entry { tenant_id: tenant, seq: line.seq, id: line.id, received_at, content_digest: line.content_digest };
        verifier.check(EntryRecord {
            entry: &entry,
            leaf_hash: &line.leaf_hash,
            chain_hash: &line.chain_hash,
            content: line.content.as_deref().map(str::as_bytes),
            salt: salt.as_deref(),
        })?;
    }
    let verified = verifier.finish(None, None)?;
    if verified.chain_hash != last_chain_hash {
        return Err(ArchiveError::EndMismatch { expected: last_chain_hash, found: verified.chain_hash });
    }
    Ok(verified)
}
