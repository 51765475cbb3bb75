"""Client and offline verifier for the tamper-evident audit log (formats: docs/FORMATS.md)."""

from ._version import __version__
from .canonical import canonicalize_text, jcs
from .checkpoint import (
    Checkpoint,
    TrustedKey,
    key_id_ecdsa,
    parse_checkpoint_body,
    parse_verifier_key,
    trusted_keys_from_response,
    verifier_key,
    verify_checkpoint,
)
from .client import ApiResponse, Client, new_idempotency_key
from .entry import entry_leaf_hash, verify_entry
from .errors import (
    ApiError,
    AuditLogError,
    CheckpointError,
    EntryError,
    ExportFailed,
    ExportFault,
    ProofError,
    ReceiptError,
    StrictJSONError,
    TransportError,
    VerificationError,
)
from .event import (
    content_bytes,
    format_timestamp,
    normalize_event,
    normalize_timestamp,
    parse_timestamp,
    public_key_bytes,
    sign_event,
    signing_bytes,
    signing_key_from_seed,
)
from .export import ExportReport, verify_export, verify_export_dir
from .hashes import canonical_entry, chain_link, content_digest, leaf_hash, node_hash
from .merkle import EMPTY_ROOT, CompactRange, merkle_root, verify_consistency, verify_inclusion
from .receipt import receipt_key_id, receipt_keys_from_response, receipt_signing_bytes, verify_receipt
from .strict_json import loads_strict

__all__ = [
    "__version__",
    # canonical form and hashes
    "jcs",
    "canonicalize_text",
    "loads_strict",
    "content_digest",
    "canonical_entry",
    "leaf_hash",
    "node_hash",
    "chain_link",
    # Merkle trees
    "EMPTY_ROOT",
    "CompactRange",
    "merkle_root",
    "verify_inclusion",
    "verify_consistency",
    # checkpoints
    "Checkpoint",
    "TrustedKey",
    "verify_checkpoint",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "verifier_key",
    "key_id_ecdsa",
    "trusted_keys_from_response",
    # receipts
    "verify_receipt",
    "receipt_signing_bytes",
    "receipt_key_id",
    "receipt_keys_from_response",
    # events
    "normalize_event",
    "content_bytes",
    "signing_bytes",
    "sign_event",
    "signing_key_from_seed",
    "public_key_bytes",
    "parse_timestamp",
    "format_timestamp",
    "normalize_timestamp",
    # entries and exports
    "verify_entry",
    "entry_leaf_hash",
    "verify_export",
    "verify_export_dir",
    "ExportReport",
    # client
    "Client",
    "ApiResponse",
    "new_idempotency_key",
    # errors
    "AuditLogError",
    "VerificationError",
    "ProofError",
    "CheckpointError",
    "ReceiptError",
    "StrictJSONError",
    "EntryError",
    "ExportFault",
    "ApiError",
    "TransportError",
    "ExportFailed",
]
