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
