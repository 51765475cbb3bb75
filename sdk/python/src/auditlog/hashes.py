"""The log's hashes (docs/FORMATS.md): content digest, canonical entry, leaf, chain link, node."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from .canonical import jcs

ZERO_HASH = bytes(32)
ENTRY_VERSION = 1

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def content_digest(salt: bytes, content: bytes) -> bytes:
    """``SHA-256(salt || content)``, where content is the event's canonical (JCS) bytes."""
    return sha256(salt, content)


def canonical_entry(*, tenant_id: str, seq: int, id: str, received_at: str, content_digest: str) -> bytes:
    """The JCS bytes of the entry the leaf hash covers (``content_digest`` in lowercase hex)."""
    return jcs(
        {
            "v": ENTRY_VERSION,
            "tenant_id": tenant_id,
            "seq": seq,
            "id": id,
            "received_at": received_at,
            "content_digest": content_digest,
        }
    )


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || entry)``."""
    return sha256(b"\x00", entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node: ``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01", left, right)


def chain_link(previous: bytes, leaf: bytes) -> bytes:
    """``chain_hash[n] = SHA-256(chain_hash[n-1] || leaf_hash[n])``; the first previous is 32 zeros."""
    return sha256(previous, leaf)


def parse_hash(value: object, what: str = "hash") -> bytes:
    """32 bytes from 64 lowercase hex digits; ValueError otherwise."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{what} is not 64 lowercase hex digits")
    return bytes.fromhex(value)


def b64decode_strict(value: object, what: str = "value") -> bytes:
    """Standard padded base64 with exactly one accepted spelling per byte string."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{what} is not standard padded base64") from e
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError(f"{what} is not standard padded base64")
    return raw
