//! `merkle.json`: an RFC 9162 tree of 40 leaves (leaf `i` = `hash::leaf_hash(b"leaf " + decimal
//! i)`), its roots at every size, inclusion and consistency proofs from `merkle::MemoryTree`, and
//! proofs that must be rejected. Roots are cross-checked against `merkle::CompactRange`, and every
//! proof is run through `merkle::verify_inclusion` / `verify_consistency` before it is written.

use crate::{json_file, VectorFile};
use anyhow::{ensure, Context, Result};
use serde::Serialize;
use shared::chain::hash::{leaf_hash, Hash};
use shared::chain::merkle::{
    consistency_proof, inclusion_proof, verify_consistency, verify_inclusion, CompactRange, MemoryTree,
};

/// Leaves of the tree.
pub const LEAF_COUNT: u64 = 40;
/// Every proof between sizes up to this one is in the file.
const EXHAUSTIVE_MAX: u64 = 17;
/// `(index, size)` of the inclusion proofs beyond the exhaustive range.
const LARGER_INCLUSION: &[(u64, u64)] =
    &[(0, 32), (31, 32), (0, 33), (32, 33), (16, 33), (0, 40), (7, 40), (31, 40), (32, 40), (35, 40), (39, 40)];
/// `(old_size, new_size)` of the consistency proofs beyond the exhaustive range.
const LARGER_CONSISTENCY: &[(u64, u64)] =
    &[(1, 40), (7, 40), (16, 32), (17, 33), (31, 32), (32, 33), (32, 40), (33, 40), (15, 31), (39, 40), (40, 40)];

#[derive(Serialize)]
struct File {
    description: &'static str,
    leaves: Vec<String>,
    roots: Vec<RootCase>,
    inclusion: Vec<InclusionCase>,
    consistency: Vec<ConsistencyCase>,
    invalid: Vec<InvalidCase>,
}

#[derive(Serialize)]
struct RootCase {
    size: u64,
    root: String,
}

#[derive(Serialize)]
struct InclusionCase {
    index: u64,
    size: u64,
    path: Vec<String>,
}

#[derive(Serialize)]
struct ConsistencyCase {
    old_size: u64,
    new_size: u64,
    proof: Vec<String>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum InvalidCase {
    Inclusion {
        name: &'static str,
        index: u64,
        size: u64,
        path: Vec<String>,
        root: String,
    },
    Consistency {
        name: &'static str,
        old_size: u64,
        new_size: u64,
        proof: Vec<String>,
        old_root: String,
        new_root: String,
    },
}

/// Leaf `i` of the vector tree.
pub fn leaf(i: u64) -> Hash {
    leaf_hash(format!("leaf {i}").as_bytes())
}

fn hex_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_hex).collect()
}

/// The hash with bit 0 of byte `byte` flipped.
fn flip(hash: &Hash, byte: usize) -> Hash {
    let mut out = *hash;
    out.0[byte] ^= 1;
    out
}

struct Tree {
    leaves: Vec<Hash>,
    tree: MemoryTree,
    /// `roots[size]`.
    roots: Vec<Hash>,
}

impl Tree {
    fn build() -> Result<Tree> {
        let leaves: Vec<Hash> = (0..LEAF_COUNT).map(leaf).collect();
        let mut tree = MemoryTree::new();
        let mut compact = CompactRange::default();
        let mut roots = vec![tree.root()];
        ensure!(compact.root() == tree.root(), "the empty roots agree");
        for leaf in &leaves {
            let root = tree.append(std::slice::from_ref(leaf))?;
            compact.push(*leaf);
            ensure!(compact.root() == root, "CompactRange and MemoryTree agree at size {}", tree.size());
            roots.push(root);
        }
        Ok(Tree { leaves, tree, roots })
    }

    fn root(&self, size: u64) -> Hash {
        self.roots[usize::try_from(size).unwrap_or(usize::MAX)]
    }

    fn leaf(&self, index: u64) -> Hash {
        self.leaves[usize::try_from(index).unwrap_or(usize::MAX)]
    }

    fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let path = inclusion_proof(index, size, &self.tree).with_context(|| format!("inclusion {index} of {size}"))?;
        verify_inclusion(&self.leaf(index), index, size, &path, &self.root(size))
            .with_context(|| format!("the inclusion proof of {index} in {size} verifies"))?;
        Ok(path)
    }

    fn consistency(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
        let proof = consistency_proof(old_size, new_size, &self.tree)
            .with_context(|| format!("consistency {old_size} to {new_size}"))?;
        verify_consistency(old_size, new_size, &self.root(old_size), &self.root(new_size), &proof)
            .with_context(|| format!("the consistency proof from {old_size} to {new_size} verifies"))?;
        Ok(proof)
    }

    fn invalid_inclusion(
        &self,
        name: &'static str,
        index: u64,
        size: u64,
        path: Vec<Hash>,
        root: Hash,
    ) -> Result<InvalidCase> {
        let leaf = self.leaves.get(usize::try_from(index)?).copied().unwrap_or_default();
        ensure!(verify_inclusion(&leaf, index, size, &path, &root).is_err(), "invalid case {name} is rejected");
        Ok(InvalidCase::Inclusion { name, index, size, path: hex_all(&path), root: root.to_hex() })
    }

    fn invalid_consistency(
        &self,
        name: &'static str,
        (old_size, new_size): (u64, u64),
        proof: Vec<Hash>,
        (old_root, new_root): (Hash, Hash),
    ) -> Result<InvalidCase> {
        ensure!(
            verify_consistency(old_size, new_size, &old_root, &new_root, &proof).is_err(),
            "invalid case {name} is rejected"
        );
        Ok(InvalidCase::Consistency {
            name,
            old_size,
            new_size,
            proof: hex_all(&proof),
            old_root: old_root.to_hex(),
            new_root: new_root.to_hex(),
        })
    }

    fn invalid_cases(&self) -> Result<Vec<InvalidCase>> {
        let path = self.inclusion(5, 17)?;
        let mut cases = Vec::new();
        let mut flipped = path.clone();
        flipped[0] = flip(&flipped[0], 0);
        cases.push(self.invalid_inclusion("flipped_bit_in_first_path_hash", 5, 17, flipped, self.root(17))?);
        let mut flipped = path.clone();
        let last = flipped.len() - 1;
        flipped[last] = flip(&flipped[last], 31);
        cases.push(self.invalid_inclusion("flipped_bit_in_last_path_hash", 5, 17, flipped, self.root(17))?);
        cases.push(self.invalid_inclusion("path_of_the_sibling_leaf", 4, 17, path.clone(), self.root(17))?);
        cases.push(self.invalid_inclusion("path_of_another_index", 6, 17, path.clone(), self.root(17))?);
        cases.push(self.invalid_inclusion("truncated_path", 5, 17, path[..path.len() - 1].to_vec(), self.root(17))?);
        let mut extended = path.clone();
        extended.push(self.root(1));
        cases.push(self.invalid_inclusion("path_with_an_extra_hash", 5, 17, extended, self.root(17))?);
        cases.push(self.invalid_inclusion("root_of_another_size", 5, 17, path.clone(), self.root(16))?);
        cases.push(self.invalid_inclusion("size_with_another_path_length", 5, 16, path, self.root(17))?);
        cases.push(self.invalid_inclusion("index_equal_to_size", 17, 17, self.inclusion(16, 17)?, self.root(17))?);
        let mut single_leaf_path = self.inclusion(0, 1)?;
        single_leaf_path.push(self.leaf(1));
        cases.push(self.invalid_inclusion("non_empty_path_for_a_single_leaf", 0, 1, single_leaf_path, self.root(1))?);

        let proof = self.consistency(6, 17)?;
        let roots = (self.root(6), self.root(17));
        let mut flipped = proof.clone();
        flipped[0] = flip(&flipped[0], 0);
        cases.push(self.invalid_consistency("flipped_bit_in_first_proof_hash", (6, 17), flipped, roots)?);
        let mut flipped = proof.clone();
        let last = flipped.len() - 1;
        flipped[last] = flip(&flipped[last], 31);
        cases.push(self.invalid_consistency("flipped_bit_in_last_proof_hash", (6, 17), flipped, roots)?);
        cases.push(self.invalid_consistency("truncated_proof", (6, 17), proof[..proof.len() - 1].to_vec(), roots)?);
        let mut extended = proof.clone();
        extended.push(self.root(1));
        cases.push(self.invalid_consistency("proof_with_an_extra_hash", (6, 17), extended, roots)?);
        cases.push(self.invalid_consistency(
            "wrong_old_root",
            (6, 17),
            proof.clone(),
            (self.root(7), self.root(17)),
        )?);
        cases.push(self.invalid_consistency(
            "wrong_new_root",
            (6, 17),
            proof.clone(),
            (self.root(6), self.root(16)),
        )?);
        cases.push(self.invalid_consistency("proof_for_another_old_size", (5, 17), proof, roots)?);
        cases.push(self.invalid_consistency(
            "old_size_larger_than_new_size",
            (17, 6),
            self.consistency(6, 17)?,
            (self.root(17), self.root(6)),
        )?);
        cases.push(self.invalid_consistency(
            "equal_sizes_with_a_non_empty_proof",
            (9, 9),
            vec![self.root(9)],
            (self.root(9), self.root(9)),
        )?);
        cases.push(self.invalid_consistency(
            "equal_sizes_with_different_roots",
            (9, 9),
            Vec::new(),
            (self.root(9), self.root(10)),
        )?);
        cases.push(self.invalid_consistency(
            "empty_proof_between_different_sizes",
            (8, 16),
            Vec::new(),
            (self.root(8), self.root(16)),
        )?);
        Ok(cases)
    }
}

