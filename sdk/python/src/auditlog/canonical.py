"""RFC 8785 (JCS) canonical JSON, and the JSON parsing that feeds it.

Every hashed or signed JSON byte string of the log is the JCS form of a value. JCS numbers are
IEEE doubles in ECMAScript notation, so ``loads`` parses integers outside the exactly
representable range (beyond +-(2^53-1)) as doubles, the way every other JCS implementation reads
them; smaller integers stay ``int`` and print without a fraction either way.

``canonicalize_text`` takes any JSON text, as the RFC's examples do; the verifiers instead read
JSON with ``strict_json.loads_strict``, which refuses text whose canonical form would depend on
the reader (duplicate names, numbers that round).
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE_INTEGER = 2**53 - 1


def _parse_int(text: str) -> int | float:
    value = int(text)
    if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        return value
    return float(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """Parses JSON text for canonicalisation (NaN and Infinity are refused)."""
    return json.loads(text, parse_int=_parse_int, parse_constant=_reject_constant)


def jcs(value: Any) -> bytes:
    """The RFC 8785 canonical bytes of a JSON value (dicts, lists, str, int, float, bool, None)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as e:
        raise ValueError(f"cannot canonicalise: {e}") from e


def canonicalize_text(text: str | bytes) -> bytes:
    """The JCS form of JSON text."""
    return jcs(loads(text))
