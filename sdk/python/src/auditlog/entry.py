"""Verification of entries as the API returns them (``GET /v1/events``, ``GET /v1/events/{id}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .canonical import jcs
from .checkpoint import Checkpoint
from .errors import EntryError, ProofError
from .hashes import b64decode_strict, canonical_entry, content_digest, leaf_hash, parse_hash
from .merkle import verify_inclusion


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes:
    """Recomputes an entry's leaf hash from its content (when not erased) and server fields.

    Raises EntryError when the content does not match ``content_digest``.
    """
    try:
        digest = parse_hash(entry["content_digest"], "content_digest")
        if entry.get("event") is not None:
            salt = b64decode_strict(entry["salt"], "salt")
            recomputed = content_digest(salt, jcs(entry["event"]))
            if recomputed != digest:
                raise EntryError(f"entry {entry['id']}: the event and salt do not give its content_digest")
        elif not entry.get("erased"):
            raise EntryError(f"entry {entry['id']}: no event although it is not erased")
        canonical = canonical_entry(
            tenant_id=entry["tenant_id"],
            seq=entry["seq"],
            id=entry["id"],
            received_at=entry["received_at"],
            content_digest=digest.hex(),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EntryError(f"malformed entry: {e}") from e
    leaf = leaf_hash(canonical)
    if entry.get("leaf_hash") != leaf.hex():
        raise EntryError(f"entry {entry.get('id')}: its leaf_hash is not the hash of its canonical entry")
    return leaf


def verify_entry(entry: Mapping[str, Any], proof: Mapping[str, Any], checkpoint: Checkpoint) -> None:
    """Checks an entry against an inclusion proof and a checkpoint verified with ``verify_checkpoint``.

    Recomputes the content digest (from event and salt), the leaf hash, and the audit path to the
    checkpoint's root; the tree size is taken from the checkpoint, never from the proof.
    Raises EntryError or ProofError.
    """
    leaf = entry_leaf_hash(entry)
    if proof.get("event_id") not in (None, entry.get("id")):
        raise EntryError("the proof is for another event")
    if proof.get("leaf_index") != entry.get("seq"):
        raise ProofError(f"the proof is for leaf {proof.get('leaf_index')}, the entry has seq {entry.get('seq')}")
    if proof.get("tree_size") != checkpoint.size:
        raise ProofError(f"the proof is for tree size {proof.get('tree_size')}, the checkpoint has {checkpoint.size}")
    if proof.get("leaf_hash") not in (None, leaf.hex()):
        raise ProofError("the proof's leaf hash is not the entry's")
    try:
        path = [parse_hash(h, "audit path element") for h in proof["audit_path"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ProofError(f"malformed proof: {e}") from e
    verify_inclusion(leaf, entry["seq"], checkpoint.size, path, checkpoint.root)
