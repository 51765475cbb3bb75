//! The RFC 9162 Merkle tree over a log's leaf hashes: roots, inclusion and consistency proofs,
//! their verification, and the append step that produces the nodes to store.
//!
//! The store keeps every leaf hash and the *perfect* subtree hashes (2^L leaves starting at a
//! multiple of 2^L) of every eighth level once that subtree is complete; the others are derived
//! from those ([`derive_nodes`]). The ragged right edge of the tree is never
//! stored, because it changes with every append. Every hash the RFC asks for (a root, an
//! audit-path sibling, a consistency-proof node) is the Merkle tree hash of a leaf range
//! `[start, end)` that the RFC's recursive split produces, and such a range is a run of perfect
//! subtrees of strictly decreasing size. So reading is two-phase and costs one query: a `*_nodes`
//! function names the stored nodes a proof needs (O(log n) of them), the caller fetches them all
//! at once, and the matching builder folds them into the proof. Keeping the choice of nodes here,
//! and not in the SQL, means the store cannot get the tree's shape wrong.
//!
//! Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step, so a third party can
//! check a proof against the RFC text alone. Everything here is pure: no I/O, and no imports from
//! the rest of the crate except the hash primitives.

use super::hash::{node_hash, sha256, Hash};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A stored tree node: the perfect subtree of `2^level` leaves starting at leaf `index * 2^level`.
/// Level 0 is the leaf `index` itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    /// The leaf hash at `index`.
    pub const fn leaf(index: u64) -> Self {
        NodeId { level: 0, index }
    }
}

/// The store keeps the leaves and the perfect subtrees whose level is a multiple of this (the
/// levels of C2SP tlog-tiles' tiles, `chain::tiles`): about one row per 256 leaves instead of one
/// per leaf. Any other perfect subtree is derived from at most 128 stored nodes below it
/// ([`stored_sources`], [`derive_nodes`]).
pub const STORED_LEVEL_STEP: u8 = 8;

/// Whether nodes of `level` are stored (leaves, and every [`STORED_LEVEL_STEP`]th level).
pub const fn is_stored_level(level: u8) -> bool {
    level % STORED_LEVEL_STEP == 0
}

/// The stored nodes `ids` are derived from: each id itself if its level is stored, else the
/// `2^(level % 8)` nodes of the stored level below it. Sorted, without repeats.
pub fn stored_sources(ids: &[NodeId]) -> Vec<NodeId> {
    let mut out = std::collections::BTreeSet::new();
    for id in ids {
        let k = id.level % STORED_LEVEL_STEP;
        let base = id.level - k;
        let first = id.index << k;
        for index in first..first + (1u64 << k) {
            out.insert(NodeId { level: base, index });
        }
    }
    out.into_iter().collect()
}

/// The hashes of `ids` from the stored nodes in `stored` (as [`stored_sources`] named them); an
/// id whose sources are not all there is left out, so a builder reports it missing.
pub fn derive_nodes(ids: &[NodeId], stored: &impl NodeLookup) -> HashMap<NodeId, Hash> {
    let mut out = HashMap::with_capacity(ids.len());
    'ids: for id in ids {
        let k = id.level % STORED_LEVEL_STEP;
        let base = id.level - k;
        let first = id.index << k;
        let mut row = Vec::with_capacity(1 << k);
        for index in first..first + (1u64 << k) {
            match stored.node(NodeId { level: base, index }) {
                Some(h) => row.push(h),
                None => continue 'ids,
            }
        }
        while row.len() > 1 {
            row = row.chunks(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
        }
        out.insert(*id, row[0]);
    }
    out
}

/// Where the builders get stored node hashes from.
///
/// A `HashMap<NodeId, Hash>` or `BTreeMap<NodeId, Hash>` filled from one query works directly, as
/// does a closure `Fn(NodeId) -> Option<Hash>` and [`MemoryTree`]. Returning `None` makes the
/// builder fail with [`MerkleError::MissingNode`] instead of producing a wrong hash.
pub trait NodeLookup {
    fn node(&self, id: NodeId) -> Option<Hash>;
}

impl<S: BuildHasher> NodeLookup for HashMap<NodeId, Hash, S> {
    fn node(&self, id: NodeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

impl NodeLookup for BTreeMap<NodeId, Hash> {
    fn node(&self, id: NodeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

impl<F: Fn(NodeId) -> Option<Hash>> NodeLookup for F {
    fn node(&self, id: NodeId) -> Option<Hash> {
        self(id)
    }
}

/// Why a root or proof could not be built, or a batch not appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    /// The range is empty, or is not one the RFC's split of a tree ever hashes, so it has no
    /// defined Merkle tree hash.
    #[error("leaf range [{start}, {end}) is not a subtree of any RFC 9162 tree")]
    InvalidRange { start: u64, end: u64 },
    #[error("stored node (level {}, index {}) was not supplied", .0.level, .0.index)]
    MissingNode(NodeId),
    #[error("a tree of size {size} has {expected} frontier hashes, but {actual} were supplied")]
    FrontierMismatch { size: u64, expected: usize, actual: usize },
    #[error("appending would take the tree past 2^64 - 1 leaves")]
    TreeFull,
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error("the proof has {actual} hashes, but these sizes need {expected}")]
    WrongLength { expected: usize, actual: usize },
    /// The proof leads to a different old root than the one claimed for the old tree size.
    #[error("the proof does not lead to the claimed old root")]
    OldRootMismatch,
    /// The proof leads to a different root than the one claimed (the new root, for consistency).
    #[error("the proof does not lead to the claimed root")]
    RootMismatch,
}

/// The result of [`append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Every perfect node at level 1 or above that the batch completed, to be stored beside the
    /// leaf hashes. Listed in completion order, so each level's indices ascend.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The root of the tree after the batch.
    pub root: Hash,
    /// The hashes of [`root_nodes`] for the new size: the `frontier` for the next batch.
    pub frontier: Vec<Hash>,
    /// The tree size after the batch.
    pub size: u64,
}

/// The root of the empty tree, which RFC 9162 defines as the SHA-256 of nothing.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The perfect subtrees that make up leaves `[start, end)`, left to right, sizes strictly
/// decreasing.
///
/// This is the RFC 9162 split unrolled: the hash of a non-perfect range is the node hash of its
/// largest perfect left part and the hash of the rest. Only ranges that split produces have a
/// defined hash: non-empty ranges whose start is a multiple of the smallest power of two at least
/// as large as the range. Any other range is [`MerkleError::InvalidRange`].
pub fn perfect_subtrees(start: u64, end: u64) -> Result<Vec<NodeId>, MerkleError> {
    check_range(start, end)?;
    let mut ids: Vec<NodeId> = subtrees_right_to_left(start, end).collect();
    ids.reverse();
    Ok(ids)
}

/// The Merkle tree hash of leaves `[start, end)`, folded right to left from the hashes of
/// [`perfect_subtrees`].
pub fn range_hash(start: u64, end: u64, nodes: &impl NodeLookup) -> Result<Hash, MerkleError> {
    check_range(start, end)?;
    fold_range(start, end, nodes)
}

/// The stored nodes the root of a tree of `size` leaves is made of (none for the empty tree).
/// Their hashes, in this order, are also the frontier [`append`] takes.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    if size == 0 {
        return Vec::new();
    }
    let mut ids: Vec<NodeId> = subtrees_right_to_left(0, size).collect();
    ids.reverse();
    ids
}

