"""RFC 9162 section 2.1 Merkle trees: roots, and inclusion and consistency proof verification.

A root does not commit to its tree size, so the sizes passed here must come from a verified
signed checkpoint, never from the response that carried the proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import ProofError
from .hashes import node_hash, sha256

EMPTY_ROOT = sha256(b"")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ProofError(f"{what} is not a 32-byte hash")


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The root over leaf hashes in order (streaming: memory is O(log n))."""
    tree = CompactRange()
    for leaf in leaves:
        tree.append(0, tree.size, leaf)
    return tree.root()


class CompactRange:
    """The perfect subtrees covering leaves ``[0, size)``, merged as aligned nodes arrive in order.

    ``append(level, index, hash)`` adds the node over leaves ``[index * 2^level, (index + 1) *
    2^level)``; it must start exactly at ``size``. Any aligned tiling merges to the same root, since
    every aligned perfect subtree inside ``[0, n)`` is a node of the RFC 9162 tree of size n.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    def append(self, level: int, index: int, value: bytes) -> None:
        if level < 0 or index < 0:
            raise ValueError("level and index must be non-negative")
        if index << level != self.size:
            raise ValueError(f"node (level {level}, index {index}) starts at leaf {index << level}, not at {self.size}")
        if self._stack and self._stack[-1][0] < level:
            # Cannot happen for an aligned start, but keeps the invariant explicit.
            raise ValueError(f"node (level {level}, index {index}) is not aligned with the nodes before it")
        self.size += 1 << level
        while self._stack and self._stack[-1][0] == level and index & 1:
            _, left = self._stack.pop()
            value = node_hash(left, value)
            level += 1
            index >>= 1
        self._stack.append((level, value))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2. Raises ProofError unless ``leaf`` is at ``index`` of the tree."""
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root")
    for i, p in enumerate(path):
        _check_hash(p, f"audit path element {i}")
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise ProofError(f"audit path of {len(path)} hashes is too long for leaf {index} of {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"audit path of {len(path)} hashes is too short for leaf {index} of {size}")
    if r != root:
        raise ProofError("the audit path does not lead to the root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 section 2.1.4.2. Raises ProofError unless the new tree extends the old one.

    For ``old_size == new_size`` and ``old_size == 0`` the proof must be empty (and the roots equal,
    or the old root the empty root).
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for i, p in enumerate(proof):
        _check_hash(p, f"consistency proof element {i}")
    if old_size < 0 or old_size > new_size:
        raise ProofError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofError(f"the proof between sizes {old_size} and {new_size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("the old root is not the empty tree's root")
        if old_size == new_size and old_root != new_root:
            raise ProofError("the roots of two trees of the same size differ")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof of {len(proof)} hashes is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof of {len(proof)} hashes is too short")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")
