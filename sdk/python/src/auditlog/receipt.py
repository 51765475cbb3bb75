"""Receipts: the service's Ed25519-signed acknowledgement of an accepted event.

``sig`` is the Ed25519 signature over the JCS of the receipt without ``sig``; ``key_id`` is the
hex of the first 8 bytes of SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .canonical import jcs
from .errors import ReceiptError
from .hashes import b64decode_strict, sha256

RECEIPT_MEMBERS = frozenset({"tenant_id", "event_id", "seq", "leaf_hash", "chain_hash", "received_at", "key_id", "sig"})


def receipt_key_id(public_key: bytes) -> str:
    """The receipt key's id: hex of ``SHA-256(raw public key)[:8]``."""
    return sha256(public_key)[:8].hex()


def receipt_signing_bytes(receipt: Mapping[str, Any]) -> bytes:
    """The JCS bytes a receipt's signature covers: every member but ``sig``."""
    return jcs({k: v for k, v in receipt.items() if k != "sig"})


def receipt_keys_from_response(response: Mapping[str, Any]) -> list[bytes]:
    """The raw public keys of ``GET /v1/receipts/public-key``, current first."""
    return [b64decode_strict(k["public_key"], "receipt public key") for k in response["keys"]]


def verify_receipt(receipt: Mapping[str, Any], public_keys: bytes | Iterable[bytes]) -> None:
    """Checks a receipt's signature with the key its ``key_id`` names. Raises ReceiptError."""
    keys = [public_keys] if isinstance(public_keys, (bytes, bytearray)) else list(public_keys)
    if not isinstance(receipt, Mapping):
        raise ReceiptError("the receipt is not an object")
    if set(receipt) != RECEIPT_MEMBERS:
        missing = sorted(RECEIPT_MEMBERS - set(receipt))
        extra = sorted(set(receipt) - RECEIPT_MEMBERS)
        raise ReceiptError(f"the receipt's members are wrong (missing {missing}, unknown {extra})")
    by_id = {receipt_key_id(bytes(k)): bytes(k) for k in keys}
    key = by_id.get(receipt["key_id"])
    if key is None:
        raise ReceiptError(f"the receipt names key {receipt['key_id']!r}, which is not among the trusted receipt keys")
    try:
        signature = b64decode_strict(receipt["sig"], "sig")
    except ValueError as e:
        raise ReceiptError("the signature is not base64 of 64 bytes") from e
    if len(signature) != 64:
        raise ReceiptError("the signature is not base64 of 64 bytes")
    try:
        message = receipt_signing_bytes(receipt)
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError) as e:
        raise ReceiptError("the signature does not match the receipt") from e