/// The root of a tree of `size` leaves, from the hashes of [`root_nodes`].
pub fn root(size: u64, nodes: &impl NodeLookup) -> Result<Hash, MerkleError> {
    if size == 0 {
        return Ok(empty_root());
    }
    fold_range(0, size, nodes)
}

/// The stored nodes [`inclusion_proof`] needs, in proof order.
///
/// Every proof element but at most one is itself a perfect node; the exception is the ragged
/// right-edge sibling, which takes one node per set bit of its size. So the list stays O(log n).
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<NodeId>, MerkleError> {
    let ranges = inclusion_ranges(index, size)?;
    Ok(nodes_of(&ranges))
}

/// The audit path of RFC 9162 section 2.1.3.1 for leaf `index` in a tree of `size` leaves,
/// ordered from the leaf's sibling up to the root's child.
pub fn inclusion_proof(index: u64, size: u64, nodes: &impl NodeLookup) -> Result<Vec<Hash>, MerkleError> {
    inclusion_ranges(index, size)?.iter().map(|&(start, end)| fold_range(start, end, nodes)).collect()
}

/// The stored nodes [`consistency_proof`] needs, in proof order. Like an inclusion proof, at most
/// one element is a ragged range, so the list stays O(log n).
pub fn consistency_proof_nodes(old_size: u64, new_size: u64) -> Result<Vec<NodeId>, MerkleError> {
    let ranges = consistency_ranges(old_size, new_size)?;
    Ok(nodes_of(&ranges))
}

