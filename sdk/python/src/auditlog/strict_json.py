"""Strict JSON parsing: the I-JSON profile (RFC 7493) that RFC 8785 hashing presumes.

Python's ``json`` keeps the last of two members with the same name and reads any number, so a
verifier using it could hash one event and show another. ``loads_strict`` refuses such text
instead (docs/FORMATS.md "Strict JSON (I-JSON)"); every verifier of this package reads JSON through it.

The rule, the same in every implementation of the log and pinned by
test-vectors/v1/strict-json.json:

* the text is JSON (RFC 8259) in UTF-8 (``invalid_json``, path None);
* no object has two members with the same name, compared after unescaping
  (``duplicate_member``, at the second one);
* an integer literal lies within +-(2^53-1) (``unsafe_integer``); any other number is exactly
  the value of its nearest double, whose shortest form is what JCS writes (``inexact_number``);
  and a double that is an integer from 2^53 up to (not including) 10^21 is ``unsafe_integer``;
* strings and names hold no surrogate code point and no Unicode noncharacter
  (``invalid_string``);
* arrays and objects nest at most 127 deep, as deep as serde_json reads (``invalid_json``).

Valid text is parsed by the C-accelerated ``json`` module, with hooks that notice a duplicate
or a number outside the rule; only text they refuse (or that holds an escape or character the
string check must look at, or many arrays and objects) is read again by a small
recursive-descent scanner, which finds the first fault in document order and its path.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from .errors import StrictJSONError

MAX_DEPTH = 127
_MAX_SAFE_INTEGER = 2**53 - 1
_UNSAFE_FROM = float(2**53)
_UNSAFE_BELOW = 1e21
# Surrogates and noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
_BAD_CHARACTERS = "\ud800-\udfff\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)
)
_BAD_CHARACTER = re.compile(f"[{_BAD_CHARACTERS}]")
# Text that may hold a forbidden character, raw or escaped (high surrogates start the escaped
# pairs of supplementary noncharacters); a false alarm only costs a scan. The raw class is a
# superset with one range for the planes above the first two, which regex matches faster.
_SUSPECT_RAW = re.compile("[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\U0001fffe-\U0010ffff]")
_SUSPECT_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|[fF][dD][dDeE]|[fF]{3}[eEfF])")
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


def loads_strict(text: str | bytes) -> Any:
    """Parses JSON text that follows the rule above into dicts, lists, str, int, float, bool and
    None (integer literals as int, other numbers as float). Raises StrictJSONError."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise StrictJSONError("invalid_json", None, f"the text is not UTF-8: {e}") from None
    if not _suspect(text):
        try:
            return json.loads(
                text, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
            )
        except (_Refused, ValueError):
            pass  # the scanner below finds the first fault and where it is
    return _Scanner(text).document()


def _suspect(text: str) -> bool:
    """Whether the fast path cannot be trusted with the text's strings or nesting."""
    return (
        (not text.isascii() and _SUSPECT_RAW.search(text) is not None)
        or ("\\u" in text and _SUSPECT_ESCAPE.search(text) is not None)
        or _nests_deeper(text)
    )


def _nests_deeper(text: str) -> bool:
    """Whether arrays and objects nest deeper than MAX_DEPTH, for text that is valid JSON."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING_LITERAL.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def loads_lenient(text: str | bytes) -> Any:
    """Parses JSON the way serde_json reads a ``Value``: the last of duplicate members wins,
    numbers are rounded, noncharacters pass; what serde_json refuses (syntax, a lone surrogate
    escape, a number beyond the double range, nesting deeper than MAX_DEPTH) raises
    StrictJSONError. Only for naming the seq of an export row that is not strict JSON, as the
    Rust verifier does."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise StrictJSONError("invalid_json", None, f"the text is not UTF-8: {e}") from None
    return _Scanner(text, lenient=True).document()


def number_fault(literal: str) -> str | None:
    """The fault of a JSON number literal under the rule (``unsafe_integer``, ``inexact_number``), or None."""
    if "." not in literal and "e" not in literal and "E" not in literal:
        # 2^53-1 has 16 digits; longer literals are not converted (int() refuses very long ones).
        digits = len(literal) - literal.startswith("-")
        unsafe = digits > 16 or (digits == 16 and abs(int(literal)) > _MAX_SAFE_INTEGER)
        return "unsafe_integer" if unsafe else None
    value = float(literal)
    if not math.isfinite(value) or Decimal(literal) != Decimal(repr(value)):
        return "inexact_number"
    if value.is_integer() and _UNSAFE_FROM <= abs(value) < _UNSAFE_BELOW:
        return "unsafe_integer"
    return None


