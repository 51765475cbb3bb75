//! Re-deriving a tenant's chain from stored entries, one entry at a time in seq order.
//!
//! For each entry the verifier recomputes the content digest from the stored canonical bytes and
//! salt (unless the content was erased), the leaf hash from the canonical entry, and the chain
//! link from the previous chain hash, and checks that seqs follow without gaps. When it starts at
//! seq 0 it also rebuilds the Merkle root from the leaves in O(log n) memory, for comparison with
//! a stored or signed root. It never parses and re-serialises content: it hashes the exact bytes
//! that were stored, which are the exact bytes that were hashed on append.

use super::entry::{content_digest, Entry};
use super::hash::{chain_link, Hash};
use super::merkle::CompactRange;
use uuid::Uuid;

/// What is wrong at a seq.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// The entry at this position has another seq: rows are missing, inserted or reordered.
    SeqOutOfOrder { found: u64 },
    /// The entry belongs to another tenant.
    WrongTenant,
    /// Content or salt no longer hash to the committed content digest.
    ContentModified,
    /// Content present without its salt, or the reverse.
    ContentIncomplete,
    /// The stored leaf hash is not the hash of the entry's fields.
    LeafHashMismatch,
    /// The stored chain hash does not follow from the previous one and this leaf.
    ChainLinkBroken,
    /// The range ended before the expected size: entries are missing at the tail.
    Truncated { expected_size: u64 },
    /// The Merkle root rebuilt from the leaves differs from the expected root.
    RootMismatch,
    /// The root rebuilt from the leaves at a signed checkpoint's size is not the signed root:
    /// history was rewritten, even if every stored hash was recomputed to match.
    CheckpointMismatch { checkpoint_size: u64 },
    /// The latest signed checkpoint itself does not verify with the checkpoint key.
    CheckpointInvalid { checkpoint_size: u64, reason: String },
    /// The chain hash before an already verified position is no longer the one recorded when it
    /// was verified: the verified part of the chain was rewritten.
    VerifiedPrefixChanged { verified_size: u64 },
    /// The service-wide log of tenant heads records a signed head at this tree size whose root
    /// the tenant's tree no longer gives.
    GlobalLogMismatch { tree_size: u64 },
    /// The global log's checkpoint at this size differs from its S3 anchor, or the anchor of a
    /// checkpoint signed long enough ago is missing.
    AnchorMismatch { checkpoint_size: u64, reason: String },
}

impl FaultKind {
    /// A one-line explanation for reports.
    pub fn describe(&self) -> String {
        match self {
            Self::SeqOutOfOrder { found } => {
                format!("expected this seq but found seq {found}: entries missing, inserted or reordered")
            }
            Self::WrongTenant => "the entry belongs to another tenant".into(),
            Self::ContentModified => "the stored content does not match its committed content digest".into(),
            Self::ContentIncomplete => "content and salt must be stored together or erased together".into(),
            Self::LeafHashMismatch => "the stored leaf hash does not match the entry".into(),
            Self::ChainLinkBroken => "the chain hash does not follow from the previous entry".into(),
            Self::Truncated { expected_size } => format!("the chain ends before the expected size {expected_size}"),
            Self::RootMismatch => "the Merkle root rebuilt from the entries differs from the expected root".into(),
            Self::CheckpointInvalid { checkpoint_size, reason } => {
                format!("the checkpoint at tree size {checkpoint_size} does not verify: {reason}")
            }
            Self::CheckpointMismatch { checkpoint_size } => {
                format!("the entries up to here do not give the root signed at tree size {checkpoint_size}")
            }
            Self::GlobalLogMismatch { tree_size } => format!(
                "the service-wide log records a signed head at tree size {tree_size} that these entries do not give"
            ),
            Self::AnchorMismatch { checkpoint_size, reason } => {
                format!(
                    "the global log's checkpoint at tree size {checkpoint_size} disagrees with its S3 anchor: {reason}"
                )
            }
            Self::VerifiedPrefixChanged { verified_size } => format!(
                "the first {verified_size} entries no longer end in the chain hash recorded when they were verified"
            ),
        }
    }
}

/// The first fault found, at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("seq {seq}: {}", kind.describe())]
pub struct Fault {
    pub seq: u64,
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// One stored entry as the verifier sees it.
#[derive(Debug, Clone, Copy)]
pub struct EntryRecord<'a> {
    pub entry: &'a Entry,
    pub leaf_hash: &'a Hash,
    pub chain_hash: &'a Hash,
    pub content: Option<&'a [u8]>,
    pub salt: Option<&'a [u8]>,
}

/// Summary of a verified range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub count: u64,
    /// Of those, entries whose content was erased (digest not recomputable, skeleton checked).
    pub erased: u64,
    /// The next seq after the range.
    pub next_seq: u64,
    /// The chain hash of the last entry checked.
    pub chain_hash: Hash,
    /// The Merkle root over [0, next_seq) when verification started at seq 0.
    pub root: Option<Hash>,
}

