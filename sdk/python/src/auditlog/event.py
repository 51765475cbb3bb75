"""Events: the normalised content the service stores and digests, and publisher signing.

The content is the JCS of the normalised event: ``occurred_at`` rewritten as UTC with exactly six
fractional digits (sub-microsecond digits truncated), ``outcome`` always present (default
``success``), absent optional members omitted (a JSON null counts as absent), ``metadata``
omitted when empty. A publisher signs that content without its ``signature`` member.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .canonical import jcs

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_ACTOR_MEMBERS = ("id", "type", "name", "ip", "user_agent")
_RESOURCE_MEMBERS = ("type", "id", "name")
_TEXT_MEMBERS = ("severity", "source", "request_id", "session_id")
_EVENT_MEMBERS = frozenset(
    {"action", "actor", "resource", "outcome", "occurred_at", "metadata", "signature", *_TEXT_MEMBERS}
)


def parse_timestamp(text: str) -> datetime:
    """Parses RFC 3339 with an explicit offset into an aware UTC datetime, truncated to microseconds."""
    m = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp with offset, e.g. 2026-01-31T12:00:00Z")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "").ljust(6, "0")[:6])
    if m.group(8):
        offset = timedelta(0)
    else:
        sign = -1 if m.group(9) == "-" else 1
        offset = sign * timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone(offset))
    except ValueError as e:
        raise ValueError(f"{text!r} is not a valid time: {e}") from e
    return local.astimezone(timezone.utc)


def format_timestamp(t: datetime) -> str:
    """The one textual form of a time inside hashed bytes: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if t.tzinfo is None:
        raise ValueError("the datetime has no time zone")
    u = t.astimezone(timezone.utc)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def normalize_timestamp(text: str) -> str:
    """RFC 3339 text rewritten in the canonical form (UTC, six fractional digits)."""
    return format_timestamp(parse_timestamp(text))


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be a string")
    return value


def normalize_event(event: Mapping[str, Any], *, default_occurred_at: str | datetime | None = None) -> dict[str, Any]:
    """The event as the service normalises it (signature kept, if there is one).

    ``default_occurred_at`` fills a missing ``occurred_at`` (the service uses its receive time).
    Raises ValueError naming the field for unknown members and wrong types.
    """
    if not isinstance(event, Mapping):
        raise ValueError("$: the event must be an object")
    unknown = sorted(set(event) - _EVENT_MEMBERS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown member")
    out: dict[str, Any] = {"action": _text(event.get("action"), "action")}

    actor = event.get("actor")
    if not isinstance(actor, Mapping):
        raise ValueError("actor: must be an object with an id")
    unknown = sorted(set(actor) - set(_ACTOR_MEMBERS))
    if unknown:
        raise ValueError(f"actor.{unknown[0]}: unknown member")
    out["actor"] = {k: _text(actor[k], f"actor.{k}") for k in _ACTOR_MEMBERS if actor.get(k) is not None}
    if "id" not in out["actor"]:
        raise ValueError("actor.id: required")

    resource = event.get("resource")
    if resource is not None:
        if not isinstance(resource, Mapping):
            raise ValueError("resource: must be an object")
        unknown = sorted(set(resource) - set(_RESOURCE_MEMBERS))
        if unknown:
            raise ValueError(f"resource.{unknown[0]}: unknown member")
        out["resource"] = {
            k: _text(resource[k], f"resource.{k}") for k in _RESOURCE_MEMBERS if resource.get(k) is not None
        }
        if "type" not in out["resource"]:
            raise ValueError("resource.type: required when resource is present")

    outcome = event.get("outcome")
    out["outcome"] = "success" if outcome is None else _text(outcome, "outcome")

    occurred_at = event.get("occurred_at")
    if occurred_at is None:
        occurred_at = default_occurred_at
    if occurred_at is None:
        raise ValueError("occurred_at: missing and no default given")
    if isinstance(occurred_at, datetime):
        out["occurred_at"] = format_timestamp(occurred_at)
    else:
        try:
            out["occurred_at"] = normalize_timestamp(_text(occurred_at, "occurred_at"))
        except ValueError as e:
            raise ValueError(f"occurred_at: {e}") from e

    for k in _TEXT_MEMBERS:
        if event.get(k) is not None:
            out[k] = _text(event[k], k)

    metadata = event.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise ValueError("metadata: must be an object")
        if metadata:
            out["metadata"] = dict(metadata)

    signature = event.get("signature")
    if signature is not None:
        if not isinstance(signature, Mapping) or set(signature) != {"key_id", "alg", "sig"}:
            raise ValueError("signature: must be an object with key_id, alg and sig")
        out["signature"] = {k: _text(signature[k], f"signature.{k}") for k in ("key_id", "alg", "sig")}
    return out


def content_bytes(event: Mapping[str, Any], *, default_occurred_at: str | datetime | None = None) -> bytes:
    """The canonical content the service stores and digests (signature included)."""
    return jcs(normalize_event(event, default_occurred_at=default_occurred_at))


def signing_bytes(event: Mapping[str, Any]) -> bytes:
    """The bytes a publisher signs: the canonical content without ``signature``.

    The event must carry ``occurred_at`` (a signed event always does; see ``sign_event``).
    """
    normalized = normalize_event(event)
    normalized.pop("signature", None)
    return jcs(normalized)


def sign_event(
    event: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Signs an event with a publisher's Ed25519 key and returns the normalised, signed event.

    A missing ``occurred_at`` becomes ``now`` (default: the current time) and a missing
    ``outcome`` becomes ``success``, because a signed event must carry both.
    """
    if not isinstance(key_id, str) or not key_id:
        raise ValueError("key_id: must be a non-empty string")
    draft = {k: v for k, v in event.items() if k != "signature"}
    if draft.get("occurred_at") is None:
        draft["occurred_at"] = now or datetime.now(timezone.utc)
    if draft.get("outcome") is None:
        draft["outcome"] = "success"
    normalized = normalize_event(draft)
    sig = private_key.sign(jcs(normalized))
    normalized["signature"] = {"key_id": key_id, "alg": "ed25519", "sig": base64.b64encode(sig).decode("ascii")}
    return normalized


def signing_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from its 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key, the form ``POST /v1/signing-keys`` takes (base64 encoded)."""
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
