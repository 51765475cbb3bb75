//! The log as C2SP tlog-tiles (c2sp.org/tlog-tiles), the layout transparency-log clients,
//! witnesses and mirrors read: the Merkle tree cut into tiles of 256 hashes, and the entries in
//! bundles of 256.
//!
//! - A tile at level `L`, index `N` holds the hashes of the tree's nodes at height `8 * L` with
//!   indexes `256 * N ..`, 32 bytes each, in order: level 0 the leaf hashes, level 1 the roots of
//!   perfect subtrees of 256 leaves, and so on. A partial tile (`.p/<W>`) holds the first `W`
//!   (1 to 255) of them, where the tree does not yet fill the tile.
//! - An entry bundle holds entries `256 * N ..` (or the first `W`), each as a big-endian 16-bit
//!   length and the entry's bytes. The bytes are the canonical entry (`chain::entry`), so the
//!   RFC 6962 leaf hash a client computes, `SHA-256(0x00 || bytes)`, is the log's leaf hash.
//! - Paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, where `<N>` is written in
//!   zero-padded groups of three digits, all but the last prefixed with `x`: 1234067 is
//!   `x001/x234/067`.
//!
//! The hashes are the ones the log stores: since migration V12 it keeps exactly the tiles'
//! levels (`merkle::STORED_LEVEL_STEP`), so a tile is one range of stored rows; this module only
//! names and lays them out.

use std::fmt;

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u64 = 256;

/// Tree levels per tile level.
pub const TILE_HEIGHT: u8 = 8;

/// The highest tile level: level 7 holds nodes of height 56, enough for any tree of `u64` size.
pub const MAX_TILE_LEVEL: u8 = 7;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Hashes of tree level `8 * level`.
    Hashes { level: u8 },
    /// An entry bundle.
    Entries,
}

/// One tile (or entry bundle): its kind, index within its level, and width (1 to 256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub kind: TileKind,
    pub index: u64,
    pub width: u16,
}

/// A path that is not a tlog-tiles tile path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0}")]
pub struct TilePathError(pub String);

impl Tile {
    /// Parses a path relative to `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
    pub fn parse(path: &str) -> Result<Tile, TilePathError> {
        let bad = |why: &str| TilePathError(format!("{path:?}: {why}"));
        let (kind, rest) = match path.split_once('/') {
            Some(("entries", rest)) => (TileKind::Entries, rest),
            Some((level, rest)) => {
                let level =
                    decimal(level).filter(|l| *l <= u64::from(MAX_TILE_LEVEL)).ok_or_else(|| bad("bad level"))?;
                (TileKind::Hashes { level: level as u8 }, rest)
            }
            None => return Err(bad("no index")),
        };
        let (index_path, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = decimal(width).filter(|w| (1..TILE_WIDTH).contains(w)).ok_or_else(|| bad("bad width"))?;
                (index, width as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_path.split('/').collect();
        let mut index: u64 = 0;
        for (i, group) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last { Some(*group) } else { group.strip_prefix('x') };
            let digits = digits
                .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad("bad index"))?;
            let value: u64 = digits.parse().map_err(|_| bad("bad index"))?;
            index = index.checked_mul(1000).and_then(|n| n.checked_add(value)).ok_or_else(|| bad("index too large"))?;
        }
        let tile = Tile { kind, index, width };
        // One encoding per index: no leading all-zero groups.
        if tile.path() != path {
            return Err(bad("not in canonical form"));
        }
        Ok(tile)
    }

    /// The path relative to `tile/`.
    pub fn path(&self) -> String {
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let last = groups.len() - 1;
        let index: Vec<String> = groups
            .iter()
            .rev()
            .enumerate()
            .map(|(i, g)| if i == last { format!("{g:03}") } else { format!("x{g:03}") })
            .collect();
        let kind = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let width = if u64::from(self.width) == TILE_WIDTH { String::new() } else { format!(".p/{}", self.width) };
        format!("{kind}/{}{width}", index.join("/"))
    }