/// Streaming verifier for one tenant.
#[derive(Debug)]
pub struct ChainVerifier {
    tenant: Uuid,
    next_seq: u64,
    prev_chain: Hash,
    frontier: Option<CompactRange>,
    /// A signed checkpoint the range must match: at that size the rebuilt root must be its root.
    checkpoint: Option<(u64, Hash)>,
    count: u64,
    erased: u64,
}

impl ChainVerifier {
    /// Starts at `from_seq`, whose predecessor's chain hash is `prev_chain` (GENESIS for 0).
    pub fn new(tenant: Uuid, from_seq: u64, prev_chain: Hash) -> Self {
        ChainVerifier {
            tenant,
            next_seq: from_seq,
            prev_chain,
            frontier: (from_seq == 0).then(CompactRange::default),
            checkpoint: None,
            count: 0,
            erased: 0,
        }
    }

    /// Also checks the range against a signed checkpoint of the tree at `size` with root `root`:
    /// the root rebuilt from the entries at that size must be the signed one, and the range must
    /// reach that size. Only a verifier that starts at seq 0 rebuilds roots; for others this
    /// checks the size alone.
    pub fn with_checkpoint(mut self, size: u64, root: Hash) -> Self {
        self.checkpoint = Some((size, root));
        self
    }

    /// Entries checked so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Checks the next entry.
    pub fn check(&mut self, r: EntryRecord<'_>) -> Result<(), Fault> {
        let seq = self.next_seq;
        let fault = |kind| Err(Fault { seq, kind });
        if r.entry.seq != seq {
            return fault(FaultKind::SeqOutOfOrder { found: r.entry.seq });
        }
        if r.entry.tenant_id != self.tenant {
            return fault(FaultKind::WrongTenant);
        }
        match (r.content, r.salt) {
            (Some(content), Some(salt)) => {
                if content_digest(salt, content) != r.entry.content_digest {
                    return fault(FaultKind::ContentModified);
                }
            }
            (None, None) => self.erased += 1,
            _ => return fault(FaultKind::ContentIncomplete),
        }
        let leaf = r.entry.leaf_hash();
        if leaf != *r.leaf_hash {
            return fault(FaultKind::LeafHashMismatch);
        }
        let link = chain_link(&self.prev_chain, &leaf);
        if link != *r.chain_hash {
            return fault(FaultKind::ChainLinkBroken);
        }
        if let Some(f) = &mut self.frontier {
            f.push(leaf);
            if let Some((size, signed_root)) = self.checkpoint {
                if f.size() == size && f.root() != signed_root {
                    return fault(FaultKind::CheckpointMismatch { checkpoint_size: size });
                }
            }
        }
        self.prev_chain = link;
        self.next_seq += 1;
        self.count += 1;
        Ok(())
    }