class _Refused(Exception):
    """Raised by a hook of the fast path: the text needs the scanner."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Refused
    return obj


def _int(literal: str) -> int:
    if number_fault(literal) is not None:
        raise _Refused
    return int(literal)


def _float(literal: str) -> float:
    if number_fault(literal) is not None:
        raise _Refused
    return float(literal)


def _constant(name: str) -> Any:
    raise _Refused


def _path(segments: list[str | int]) -> str:
    out = ""
    for s in segments:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


class _Scanner:
    """Recursive descent over the text; the first fault found, in document order, is raised.
    ``lenient`` reads as serde_json does (see ``loads_lenient``)."""

    def __init__(self, text: str, *, lenient: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.path: list[str | int] = []
        self.lenient = lenient

    def fail(self, kind: str, message: str, at: list[str | int] | None = None) -> StrictJSONError:
        if kind == "invalid_json":
            return StrictJSONError(kind, None, f"{message} at offset {self.pos}")
        return StrictJSONError(kind, _path(self.path if at is None else at), message)

    def document(self) -> Any:
        self.skip_whitespace()
        value = self.value(0)
        self.skip_whitespace()
        if self.pos != len(self.text):
            raise self.fail("invalid_json", "text after the value")
        return value

    def skip_whitespace(self) -> None:
        self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def value(self, depth: int) -> Any:
        text, pos = self.text, self.pos
        c = text[pos : pos + 1]
        if c in ("{", "[") and depth >= MAX_DEPTH:
            raise self.fail("invalid_json", f"arrays and objects nest deeper than {MAX_DEPTH} levels")
        if c == "{":
            return self.object(depth)
        if c == "[":
            return self.array(depth)
        if c == '"':
            return self.string()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, pos):
                self.pos += len(word)
                return value
        m = _NUMBER.match(text, pos)
        if m is None:
            raise self.fail("invalid_json", "a value was expected")
        self.pos = m.end()
        literal = m.group()
        is_integer = not (m.group(1) or m.group(2))
        if self.lenient:
            value = float(literal)
            if not math.isfinite(value):
                raise self.fail("inexact_number", f"the number {literal[:40]} is beyond the range of a double")
            # Integers that fit 64 bits stay exact, as serde_json keeps them.
            return int(literal) if is_integer and len(literal) <= 20 and abs(int(literal)) < 2**64 else value
        fault = number_fault(literal)
        if fault == "unsafe_integer":
            raise self.fail(fault, f"the number {literal[:40]} is an integer beyond +-(2^53-1)")
        if fault is not None:
            raise self.fail(fault, f"the number {literal[:40]} is not exactly the value of a double")
        return int(literal) if is_integer else float(literal)

    def object(self, depth: int) -> dict[str, Any]:
        self.pos += 1
        obj: dict[str, Any] = {}
        self.skip_whitespace()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return obj
        while True:
            if not self.text.startswith('"', self.pos):
                raise self.fail("invalid_json", "a member name was expected")
            name = self.string()
            if name in obj and not self.lenient:
                raise self.fail("duplicate_member", f"the member name {name[:40]!r} occurs twice", self.path + [name])
            self.skip_whitespace()
            if not self.text.startswith(":", self.pos):
                raise self.fail("invalid_json", "':' was expected")
            self.pos += 1
            self.skip_whitespace()
            self.path.append(name)
            obj[name] = self.value(depth + 1)
            self.path.pop()
            self.skip_whitespace()
            c = self.text[self.pos : self.pos + 1]
            self.pos += 1
            if c == "}":
                return obj
            if c != ",":
                self.pos -= 1
                raise self.fail("invalid_json", "',' or '}' was expected")
            self.skip_whitespace()

    def array(self, depth: int) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        self.skip_whitespace()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            self.path.append(len(items))
            items.append(self.value(depth + 1))
            self.path.pop()
            self.skip_whitespace()
            c = self.text[self.pos : self.pos + 1]
            self.pos += 1
            if c == "]":
                return items
            if c != ",":
                self.pos -= 1
                raise self.fail("invalid_json", "',' or ']' was expected")
            self.skip_whitespace()

    def string(self) -> str:
        """A string or member name. A forbidden character is reported at the current path (for a
        name: the path of its object): an escaped lone surrogate where it stands, as serde_json
        and jiter do, any other after the whole string has been read."""
        text = self.text
        self.pos += 1
        parts: list[str] = []
        while True:
            m = _PLAIN.match(text, self.pos)
            parts.append(m.group())  # type: ignore[union-attr]
            self.pos = m.end()  # type: ignore[union-attr]
            c = text[self.pos : self.pos + 1]
            if c == '"':
                self.pos += 1
                break
            if c != "\\":
                raise self.fail(
                    "invalid_json", "an unterminated string" if not c else "a control character in a string"
                )
            e = text[self.pos + 1 : self.pos + 2]
            if e in _ESCAPES:
                parts.append(_ESCAPES[e])
                self.pos += 2
                continue
            unit = self.hex4(self.pos + 1)
            self.pos += 6
            if 0xD800 <= unit <= 0xDBFF:
                after = text[self.pos : self.pos + 2]
                if after in ("", "\\"):
                    raise self.fail("invalid_json", "an unterminated string")
                low = self.hex4(self.pos + 1) if after == "\\u" else None
                if low is None or not 0xDC00 <= low <= 0xDFFF:
                    raise self.fail("invalid_string", f"the string holds the lone surrogate escape \\u{unit:04x}")
                unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                self.pos += 6
            elif 0xDC00 <= unit <= 0xDFFF:
                raise self.fail("invalid_string", f"the string holds the lone surrogate escape \\u{unit:04x}")
            parts.append(chr(unit))
        value = "".join(parts)
        bad = None if self.lenient else _BAD_CHARACTER.search(value)
        if bad is not None:
            raise self.fail("invalid_string", f"the string holds U+{ord(bad.group()):04X}, a surrogate or noncharacter")
        return value

    def hex4(self, at: int) -> int:
        """The four hex digits of a \\u escape whose 'u' is at ``at``."""
        digits = self.text[at + 1 : at + 5]
        if self.text[at : at + 1] != "u" or len(digits) != 4 or not _HEX.issuperset(digits):
            raise self.fail("invalid_json", "an invalid escape in a string")
        return int(digits, 16)