    /// The tree height of the nodes a hash tile holds (entry bundles: 0, the leaves).
    pub fn tree_level(&self) -> u8 {
        match self.kind {
            TileKind::Hashes { level } => level * TILE_HEIGHT,
            TileKind::Entries => 0,
        }
    }

    /// The index (at [`Tile::tree_level`]) of the tile's first node, and one past its last.
    pub fn node_range(&self) -> Option<(u64, u64)> {
        let first = self.index.checked_mul(TILE_WIDTH)?;
        Some((first, first.checked_add(u64::from(self.width))?))
    }

    /// Whether a tree of `size` leaves holds every node of the tile: the last one is a perfect
    /// subtree of `2^tree_level` leaves that ends at or before `size`.
    pub fn within(&self, size: u64) -> bool {
        self.node_range()
            .and_then(|(_, end)| end.checked_mul(1u64.checked_shl(u32::from(self.tree_level()))?))
            .is_some_and(|leaves| leaves <= size)
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tile/{}", self.path())
    }
}

/// A decimal without leading zeros (`0` itself allowed).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// An entry bundle: each entry as a big-endian 16-bit length and its bytes. `None` if one is
/// longer than 65,535 bytes (a canonical entry is about 250).
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&u16::try_from(entry.len()).ok()?.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec_examples_and_round_trip() {
        let t = Tile::parse("0/x001/x234/067").unwrap();
        assert_eq!(t, Tile { kind: TileKind::Hashes { level: 0 }, index: 1_234_067, width: 256 });
        let p = Tile::parse("1/x001/x234/067.p/8").unwrap();
        assert_eq!(p, Tile { kind: TileKind::Hashes { level: 1 }, index: 1_234_067, width: 8 });
        let e = Tile::parse("entries/000.p/3").unwrap();
        assert_eq!(e, Tile { kind: TileKind::Entries, index: 0, width: 3 });
        for path in ["0/000", "0/999", "0/x001/000", "7/x018/x446/x744/x073/x709/x551/615", "entries/x002/033.p/255"] {
            assert_eq!(Tile::parse(path).unwrap().path(), path);
        }
        assert_eq!(Tile { kind: TileKind::Entries, index: 1000, width: 256 }.to_string(), "tile/entries/x001/000");
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "",
            "0",
            "0/",
            "0/1",
            "0/0001",
            "0/x000/001",
            "0/001/002",
            "0/x001",
            "0/x001/x002",
            "8/000",
            "01/000",
            "-1/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/08",
            "0/000.p/",
            "0/000.p",
            "data/000",
            "entries/1",
            "0/000/",
            "0/00a",
            "0/x018/x446/x744/x073/x709/x551/616",
            "0/000.p/8/9",
        ] {
            assert!(Tile::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_tile_is_within_a_tree_once_its_last_node_is_complete() {
        let level0 = |index, width| Tile { kind: TileKind::Hashes { level: 0 }, index, width };
        assert!(level0(0, 256).within(256) && !level0(0, 256).within(255));
        assert!(level0(3, 232).within(1000) && !level0(3, 233).within(1000));
        let level1 = |width| Tile { kind: TileKind::Hashes { level: 1 }, index: 0, width };
        assert!(level1(3).within(1000) && !level1(4).within(1000));
        let huge = Tile { kind: TileKind::Hashes { level: 7 }, index: u64::MAX / 256, width: 256 };
        assert!(!huge.within(u64::MAX), "overflow is not within");
    }

    #[test]
    fn entry_bundles_are_length_prefixed() {
        assert_eq!(entry_bundle([&b"ab"[..], &b""[..]]).unwrap(), [0, 2, b'a', b'b', 0, 0]);
        assert!(entry_bundle([&vec![0u8; 65_536][..]]).is_none());
    }
}