    /// Ends the range, checking that it reached `expected_size` and, when given and rebuilt,
    /// that the Merkle root matches `expected_root`.
    pub fn finish(self, expected_size: Option<u64>, expected_root: Option<&Hash>) -> Result<Verified, Fault> {
        let signed_size = self.checkpoint.map(|(size, _)| size);
        if let Some(size) = expected_size.max(signed_size) {
            if self.next_seq < size {
                return Err(Fault { seq: self.next_seq, kind: FaultKind::Truncated { expected_size: size } });
            }
        }
        let root = self.frontier.as_ref().map(CompactRange::root);
        if let (Some(expected), Some(root)) = (expected_root, root) {
            if *expected != root {
                return Err(Fault { seq: self.next_seq.saturating_sub(1), kind: FaultKind::RootMismatch });
            }
        }
        Ok(Verified {
            count: self.count,
            erased: self.erased,
            next_seq: self.next_seq,
            chain_hash: self.prev_chain,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::entry::{link_entries, SALT_LEN};
    use crate::chain::event::parse_timestamp;
    use crate::chain::hash::{node_hash, sha256, GENESIS};

    struct Row {
        entry: Entry,
        leaf: Hash,
        chain: Hash,
        content: Option<Vec<u8>>,
        salt: Option<Vec<u8>>,
    }

    fn tenant() -> Uuid {
        Uuid::from_u128(7)
    }

    fn rows(n: u64) -> Vec<Row> {
        let entries: Vec<(Entry, Vec<u8>)> = (0..n)
            .map(|seq| {
                let content = format!(r#"{{"action":"a{seq}"}}"#).into_bytes();
                let entry = Entry {
                    tenant_id: tenant(),
                    seq,
                    id: Uuid::from_u128(1000 + u128::from(seq)),
                    received_at: parse_timestamp("2026-11-24T10:00:00Z").expect("ts"),
                    content_digest: content_digest(&[seq as u8; SALT_LEN], &content),
                };
                (entry, content)
            })
            .collect();
        let linked = link_entries(GENESIS, entries.iter().map(|(e, _)| e));
        entries
            .into_iter()
            .zip(linked)
            .map(|((entry, content), l)| Row {
                salt: Some(vec![entry.seq as u8; SALT_LEN]),
                entry,
                leaf: l.leaf_hash,
                chain: l.chain_hash,
                content: Some(content),
            })
            .collect()
    }

    fn run(rows: &[Row], expected_size: Option<u64>) -> Result<Verified, Fault> {
        run_from(ChainVerifier::new(tenant(), 0, GENESIS), rows, expected_size)
    }

    fn run_from(mut v: ChainVerifier, rows: &[Row], expected_size: Option<u64>) -> Result<Verified, Fault> {
        for r in rows {
            v.check(EntryRecord {
                entry: &r.entry,
                leaf_hash: &r.leaf,
                chain_hash: &r.chain,
                content: r.content.as_deref(),
                salt: r.salt.as_deref(),
            })?;
        }
        v.finish(expected_size, None)
    }

    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaves[0],
            n => {
                // RFC 9162: split at the largest power of two smaller than n.
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn intact_chain_verifies_and_rebuilds_the_root() {
        for n in [0u64, 1, 2, 3, 7, 8, 9, 33] {
            let rs = rows(n);
            let v = run(&rs, Some(n)).expect("intact");
            assert_eq!(v.count, n);
            let leaves: Vec<Hash> = rs.iter().map(|r| r.leaf).collect();
            assert_eq!(v.root, Some(naive_root(&leaves)), "size {n}");
        }
    }

    #[test]
    fn detects_modified_content_at_its_seq() {
        let mut rs = rows(5);
        rs[3].content = Some(br#"{"action":"evil"}"#.to_vec());
        assert_eq!(run(&rs, None).expect_err("tampered"), Fault { seq: 3, kind: FaultKind::ContentModified });
    }

    #[test]
    fn detects_deleted_swapped_and_inserted_rows() {
        let mut rs = rows(5);
        rs.remove(2);
        assert_eq!(run(&rs, None).expect_err("gap").kind, FaultKind::SeqOutOfOrder { found: 3 });
        let mut rs = rows(5);
        rs.swap(1, 2);
        assert_eq!(run(&rs, None).expect_err("swap"), Fault { seq: 1, kind: FaultKind::SeqOutOfOrder { found: 2 } });
    }

    #[test]
    fn detects_recomputed_leaf_without_relinking() {
        let mut rs = rows(4);
        rs[2].entry.received_at += chrono::Duration::seconds(1);
        rs[2].leaf = rs[2].entry.leaf_hash();
        assert_eq!(run(&rs, None).expect_err("relinked").kind, FaultKind::ChainLinkBroken);
    }

    #[test]
    fn erased_content_still_verifies() {
        let mut rs = rows(4);
        rs[1].content = None;
        rs[1].salt = None;
        let v = run(&rs, None).expect("erasure keeps the skeleton valid");
        assert_eq!(v.erased, 1);
        rs[2].salt = None;
        assert_eq!(run(&rs, None).expect_err("half erased").kind, FaultKind::ContentIncomplete);
    }

    #[test]
    fn a_recomputed_chain_is_caught_by_the_signed_checkpoint() {
        let original = rows(6);
        let signed_root = naive_root(&original[..4].iter().map(|r| r.leaf).collect::<Vec<_>>());
        // A consistent rewrite: different content at seq 2 with every later hash recomputed.
        let mut forged = rows(6);
        forged[2].entry.content_digest = content_digest(&[2u8; SALT_LEN], br#"{"action":"forged"}"#);
        forged[2].content = Some(br#"{"action":"forged"}"#.to_vec());
        let relinked = link_entries(GENESIS, forged.iter().map(|r| &r.entry));
        for (r, l) in forged.iter_mut().zip(relinked) {
            r.leaf = l.leaf_hash;
            r.chain = l.chain_hash;
        }
        assert!(run(&forged, None).is_ok(), "internally the rewrite is consistent");
        let check =
            |rs: &[Row]| run_from(ChainVerifier::new(tenant(), 0, GENESIS).with_checkpoint(4, signed_root), rs, None);
        check(&original).expect("the original matches its checkpoint");
        assert_eq!(
            check(&forged).expect_err("rewrite"),
            Fault { seq: 3, kind: FaultKind::CheckpointMismatch { checkpoint_size: 4 } }
        );
        // Rows removed after the checkpoint was signed: the range ends before the signed size.
        assert_eq!(
            check(&original[..3]).expect_err("truncated"),
            Fault { seq: 3, kind: FaultKind::Truncated { expected_size: 4 } }
        );
    }

    #[test]
    fn detects_truncated_tail() {
        let rs = rows(4);
        assert_eq!(
            run(&rs[..3], Some(4)).expect_err("short"),
            Fault { seq: 3, kind: FaultKind::Truncated { expected_size: 4 } }
        );
    }
}