pub fn generate() -> Result<Vec<VectorFile>> {
    let tree = Tree::build()?;
    let mut inclusion = Vec::new();
    let exhaustive_inclusion = (1..=EXHAUSTIVE_MAX).flat_map(|size| (0..size).map(move |index| (index, size)));
    for (index, size) in exhaustive_inclusion.chain(LARGER_INCLUSION.iter().copied()) {
        inclusion.push(InclusionCase { index, size, path: hex_all(&tree.inclusion(index, size)?) });
    }
    let mut consistency = Vec::new();
    let exhaustive_consistency = (1..=EXHAUSTIVE_MAX).flat_map(|new| (1..=new).map(move |old| (old, new)));
    for (old_size, new_size) in exhaustive_consistency.chain(LARGER_CONSISTENCY.iter().copied()) {
        consistency.push(ConsistencyCase {
            old_size,
            new_size,
            proof: hex_all(&tree.consistency(old_size, new_size)?),
        });
    }
    let file = File {
        description: "RFC 9162 Merkle tree over SHA-256: leaf i is SHA-256(0x00 || \"leaf \" + decimal i), interior \
                      nodes SHA-256(0x01 || left || right), the empty tree's root SHA-256(\"\"). `roots[size]` is the \
                      root of the first `size` leaves. `inclusion`: the audit path (RFC 9162 2.1.3.1, sibling of the \
                      leaf first) of leaf `index` in the tree of `size` leaves; it verifies (2.1.3.2) with \
                      leaves[index] and roots[size]. `consistency`: the proof (2.1.4.1) that the tree of `new_size` \
                      leaves extends the tree of `old_size`; it verifies (2.1.4.2) with roots[old_size] and \
                      roots[new_size]; the proof is empty when the sizes are equal. `invalid`: proofs a verifier \
                      must reject, each with the root(s) to check against; an inclusion case is checked for the \
                      leaf leaves[index].",
        leaves: hex_all(&tree.leaves),
        roots: (0..=LEAF_COUNT).map(|size| RootCase { size, root: tree.root(size).to_hex() }).collect(),
        inclusion,
        consistency,
        invalid: tree.invalid_cases()?,
    };
    Ok(vec![json_file("merkle.json", &file)?])
}
