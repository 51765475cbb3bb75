//! The hash functions of the log, all SHA-256 with RFC 9162 domain separation.
//!
//! - leaf hash: `SHA-256(0x00 || canonical entry)`
//! - interior Merkle node: `SHA-256(0x01 || left || right)`
//! - chain link: `chain[n] = SHA-256(chain[n-1] || leaf[n])`, with `chain[-1] = GENESIS`
//!
//! The two domain-separation prefixes make a leaf impossible to pass off as an interior node (the
//! second-preimage attack RFC 9162 section 2.1.1 describes).

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 output. Displayed and serialised as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

/// The chain hash that precedes seq 0 of every tenant: 32 zero bytes.
pub const GENESIS: Hash = Hash([0u8; 32]);

impl Hash {
    pub const LEN: usize = 32;

    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Self, HashParseError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| HashParseError)?;
        Ok(Hash(out))
    }

    /// Takes exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashParseError> {
        <[u8; 32]>::try_from(bytes).map(Hash).map_err(|_| HashParseError)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A hash was not 32 bytes / 64 hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a hash must be 32 bytes (64 hex characters)")]
pub struct HashParseError;

/// Plain SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

/// RFC 9162 leaf hash of the canonical entry bytes.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[0x00], entry])
}

/// RFC 9162 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], &left.0, &right.0])
}

/// The next link of a tenant's linear hash chain.
pub fn chain_link(previous: &Hash, leaf: &Hash) -> Hash {
    sha256(&[&previous.0, &leaf.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_leaf_matches_rfc6962_vector() {
        // RFC 6962 test vectors: the leaf hash of the empty string.
        assert_eq!(leaf_hash(b"").to_hex(), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_lengths() {
        let h = sha256(&[b"abc"]);
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Ok(h));
        assert!(Hash::from_hex("abcd").is_err());
        assert!(Hash::from_hex(&"zz".repeat(32)).is_err());
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
    }

    #[test]
    fn chain_link_depends_on_order() {
        let a = sha256(&[b"a"]);
        let b = sha256(&[b"b"]);
        assert_ne!(chain_link(&a, &b), chain_link(&b, &a));
        assert_ne!(chain_link(&GENESIS, &a), a);
    }
}

/// SHA-256 whose progress can be saved and resumed in another process: an export that spans
/// several Lambda runs hashes its object across them. The compression function is the `sha2`
/// crate's; this only keeps its state, the unhashed tail (under one block) and the length, and
/// pads at the end as FIPS 180-4 section 5.1.1 says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResumableSha256 {
    state: [u32; 8],
    #[serde(with = "hex::serde")]
    tail: Vec<u8>,
    len: u64,
}

impl Default for ResumableSha256 {
    fn default() -> Self {
        ResumableSha256 {
            state: [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19],
            tail: Vec::with_capacity(64),
            len: 0,
        }
    }
}

impl ResumableSha256 {
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.tail.is_empty() {
            let take = (64 - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.tail);
            self.compress(&block);
        }
        let whole = data.len() / 64 * 64;
        self.compress(&data[..whole]);
        self.tail.extend_from_slice(&data[whole..]);
    }

    // sha2 0.10 takes its blocks as generic-array 0.14 arrays, which that crate now marks
    // deprecated in favour of 1.x; the deprecation is about the array type, not the hash.
    #[allow(deprecated)]
    fn compress(&mut self, blocks: &[u8]) {
        let blocks: Vec<sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>> =
            blocks.chunks_exact(64).map(|b| *sha2::digest::generic_array::GenericArray::from_slice(b)).collect();
        sha2::compress256(&mut self.state, &blocks);
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(mut self) -> Hash {
        let bits = self.len.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        let used = (self.len % 64) as usize + 1;
        pad.resize(pad.len() + (64 + 56 - used) % 64, 0);
        pad.extend_from_slice(&bits.to_be_bytes());
        let len = self.len;
        self.update(&pad);
        debug_assert!(self.tail.is_empty());
        self.len = len;
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Hash(out)
    }
}

#[cfg(test)]
mod resumable_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_sha256_for_lengths_around_the_block_boundaries() {
        for n in [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let mut h = ResumableSha256::default();
            h.update(&data);
            assert_eq!(h.finish(), sha256(&[&data]), "length {n}");
        }
    }

    proptest! {
        #[test]
        fn a_state_saved_and_restored_between_any_pieces_gives_the_same_hash(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)
        ) {
            let mut h = ResumableSha256::default();
            for p in &pieces {
                h.update(p);
                let saved = serde_json::to_string(&h).unwrap();
                h = serde_json::from_str(&saved).unwrap();
            }
            let all: Vec<u8> = pieces.concat();
            prop_assert_eq!(h.finish(), sha256(&[&all]));
        }
    }
}