/// The consistency proof of RFC 9162 section 2.1.4.1 between trees of `old_size` and `new_size`
/// leaves. It is empty when `old_size` is 0 or equals `new_size`: the empty tree is a prefix of
/// every tree, and a tree is consistent with itself.
pub fn consistency_proof(old_size: u64, new_size: u64, nodes: &impl NodeLookup) -> Result<Vec<Hash>, MerkleError> {
    consistency_ranges(old_size, new_size)?.iter().map(|&(start, end)| fold_range(start, end, nodes)).collect()
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`, following
/// RFC 9162 section 2.1.3.2.
///
/// A root does not commit to its tree size: the same path can prove the same leaf under another
/// size whose tree gives the leaf the same path shape (leaf 0 of 3 and of 4, for example). So
/// `size` must come from the same signed checkpoint as `root`, never from the party that sent the
/// proof.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Step 2. `fnode` and `snode` are the RFC's `fn` and `sn` (`fn` is a keyword).
    let mut fnode = index;
    let mut snode = size - 1;
    // Step 3.
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        if snode == 0 {
            return Err(inclusion_length_error(index, size, proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    if snode != 0 {
        return Err(inclusion_length_error(index, size, proof.len()));
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root`, following RFC 9162 section 2.1.4.2.
///
/// The RFC's algorithm covers `0 < old_size < new_size`. For the two cases it leaves out, the proof
/// must be empty: a tree is consistent with itself (the roots must then be equal), and the empty
/// tree is a prefix of every tree (its root must then be SHA-256 of nothing, as RFC 9162 defines
/// it). As with inclusion, the sizes must come from the signed checkpoints the roots came from: a
/// proof between sizes 1 and 3 also passes as one between 1 and 4 with the same two roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { expected: 0, actual: proof.len() });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(ProofError::OldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let length_error = || consistency_length_error(old_size, new_size, proof.len());
    // Step 1.
    if proof.is_empty() {
        return Err(length_error());
    }
    // Step 2. Prepending is done by chaining, so nothing is copied.
    let seed = old_size.is_power_of_two().then_some(old_root);
    let mut path = seed.into_iter().chain(proof);
    // Step 3.
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    // Step 4.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5. The path is never empty here: step 1 made sure of that.
    let Some(first) = path.next() else {
        return Err(length_error());
    };
    let mut fr = *first;
    let mut sr = *first;
    // Step 6.
    for c in path {
        if snode == 0 {
            return Err(length_error());
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(length_error());
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Appends `leaves` (leaf hashes for indices `first_index..`) to a tree whose [`root_nodes`] have
/// the hashes `frontier`, and returns the perfect nodes the batch completes, the new root and the
/// new frontier.
///
/// The frontier is all the old tree the new nodes depend on, so a batch needs no reads beyond it.
/// Work is O(batch + log n): each leaf completes as many nodes as its index has trailing one bits,
/// and the output vector is sized exactly up front.
pub fn append(frontier: &[Hash], first_index: u64, leaves: &[Hash]) -> Result<Appended, MerkleError> {
    let expected = first_index.count_ones() as usize;
    if frontier.len() != expected {
        return Err(MerkleError::FrontierMismatch { size: first_index, expected, actual: frontier.len() });
    }
    let new_size = u64::try_from(leaves.len())
        .ok()
        .and_then(|count| first_index.checked_add(count))
        .ok_or(MerkleError::TreeFull)?;
    // Each leaf i completes trailing_ones(i) nodes, and summed over [a, b) that is
    // popcount(a) + (b - a) - popcount(b).
    let completed = expected + leaves.len() - new_size.count_ones() as usize;
    let mut nodes = Vec::with_capacity(completed);
    // The stack holds the perfect subtrees of the current size, largest first: one per set bit,
    // plus room for the leaf being added.
    let mut stack: Vec<Hash> = Vec::with_capacity(65);
    stack.extend_from_slice(frontier);
    let mut size = first_index;
    for leaf in leaves {
        // Leaf `size` closes one subtree per trailing one bit of `size`; those subtrees are the
        // top of the stack, and the stack holds popcount(size) >= trailing_ones(size) entries.
        let merges = size.trailing_ones() as usize;
        size += 1;
        let mut acc = *leaf;
        let keep = stack.len() - merges;
        for (below, left) in stack.drain(keep..).rev().enumerate() {
            acc = node_hash(&left, &acc);
            let level = below + 1;
            let id = NodeId { level: level as u8, index: (size >> level) - 1 };
            nodes.push((id, acc));
        }
        stack.push(acc);
    }
    Ok(Appended { nodes, root: fold_frontier(&stack), frontier: stack, size: new_size })
}

/// A compact range over leaves [0, n): the perfect subtrees that make up the tree, largest
/// first, as (height, hash). Absorbs leaves one at a time in O(1) amortised time and O(log n)
/// memory, so a verifier can rebuild the root of any number of leaves it streams past.
#[derive(Debug, Clone, Default)]
pub struct CompactRange {
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl CompactRange {
    /// Appends the next leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// Leaves absorbed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 9162 root of the leaves absorbed so far.
    pub fn root(&self) -> Hash {
        fold_frontier(&self.stack.iter().map(|&(_, h)| h).collect::<Vec<_>>())
    }
}

/// A whole tree in memory: every leaf hash and every stored perfect node, written through
/// [`append`] exactly as the database is. Tests and benchmarks use it as the reference store.
#[derive(Debug, Clone)]
pub struct MemoryTree {
    /// `levels[l][i]` is the hash of `NodeId { level: l, index: i }`; level 0 holds the leaves.
    levels: Vec<Vec<Hash>>,
    frontier: Vec<Hash>,
    root: Hash,
}

impl Default for MemoryTree {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> Self {
        MemoryTree { levels: vec![Vec::new()], frontier: Vec::new(), root: empty_root() }
    }

    /// Appends leaf hashes and returns the new root.
    pub fn append(&mut self, leaves: &[Hash]) -> Result<Hash, MerkleError> {
        let appended = append(&self.frontier, self.size(), leaves)?;
        self.levels[0].extend_from_slice(leaves);
        for (id, hash) in appended.nodes {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            self.levels[level].push(hash);
        }
        self.frontier = appended.frontier;
        self.root = appended.root;
        Ok(self.root)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The leaf hashes in index order.
    pub fn leaves(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// The hashes of [`root_nodes`] for the current size, as [`append`] takes them.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }
}

impl NodeLookup for MemoryTree {
    fn node(&self, id: NodeId) -> Option<Hash> {
        let index = usize::try_from(id.index).ok()?;
        self.levels.get(usize::from(id.level))?.get(index).copied()
    }
}

/// Rejects ranges that are empty or that the RFC split never produces (see [`perfect_subtrees`]).
fn check_range(start: u64, end: u64) -> Result<(), MerkleError> {
    let invalid = MerkleError::InvalidRange { start, end };
    if start >= end {
        return Err(invalid);
    }
    let aligned = match (end - start).checked_next_power_of_two() {
        Some(width) => start % width == 0,
        // Only a range starting at 0 can be longer than 2^63.
        None => start == 0,
    };
    if aligned {
        Ok(())
    } else {
        Err(invalid)
    }
}

/// The perfect subtrees of a range that passed [`check_range`], smallest (rightmost) first. The
/// smallest piece is the lowest set bit of the range's length, taken off its end; alignment of
/// `start` makes every piece aligned too.
fn subtrees_right_to_left(start: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let mut end = end;
    std::iter::from_fn(move || {
        if end <= start {
            return None;
        }
        let level = (end - start).trailing_zeros();
        end -= 1 << level;
        Some(NodeId { level: level as u8, index: end >> level })
    })
}

/// Folds the perfect subtrees of a valid range from the right: `H(a, H(b, c))` for pieces a, b, c.
fn fold_range(start: u64, end: u64, nodes: &impl NodeLookup) -> Result<Hash, MerkleError> {
    let fetch = |id: NodeId| nodes.node(id).ok_or(MerkleError::MissingNode(id));
    let mut pieces = subtrees_right_to_left(start, end);
    let Some(last) = pieces.next() else {
        return Err(MerkleError::InvalidRange { start, end });
    };
    let mut acc = fetch(last)?;
    for id in pieces {
        acc = node_hash(&fetch(id)?, &acc);
    }
    Ok(acc)
}

/// The root of a tree from its frontier, folded from the right like [`fold_range`].
fn fold_frontier(frontier: &[Hash]) -> Hash {
    let mut pieces = frontier.iter().rev();
    match pieces.next() {
        None => empty_root(),
        Some(last) => pieces.fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

/// The largest power of two strictly below `n`, the split point of RFC 9162 section 2.1.1.
/// Callers guarantee `n >= 2`.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The ranges whose hashes form the audit path of leaf `index` (RFC 9162 section 2.1.3.1), leaf
/// first. The recursion PATH(m, D[0:n]) is unrolled from the root down and then reversed, since
/// the RFC appends each level's sibling after the deeper path.
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut ranges = Vec::with_capacity(64);
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        let mid = start + split_point(end - start);
        if index < mid {
            ranges.push((mid, end));
            end = mid;
        } else {
            ranges.push((start, mid));
            start = mid;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The ranges whose hashes form the consistency proof of RFC 9162 section 2.1.4.1, unrolling
/// SUBPROOF(m, D[start:end], b) from the root down, then reversed into the RFC's order.
fn consistency_ranges(old_size: u64, new_size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
    }
    let mut ranges = Vec::with_capacity(64);
    if old_size == 0 || old_size == new_size {
        return Ok(ranges);
    }
    // `m` is the old size relative to `start`. `complete` is the RFC's `b`: true while the first
    // `m` leaves of the range are the whole old tree, whose hash (the old root) the verifier
    // already has, so the proof leaves it out.
    let (mut start, mut end, mut m, mut complete) = (0, new_size, old_size, true);
    loop {
        if m == end - start {
            if !complete {
                ranges.push((start, end));
            }
            break;
        }
        let k = split_point(end - start);
        if m <= k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
            m -= k;
            complete = false;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The perfect nodes of each range, in range order.
fn nodes_of(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let mut ids = Vec::with_capacity(ranges.len() + 64);
    for &(start, end) in ranges {
        let first = ids.len();
        ids.extend(subtrees_right_to_left(start, end));
        ids[first..].reverse();
    }
    ids
}

fn inclusion_length_error(index: u64, size: u64, actual: usize) -> ProofError {
    let expected = inclusion_ranges(index, size).map_or(0, |ranges| ranges.len());
    ProofError::WrongLength { expected, actual }
}

fn consistency_length_error(old_size: u64, new_size: u64, actual: usize) -> ProofError {
    let expected = consistency_ranges(old_size, new_size).map_or(0, |ranges| ranges.len());
    ProofError::WrongLength { expected, actual }
}

#[cfg(test)]
// A test should stop at the first unexpected error, and `unwrap` says so most briefly.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::chain::hash::leaf_hash;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::sync::OnceLock;

    #[test]
    fn every_perfect_subtree_derives_from_the_stored_levels_alone() {
        let leaves: Vec<Hash> = (0u32..1000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tree = MemoryTree::new();
        tree.append(&leaves).unwrap();
        let stored = |id: NodeId| if is_stored_level(id.level) { tree.node(id) } else { None };
        let mut checked = 0;
        for level in 0u8..10 {
            for index in 0..(1000u64 >> level) {
                let id = NodeId { level, index };
                let sources = stored_sources(&[id]);
                assert!(sources.iter().all(|s| is_stored_level(s.level)), "{id:?}");
                assert_eq!(sources.len(), 1 << (level % STORED_LEVEL_STEP), "{id:?}");
                assert_eq!(derive_nodes(&[id], &stored).get(&id).copied(), tree.node(id), "{id:?}");
                checked += 1;
            }
        }
        assert!(checked > 1900);
        // A missing source leaves the node out rather than giving a wrong hash.
        let holed = |id: NodeId| if id == NodeId::leaf(5) { None } else { stored(id) };
        assert!(derive_nodes(&[NodeId { level: 3, index: 0 }], &holed).is_empty());
    }

    // ---- The RFC 9162 definitions, written as directly as possible, for cross-checks. ----

    /// The split point k of RFC 9162 section 2.1.1, found the slow way.
    fn rfc_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D[n]) of RFC 9162 section 2.1.1, over leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaves[0],
            n => {
                let k = rfc_split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// PATH(m, D[n]) of RFC 9162 section 2.1.3.1.
    fn rfc_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = rfc_split(n);
        let (mut path, sibling) = if m < k {
            (rfc_path(m, &leaves[..k]), mth(&leaves[k..]))
        } else {
            (rfc_path(m - k, &leaves[k..]), mth(&leaves[..k]))
        };
        path.push(sibling);
        path
    }

    /// SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1.
    fn rfc_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(leaves)] };
        }
        let k = rfc_split(n);
        let (mut proof, sibling) = if m <= k {
            (rfc_subproof(m, &leaves[..k], b), mth(&leaves[k..]))
        } else {
            (rfc_subproof(m - k, &leaves[k..], false), mth(&leaves[..k]))
        };
        proof.push(sibling);
        proof
    }

    /// PROOF(m, D[n]), with the empty proof for the empty old tree.
    fn rfc_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        if m == 0 {
            Vec::new()
        } else {
            rfc_subproof(m, leaves, true)
        }
    }

    // ---- Fixtures. ----

    fn test_leaf(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    fn tree_of(size: u64) -> MemoryTree {
        let leaves: Vec<Hash> = (0..size).map(test_leaf).collect();
        let mut tree = MemoryTree::new();
        tree.append(&leaves).unwrap();
        tree
    }

    const EXHAUSTIVE_MAX: u64 = 130;
    const PROPTEST_MAX: u64 = 3000;

    /// One tree serves every smaller size too: a smaller tree's stored nodes are a subset of a
    /// larger one's, exactly as in the database.
    fn exhaustive_tree() -> &'static MemoryTree {
        static TREE: OnceLock<MemoryTree> = OnceLock::new();
        TREE.get_or_init(|| tree_of(EXHAUSTIVE_MAX))
    }

    fn proptest_tree() -> &'static MemoryTree {
        static TREE: OnceLock<MemoryTree> = OnceLock::new();
        TREE.get_or_init(|| tree_of(PROPTEST_MAX))
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut bytes = hash.0;
        bytes[bit / 8] ^= 1 << (bit % 8);
        Hash(bytes)
    }

    fn usize_of(n: u64) -> usize {
        usize::try_from(n).unwrap()
    }

    /// Which side of the leaf each audit-path element sits on, leaf first; `true` is left.
    fn path_shape(index: u64, size: u64) -> Vec<bool> {
        inclusion_ranges(index, size).unwrap().iter().map(|&(_, end)| end <= index).collect()
    }

    /// For each consistency-proof element, whether it lies within the old tree (and so also
    /// feeds the rebuilt old root) or beyond it.
    fn consistency_shape(old_size: u64, new_size: u64) -> Vec<bool> {
        consistency_ranges(old_size, new_size).unwrap().iter().map(|&(_, end)| end <= old_size).collect()
    }

    /// Every node a proof may ask for must already be stored when the tree has `size` leaves.
    fn assert_all_stored(ids: &[NodeId], size: u64) {
        for id in ids {
            assert!(id.level < 64 && (id.index + 1) << id.level <= size, "{id:?} not complete at {size}");
        }
    }

    // ---- Published vectors. ----

    #[derive(serde::Deserialize)]
    struct Vectors {
        leaf_inputs: Vec<String>,
        node_hashes: Vec<Vec<Hash>>,
        roots: Vec<Hash>,
        inclusion_proofs: Vec<InclusionVector>,
        consistency_proofs: Vec<ConsistencyVector>,
    }

    #[derive(serde::Deserialize)]
    struct InclusionVector {
        leaf_index: u64,
        tree_size: u64,
        proof: Vec<Hash>,
    }

    #[derive(serde::Deserialize)]
    struct ConsistencyVector {
        old_size: u64,
        new_size: u64,
        proof: Vec<Hash>,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(include_str!("../../../test-vectors/third-party/rfc6962-merkle.json")).unwrap()
    }

    fn vector_tree(vectors: &Vectors) -> MemoryTree {
        let leaves: Vec<Hash> =
            vectors.leaf_inputs.iter().map(|input| leaf_hash(&hex::decode(input).unwrap())).collect();
        let mut tree = MemoryTree::new();
        tree.append(&leaves).unwrap();
        tree
    }

    #[test]
    fn compact_range_root_matches_the_stored_tree_at_every_size() {
        let mut tree = MemoryTree::new();
        let mut range = CompactRange::default();
        assert_eq!(range.root(), empty_root());
        for i in 0u32..300 {
            let leaf = crate::chain::hash::leaf_hash(&i.to_be_bytes());
            tree.append(&[leaf]).expect("append");
            range.push(leaf);
            assert_eq!((range.size(), range.root()), (tree.size(), tree.root()), "size {}", i + 1);
        }
    }

    #[test]
    fn roots_and_stored_nodes_match_published_vectors() {
        let vectors = vectors();
        let tree = vector_tree(&vectors);
        assert_eq!(vectors.roots.len(), 9);
        for (size, expected) in vectors.roots.iter().enumerate() {
            let size = size as u64;
            assert_eq!(root(size, &tree).unwrap(), *expected, "root of size {size}");
            assert_eq!(mth(&tree.leaves()[..usize_of(size)]), *expected, "reference root of size {size}");
        }
        for (level, hashes) in vectors.node_hashes.iter().enumerate() {
            for (index, expected) in hashes.iter().enumerate() {
                let id = NodeId { level: level as u8, index: index as u64 };
                assert_eq!(tree.node(id), Some(*expected), "{id:?}");
            }
            let past_end = NodeId { level: level as u8, index: hashes.len() as u64 };
            assert_eq!(tree.node(past_end), None, "nothing beyond the published nodes is stored");
        }
    }

    #[test]
    fn inclusion_proofs_match_published_vectors() {
        let vectors = vectors();
        let tree = vector_tree(&vectors);
        for v in &vectors.inclusion_proofs {
            let proof = inclusion_proof(v.leaf_index, v.tree_size, &tree).unwrap();
            assert_eq!(proof, v.proof, "index {} size {}", v.leaf_index, v.tree_size);
            let leaf = tree.leaves()[usize_of(v.leaf_index)];
            let root = vectors.roots[usize_of(v.tree_size)];
            assert_eq!(verify_inclusion(&leaf, v.leaf_index, v.tree_size, &v.proof, &root), Ok(()));
        }
    }

    #[test]
    fn consistency_proofs_match_published_vectors() {
        let vectors = vectors();
        let tree = vector_tree(&vectors);
        for v in &vectors.consistency_proofs {
            let proof = consistency_proof(v.old_size, v.new_size, &tree).unwrap();
            assert_eq!(proof, v.proof, "sizes {} -> {}", v.old_size, v.new_size);
            let old_root = vectors.roots[usize_of(v.old_size)];
            let new_root = vectors.roots[usize_of(v.new_size)];
            assert_eq!(verify_consistency(v.old_size, v.new_size, &old_root, &new_root, &v.proof), Ok(()));
        }
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(empty_root().to_hex(), expected);
        assert_eq!(root(0, &MemoryTree::new()).unwrap().to_hex(), expected);
        assert_eq!(MemoryTree::new().root().to_hex(), expected);
        assert!(root_nodes(0).is_empty());
    }

    // ---- Exhaustive checks against the RFC definitions. ----

    #[test]
    fn every_root_and_inclusion_proof_up_to_130_leaves_follows_the_rfc() {
        let tree = exhaustive_tree();
        let leaves = tree.leaves();
        let mut grown = MemoryTree::new();
        for size in 0..=EXHAUSTIVE_MAX {
            let prefix = &leaves[..usize_of(size)];
            let expected_root = mth(prefix);
            assert_eq!(root(size, tree).unwrap(), expected_root, "root of size {size}");
            assert_eq!(grown.root(), expected_root, "root after {size} single appends");
            assert_all_stored(&root_nodes(size), size);
            for index in 0..size {
                let proof = inclusion_proof(index, size, tree).unwrap();
                assert_eq!(proof, rfc_path(usize_of(index), prefix), "index {index} size {size}");
                let leaf = leaves[usize_of(index)];
                assert_eq!(verify_inclusion(&leaf, index, size, &proof, &expected_root), Ok(()));

                let ids = inclusion_proof_nodes(index, size).unwrap();
                assert_all_stored(&ids, size);
                // At most one element is a ragged range, and it ends at `size`, so it takes fewer
                // nodes than `size` has set bits.
                assert!(ids.len() < proof.len() + size.count_ones() as usize, "{index} {size}");
                let fetched: HashMap<NodeId, Hash> = ids.iter().map(|&id| (id, tree.node(id).unwrap())).collect();
                assert_eq!(inclusion_proof(index, size, &fetched).unwrap(), proof, "fetched only");
            }
            if size < EXHAUSTIVE_MAX {
                grown.append(&[leaves[usize_of(size)]]).unwrap();
            }
        }
    }

    #[test]
    fn every_consistency_proof_up_to_130_leaves_follows_the_rfc() {
        let tree = exhaustive_tree();
        let leaves = tree.leaves();
        for new_size in 0..=EXHAUSTIVE_MAX {
            let prefix = &leaves[..usize_of(new_size)];
            let new_root = root(new_size, tree).unwrap();
            for old_size in 0..=new_size {
                let old_root = root(old_size, tree).unwrap();
                let proof = consistency_proof(old_size, new_size, tree).unwrap();
                assert_eq!(proof, rfc_proof(usize_of(old_size), prefix), "{old_size} -> {new_size}");
                assert_eq!(verify_consistency(old_size, new_size, &old_root, &new_root, &proof), Ok(()));

                let ids = consistency_proof_nodes(old_size, new_size).unwrap();
                assert_all_stored(&ids, new_size);
                assert!(ids.len() <= proof.len() + new_size.count_ones() as usize);
                let fetched: BTreeMap<NodeId, Hash> = ids.iter().map(|&id| (id, tree.node(id).unwrap())).collect();
                assert_eq!(consistency_proof(old_size, new_size, &fetched).unwrap(), proof);
            }
        }
    }

    #[test]
    fn every_rfc_range_up_to_130_leaves_hashes_like_the_definition() {
        // The ranges the RFC's recursion hashes, over every tree size: exactly these must be
        // accepted, and each must hash like MTH of its leaves.
        fn visit(start: u64, end: u64, seen: &mut BTreeSet<(u64, u64)>) {
            seen.insert((start, end));
            if end - start > 1 {
                let k = rfc_split(usize_of(end - start)) as u64;
                visit(start, start + k, seen);
                visit(start + k, end, seen);
            }
        }
        let mut rfc_ranges = BTreeSet::new();
        for size in 1..=EXHAUSTIVE_MAX {
            visit(0, size, &mut rfc_ranges);
        }

        let tree = exhaustive_tree();
        let leaves = tree.leaves();
        let mut accepted = BTreeSet::new();
        for end in 0..=EXHAUSTIVE_MAX {
            for start in 0..=end {
                match range_hash(start, end, tree) {
                    Ok(hash) => {
                        accepted.insert((start, end));
                        assert_eq!(hash, mth(&leaves[usize_of(start)..usize_of(end)]));
                        let ids = perfect_subtrees(start, end).unwrap();
                        assert_eq!(ids.len(), (end - start).count_ones() as usize);
                        assert!(ids.windows(2).all(|pair| pair[0].level > pair[1].level));
                    }
                    Err(err) => {
                        assert_eq!(err, MerkleError::InvalidRange { start, end });
                        assert_eq!(perfect_subtrees(start, end), Err(err));
                    }
                }
            }
        }
        assert_eq!(accepted, rfc_ranges);
    }

    #[test]
    fn memory_tree_stores_exactly_the_complete_perfect_nodes() {
        let tree = exhaustive_tree();
        let leaves = tree.leaves();
        for level in 0..8u8 {
            let width = 1u64 << level;
            let complete = EXHAUSTIVE_MAX / width;
            for index in 0..complete {
                let range = usize_of(index * width)..usize_of((index + 1) * width);
                assert_eq!(tree.node(NodeId { level, index }), Some(mth(&leaves[range])));
            }
            assert_eq!(tree.node(NodeId { level, index: complete }), None, "level {level}");
        }
    }

    // ---- Errors and edge cases. ----

    #[test]
    fn proofs_reject_an_index_at_or_past_the_size() {
        let err = MerkleError::IndexOutOfRange { index: 5, size: 5 };
        assert_eq!(inclusion_proof_nodes(5, 5), Err(err.clone()));
        assert_eq!(inclusion_proof(5, 5, exhaustive_tree()), Err(err));
        assert_eq!(inclusion_proof_nodes(0, 0), Err(MerkleError::IndexOutOfRange { index: 0, size: 0 }));
        let leaf = test_leaf(5);
        assert_eq!(verify_inclusion(&leaf, 5, 5, &[], &leaf), Err(ProofError::IndexOutOfRange { index: 5, size: 5 }));
        assert_eq!(
            verify_inclusion(&leaf, 0, 0, &[], &empty_root()),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
    }

    #[test]
    fn consistency_rejects_sizes_out_of_order() {
        let err = MerkleError::SizesOutOfOrder { old_size: 4, new_size: 3 };
        assert_eq!(consistency_proof_nodes(4, 3), Err(err.clone()));
        assert_eq!(consistency_proof(4, 3, exhaustive_tree()), Err(err));
        let h = test_leaf(0);
        assert_eq!(
            verify_consistency(4, 3, &h, &h, &[]),
            Err(ProofError::SizesOutOfOrder { old_size: 4, new_size: 3 })
        );
    }

    #[test]
    fn builders_name_the_missing_node() {
        let tree = exhaustive_tree();
        let ids = inclusion_proof_nodes(3, 13).unwrap();
        let missing = ids[1];
        let partial = |id: NodeId| if id == missing { None } else { tree.node(id) };
        assert_eq!(inclusion_proof(3, 13, &partial), Err(MerkleError::MissingNode(missing)));
        assert_eq!(root(13, &HashMap::new()), Err(MerkleError::MissingNode(NodeId { level: 0, index: 12 })));
        assert_eq!(range_hash(8, 13, &BTreeMap::new()), Err(MerkleError::MissingNode(NodeId::leaf(12))));
    }

    #[test]
    fn verification_rejects_proofs_of_the_wrong_length() {
        let tree = exhaustive_tree();
        let (index, size) = (5, 13);
        let leaf = tree.leaves()[5];
        let root13 = root(size, tree).unwrap();
        let proof = inclusion_proof(index, size, tree).unwrap();
        let expected = proof.len();
        let mut longer = proof.clone();
        longer.push(root13);
        assert_eq!(
            verify_inclusion(&leaf, index, size, &longer, &root13),
            Err(ProofError::WrongLength { expected, actual: expected + 1 })
        );
        assert_eq!(
            verify_inclusion(&leaf, index, size, &proof[..expected - 1], &root13),
            Err(ProofError::WrongLength { expected, actual: expected - 1 })
        );

        let root7 = root(7, tree).unwrap();
        let proof = consistency_proof(7, 13, tree).unwrap();
        let expected = proof.len();
        assert_eq!(
            verify_consistency(7, 13, &root7, &root13, &[]),
            Err(ProofError::WrongLength { expected, actual: 0 })
        );
        assert_eq!(
            verify_consistency(7, 13, &root7, &root13, &proof[..expected - 1]),
            Err(ProofError::WrongLength { expected, actual: expected - 1 })
        );
        let mut longer = proof.clone();
        longer.push(root7);
        assert_eq!(
            verify_consistency(7, 13, &root7, &root13, &longer),
            Err(ProofError::WrongLength { expected, actual: expected + 1 })
        );
    }

    #[test]
    fn trivial_consistency_needs_an_empty_proof_and_matching_roots() {
        let tree = exhaustive_tree();
        let root5 = root(5, tree).unwrap();
        let empty = empty_root();
        assert_eq!(verify_consistency(5, 5, &root5, &root5, &[]), Ok(()));
        assert_eq!(verify_consistency(5, 5, &root5, &empty, &[]), Err(ProofError::RootMismatch));
        assert_eq!(
            verify_consistency(5, 5, &root5, &root5, &[root5]),
            Err(ProofError::WrongLength { expected: 0, actual: 1 })
        );
        assert_eq!(verify_consistency(0, 5, &empty, &root5, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 0, &empty, &empty, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &root5, &root5, &[]), Err(ProofError::OldRootMismatch));
        assert_eq!(verify_consistency(0, 0, &root5, &root5, &[]), Err(ProofError::OldRootMismatch));
        assert_eq!(
            verify_consistency(0, 5, &empty, &root5, &[empty]),
            Err(ProofError::WrongLength { expected: 0, actual: 1 })
        );
    }

    #[test]
    fn a_root_does_not_commit_to_its_size() {
        // Leaf 0 has the same path shape in trees of 3 and 4 leaves, so the size-3 proof also
        // "verifies" as size 4 against the size-3 root. The signed checkpoint has to bind the size.
        let tree = exhaustive_tree();
        let root3 = root(3, tree).unwrap();
        let proof = inclusion_proof(0, 3, tree).unwrap();
        assert_eq!(path_shape(0, 3), path_shape(0, 4));
        assert_eq!(verify_inclusion(&tree.leaves()[0], 0, 4, &proof, &root3), Ok(()));
        assert!(verify_inclusion(&tree.leaves()[0], 0, 5, &proof, &root3).is_err());

        let root1 = root(1, tree).unwrap();
        let proof = consistency_proof(1, 3, tree).unwrap();
        assert_eq!(consistency_shape(1, 3), consistency_shape(1, 4));
        assert_eq!(verify_consistency(1, 4, &root1, &root3, &proof), Ok(()));
        assert!(verify_consistency(1, 5, &root1, &root3, &proof).is_err());
    }

    #[test]
    fn perfect_subtrees_rejects_ranges_the_rfc_never_hashes() {
        for (start, end) in [(0, 0), (5, 5), (6, 5), (1, 3), (2, 5), (4, 9), (u64::MAX, u64::MAX)] {
            assert_eq!(perfect_subtrees(start, end), Err(MerkleError::InvalidRange { start, end }));
        }
        assert_eq!(perfect_subtrees(8, 13).unwrap(), [NodeId { level: 2, index: 2 }, NodeId { level: 0, index: 12 }]);
        assert_eq!(perfect_subtrees(6, 7).unwrap(), [NodeId::leaf(6)]);
    }

    #[test]
    fn node_ids_stay_logarithmic_at_the_extremes_of_u64() {
        let max = u64::MAX;
        assert_eq!(root_nodes(max).len(), 64);
        assert_all_stored(&root_nodes(max), max);
        assert_eq!(perfect_subtrees(0, max).unwrap(), root_nodes(max));
        for (index, size) in [(0, max), (max - 1, max), (1 << 63, max), ((1 << 63) - 1, 1 << 63)] {
            let ids = inclusion_proof_nodes(index, size).unwrap();
            assert!(ids.len() <= 127, "{index} {size}: {}", ids.len());
            assert_all_stored(&ids, size);
        }
        for (old, new) in [(1, max), (max - 1, max), ((1 << 63) + 5, max), (3, 1 << 63)] {
            let ids = consistency_proof_nodes(old, new).unwrap();
            assert!(ids.len() <= 128, "{old} {new}: {}", ids.len());
            assert_all_stored(&ids, new);
        }
    }

    #[test]
    fn lookups_accept_maps_closures_and_memory_trees() {
        let tree = exhaustive_tree();
        let ids = root_nodes(100);
        let map: HashMap<NodeId, Hash> = ids.iter().map(|&id| (id, tree.node(id).unwrap())).collect();
        let btree: BTreeMap<NodeId, Hash> = map.iter().map(|(&id, &h)| (id, h)).collect();
        let closure = |id: NodeId| map.get(&id).copied();
        let expected = mth(&tree.leaves()[..100]);
        assert_eq!(root(100, &map).unwrap(), expected);
        assert_eq!(root(100, &btree).unwrap(), expected);
        assert_eq!(root(100, &closure).unwrap(), expected);
        assert_eq!(root(100, tree).unwrap(), expected);
    }

    #[test]
    fn append_rejects_a_frontier_that_does_not_fit_the_size() {
        let h = test_leaf(0);
        assert_eq!(append(&[h], 6, &[h]), Err(MerkleError::FrontierMismatch { size: 6, expected: 2, actual: 1 }));
        assert_eq!(append(&[h], 0, &[h]), Err(MerkleError::FrontierMismatch { size: 0, expected: 0, actual: 1 }));
    }

    #[test]
    fn append_refuses_to_overflow_the_tree_size() {
        let frontier = vec![test_leaf(0); 64];
        assert_eq!(append(&frontier, u64::MAX, &[test_leaf(1)]), Err(MerkleError::TreeFull));
        let appended = append(&frontier, u64::MAX, &[]).unwrap();
        assert_eq!(appended.size, u64::MAX);
        assert!(appended.nodes.is_empty());
        let frontier = vec![test_leaf(0); 63];
        let appended = append(&frontier, u64::MAX - 1, &[test_leaf(1)]).unwrap();
        assert_eq!(appended.frontier.len(), 64);
        assert!(appended.nodes.is_empty(), "u64::MAX - 1 is even, so its leaf completes nothing");
    }

    #[test]
    fn append_returns_exactly_the_nodes_the_batch_completes() {
        let tree = exhaustive_tree();
        let leaves = tree.leaves();
        for (first, end) in [(0, 1), (0, 2), (3, 4), (5, 37), (64, 128), (1, 130), (127, 128)] {
            let frontier: Vec<Hash> = root_nodes(first).iter().map(|&id| tree.node(id).unwrap()).collect();
            let appended = append(&frontier, first, &leaves[usize_of(first)..usize_of(end)]).unwrap();
            let mut expected = Vec::new();
            for level in 1..8u8 {
                for index in 0..(end >> level) {
                    if (index + 1) << level > first {
                        let id = NodeId { level, index };
                        expected.push((id, tree.node(id).unwrap()));
                    }
                }
            }
            let mut got = appended.nodes.clone();
            got.sort();
            expected.sort();
            assert_eq!(got, expected, "[{first}, {end})");
            assert_eq!(appended.nodes.capacity(), appended.nodes.len(), "sized exactly");
            assert_eq!(appended.root, mth(&leaves[..usize_of(end)]));
            assert_eq!(appended.size, end);
            let frontier_ids = root_nodes(end);
            let expected_frontier: Vec<Hash> = frontier_ids.iter().map(|&id| tree.node(id).unwrap()).collect();
            assert_eq!(appended.frontier, expected_frontier);
        }
    }

    // ---- Properties over larger trees. ----

    fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
        (1..=PROPTEST_MAX).prop_flat_map(|size| (Just(size), 0..size))
    }

    fn new_and_old_size() -> impl Strategy<Value = (u64, u64)> {
        (1..=PROPTEST_MAX).prop_flat_map(|new| (Just(new), 0..=new))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn inclusion_proofs_verify_and_any_tampering_fails(
            (size, index) in size_and_index(),
            bit in 0usize..256,
            other in any::<u64>(),
        ) {
            let tree = proptest_tree();
            let leaf = tree.leaves()[usize_of(index)];
            let root = root(size, tree).unwrap();
            let proof = inclusion_proof(index, size, tree).unwrap();
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

            prop_assert!(verify_inclusion(&flip(&leaf, bit), index, size, &proof, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, bit)).is_err());
            for i in 0..proof.len() {
                let mut tampered = proof.clone();
                tampered[i] = flip(&tampered[i], bit);
                let result = verify_inclusion(&leaf, index, size, &tampered, &root);
                prop_assert!(result.is_err(), "element {}", i);
            }
            if size > 1 {
                let wrong = (index + 1 + other % (size - 1)) % size;
                let result = verify_inclusion(&leaf, wrong, size, &proof, &root);
                prop_assert!(result.is_err(), "index {}", wrong);
            }
            prop_assert!(verify_inclusion(&leaf, index + size, size, &proof, &root).is_err());
            // A wrong size fails unless it gives the leaf the same path shape (see
            // `a_root_does_not_commit_to_its_size`); then the very same hashes are recomputed.
            for wrong in [size - 1, size + 1, size * 2, size / 2, other % (2 * PROPTEST_MAX)] {
                if wrong == size || wrong <= index {
                    continue;
                }
                let result = verify_inclusion(&leaf, index, wrong, &proof, &root);
                if path_shape(index, wrong) == path_shape(index, size) {
                    prop_assert_eq!(result, Ok(()));
                } else {
                    prop_assert!(result.is_err(), "size {}", wrong);
                }
            }
        }

        #[test]
        fn consistency_proofs_verify_and_any_tampering_fails(
            (new_size, old_size) in new_and_old_size(),
            bit in 0usize..256,
            other in any::<u64>(),
        ) {
            let tree = proptest_tree();
            let old_root = root(old_size, tree).unwrap();
            let new_root = root(new_size, tree).unwrap();
            let proof = consistency_proof(old_size, new_size, tree).unwrap();
            let verify = |old_size, new_size, old_root: &Hash, new_root: &Hash, proof: &[Hash]| {
                verify_consistency(old_size, new_size, old_root, new_root, proof)
            };
            prop_assert_eq!(verify(old_size, new_size, &old_root, &new_root, &proof), Ok(()));

            let bad_old = flip(&old_root, bit);
            prop_assert!(verify(old_size, new_size, &bad_old, &new_root, &proof).is_err());
            if old_size > 0 {
                // The empty tree is a prefix of every tree, so its proof says nothing of the new
                // root.
                let bad_new = flip(&new_root, bit);
                prop_assert!(verify(old_size, new_size, &old_root, &bad_new, &proof).is_err());
            }
            if old_size != new_size {
                prop_assert!(verify(old_size, new_size, &new_root, &old_root, &proof).is_err());
            }
            for i in 0..proof.len() {
                let mut tampered = proof.clone();
                tampered[i] = flip(&tampered[i], bit);
                let result = verify(old_size, new_size, &old_root, &new_root, &tampered);
                prop_assert!(result.is_err(), "element {}", i);
            }
            if 0 < old_size && old_size < new_size {
                // With the new size fixed, the old size is pinned: the proof follows the root path
                // of the old tree's last perfect subtree, and another old size has another one.
                for wrong_old in [old_size - 1, old_size + 1, other % new_size] {
                    if wrong_old != 0 && wrong_old != old_size {
                        let result = verify(wrong_old, new_size, &old_root, &new_root, &proof);
                        prop_assert!(result.is_err(), "old {}", wrong_old);
                    }
                }
                // The new size is not pinned: like an inclusion proof, the proof also passes under
                // any new size whose tree has the same shape along that path, and only then.
                let random = other % (2 * PROPTEST_MAX);
                for wrong_new in [new_size - 1, new_size + 1, new_size * 2, random] {
                    if wrong_new <= old_size || wrong_new == new_size {
                        continue;
                    }
                    let result = verify(old_size, wrong_new, &old_root, &new_root, &proof);
                    let shape = consistency_shape(old_size, new_size);
                    if consistency_shape(old_size, wrong_new) == shape {
                        prop_assert_eq!(result, Ok(()));
                    } else {
                        prop_assert!(result.is_err(), "new {}", wrong_new);
                    }
                }
            }
        }

    }

    proptest! {
        // Each case appends a few hundred leaves twice, so fewer cases keep the suite quick.
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn appending_in_batches_matches_appending_one_by_one(
            batches in proptest::collection::vec(0usize..70, 1..16),
        ) {
            let total: usize = batches.iter().sum();
            let leaves: Vec<Hash> = (0..total as u64).map(test_leaf).collect();

            let mut single_nodes = Vec::new();
            let mut single_roots = vec![empty_root()];
            let mut frontier = Vec::new();
            for (i, leaf) in leaves.iter().enumerate() {
                let appended = append(&frontier, i as u64, std::slice::from_ref(leaf)).unwrap();
                single_nodes.extend(appended.nodes);
                single_roots.push(appended.root);
                frontier = appended.frontier;
            }

            let mut batch_nodes = Vec::new();
            let mut frontier = Vec::new();
            let mut size = 0usize;
            for &count in &batches {
                let appended = append(&frontier, size as u64, &leaves[size..size + count]).unwrap();
                size += count;
                prop_assert_eq!(appended.size, size as u64);
                prop_assert_eq!(appended.root, single_roots[size]);
                batch_nodes.extend(appended.nodes);
                frontier = appended.frontier;
            }
            prop_assert_eq!(batch_nodes, single_nodes);
            prop_assert_eq!(single_roots[total], mth(&leaves));
        }
    }
}
