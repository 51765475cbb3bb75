"""The SDK's error types: one base class, one subclass per kind of failure."""

from __future__ import annotations


class AuditLogError(Exception):
    """Base class of every error this package raises on purpose."""


class VerificationError(AuditLogError):
    """Something does not verify: a hash, a proof, a signature or a format."""


class StrictJSONError(VerificationError):
    """JSON text that a verifier refuses: not JSON, or outside the I-JSON profile hashing needs.

    ``kind`` is one of ``"invalid_json"``, ``"duplicate_member"``, ``"unsafe_integer"``,
    ``"inexact_number"`` and ``"invalid_string"`` (the words of test-vectors/v1/strict-json.json);
    ``path`` is where the fault is (``"events[3].actor.id"``, ``""`` for the root), None for
    ``invalid_json``.
    """

    def __init__(self, kind: str, path: str | None, message: str) -> None:
        where = "" if path is None else f" at {path or 'the root'}"
        super().__init__(f"{kind}{where}: {message}")
        self.kind = kind
        self.path = path
        self.detail = message


class ProofError(VerificationError):
    """An RFC 9162 inclusion or consistency proof does not verify."""


class CheckpointError(VerificationError):
    """A signed checkpoint note does not verify or does not parse.

    ``kind`` is one of ``"malformed"`` (the text or a signature line is not well formed),
    ``"no_signature"`` (no signature by a trusted key) and ``"signature"`` (a signature by a
    trusted key does not verify), the words the shared test vectors use.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ReceiptError(VerificationError):
    """A receipt's signature does not verify, or the receipt is malformed."""


class EntryError(VerificationError):
    """An entry returned by the API does not match its digest, leaf hash or proof."""


class ExportFault(VerificationError):
    """The first failure found while verifying an export bundle.

    ``code`` is one of the codes of docs/FORMATS.md "Verifying an export" (``manifest_invalid``,
    ``checkpoint_invalid``, ``row_malformed``, ``row_order``, ``content_digest``, ``leaf_hash``,
    ``chain_hash``, ``row_count``, ``proof_invalid``, ``root_mismatch``, ``data_sha256``,
    ``proof_sha256``). ``row`` is the 1-based number of the data row and ``seq`` its seq, for row
    faults; both are None otherwise (``seq`` also when the row is too broken to have one).
    """

    def __init__(self, code: str, message: str, *, row: int | None = None, seq: int | None = None) -> None:
        where = ""
        if row is not None:
            where = f" (row {row}" + (f", seq {seq})" if seq is not None else ")")
        super().__init__(f"{code}: {message}{where}")
        self.code = code
        self.row = row
        self.seq = seq
        self.detail = message


class ApiError(AuditLogError):
    """The service (or API Gateway in front of it) answered with an error status.

    ``code`` is the service's error code (``invalid_request``, ``idempotency_conflict``, ...);
    API Gateway's own answers get ``unauthorized`` (401), ``forbidden`` (403) or ``throttled``
    (429). ``retry_after`` is the Retry-After header in seconds, when there was one.
    """

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class TransportError(AuditLogError):
    """The request did not get an HTTP answer (connection refused, reset, timed out)."""


class ExportFailed(AuditLogError):
    """An export job ended with status ``failed``, or did not finish in time."""
