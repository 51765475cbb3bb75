"""Signed checkpoints: C2SP tlog-checkpoint bodies inside C2SP signed notes, ECDSA P-256 (type 0x02).

A note is the checkpoint body (origin, tree size, base64 root, optional extension lines, each
ending in a newline), a blank line, and signature lines ``— <key name> <base64(key ID ||
DER ECDSA signature)>``. The key ID of an ECDSA key is the first 4 bytes of SHA-256 over its DER
SubjectPublicKeyInfo; the signature covers SHA-256 of the body including its final newline.

Verification follows the signed-note rules, in the same order as the service's own verifier:
signatures by keys that are not trusted (another name or key ID, such as witness cosignatures)
are ignored, every signature by a trusted key must verify, at least one must be present, and only
then is the body parsed.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import CheckpointError
from .hashes import b64decode_strict, sha256

SIGNATURE_TYPE_ECDSA = 0x02
MAX_SIGNATURES = 100
TIMESTAMP_PREFIX = "timestamp "
_SIGNATURE_PREFIX = "\u2014 "


@dataclass(frozen=True)
class Checkpoint:
    """A verified (or merely parsed) checkpoint body."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    note: str | None = field(default=None, compare=False)
    key_name: str | None = field(default=None, compare=False)

    @property
    def root_hex(self) -> str:
        return self.root.hex()

    @property
    def timestamp(self) -> int | None:
        """The signer's ``timestamp <unix seconds>`` claim, if the note has one."""
        for line in self.extensions:
            if line.startswith(TIMESTAMP_PREFIX):
                return _parse_decimal(line[len(TIMESTAMP_PREFIX) :])
        return None


@dataclass(frozen=True)
class TrustedKey:
    """A checkpoint signing key the verifier trusts: its signed-note name and DER SPKI."""

    name: str
    spki_der: bytes

    def __post_init__(self) -> None:
        _validate_key_name(self.name, CheckpointError("malformed", f"key name {self.name!r} is not valid"))
        _load_public_key(self.spki_der)

    @property
    def key_id(self) -> bytes:
        return key_id_ecdsa(self.spki_der)

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.name, self.spki_der)

    @classmethod
    def from_verifier_key(cls, text: str) -> TrustedKey:
        return parse_verifier_key(text)

    @classmethod
    def from_base64(cls, name: str, public_key_b64: str) -> TrustedKey:
        try:
            der = base64.b64decode(public_key_b64, validate=True)
        except ValueError as e:
            raise CheckpointError("malformed", "the public key is not base64") from e
        return cls(name, der)

    @classmethod
    def from_pem(cls, name: str, pem: str | bytes) -> TrustedKey:
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise CheckpointError("malformed", "the PEM is not a public key") from e
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(name, der)


def trusted_keys_from_response(response: Mapping[str, Any]) -> list[TrustedKey]:
    """The current and retired keys of ``GET /v1/checkpoints/public-key``.

    Keys fetched from the service you are checking only help against later tampering; pin them
    (or compare them with a copy obtained out of band) for real assurance.
    """
    name = response["key_name"]
    keys = [TrustedKey.from_base64(name, response["public_key"])]
    for retired in response.get("retired") or []:
        if retired.get("verifier_key"):
            keys.append(parse_verifier_key(retired["verifier_key"]))
        else:
            keys.append(TrustedKey.from_base64(name, retired["public_key"]))
    return keys


def key_id_ecdsa(spki_der: bytes) -> bytes:
    """The signed-note key ID of an ECDSA key: ``SHA-256(DER SPKI)[:4]``."""
    return sha256(spki_der)[:4]


def verifier_key(key_name: str, spki_der: bytes) -> str:
    """``<key name>+<key ID as 8 hex>+base64(0x02 || DER SPKI)``, as Go's sumdb/note takes it."""
    _validate_key_name(key_name, CheckpointError("malformed", f"key name {key_name!r} is not valid"))
    _load_public_key(spki_der)
    material = bytes([SIGNATURE_TYPE_ECDSA]) + spki_der
    return f"{key_name}+{key_id_ecdsa(spki_der).hex()}+{base64.b64encode(material).decode()}"


def parse_verifier_key(text: str) -> TrustedKey:
    """Parses a verifier key string and checks that its key ID matches its key."""
    bad = CheckpointError("malformed", "not a verifier key string <name>+<8 hex>+<base64(0x02 || DER SPKI)>")
    if not isinstance(text, str):
        raise bad
    parts = text.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise bad
    name, id_hex, material_b64 = parts
    _validate_key_name(name, bad)
    if len(id_hex) != 8 or any(c not in "0123456789abcdef" for c in id_hex):
        raise bad
    try:
        material = b64decode_strict(material_b64, "key material")
    except ValueError as e:
        raise bad from e
    if len(material) < 2 or material[0] != SIGNATURE_TYPE_ECDSA:
        raise CheckpointError("malformed", "the verifier key is not an ECDSA (type 0x02) key")
    key = TrustedKey(name, material[1:])
    if key.key_id.hex() != id_hex:
        raise CheckpointError("malformed", "the verifier key's key ID does not match its public key")
    return key


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parses checkpoint note text strictly (origin, size, root, extension lines)."""
    if not text.endswith("\n"):
        raise CheckpointError("malformed", "the note text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("malformed", "a checkpoint needs an origin, a tree size and a root hash line")
    origin, size_line, root_line, *extensions = lines
    if not origin:
        raise CheckpointError("malformed", "the origin line is empty")
    size = _parse_decimal(size_line)
    if size is None:
        raise CheckpointError("malformed", f"tree size {size_line!r} is not a decimal number without leading zeros")
    try:
        root = b64decode_strict(root_line, "root")
    except ValueError:
        root = b""
    if len(root) != 32:
        raise CheckpointError("malformed", "the root hash line is not the padded base64 of 32 bytes")
    _check_no_control(origin)
    timestamps = 0
    for i, line in enumerate(extensions):
        if not line:
            raise CheckpointError("malformed", f"extension line {i} is empty")
        _check_no_control(line)
        if line.startswith(TIMESTAMP_PREFIX):
            if _parse_decimal(line[len(TIMESTAMP_PREFIX) :]) is None:
                raise CheckpointError("malformed", f"extension line {line!r} is not `timestamp <unix seconds>`")
            timestamps += 1
            if timestamps > 1:
                raise CheckpointError("malformed", "more than one timestamp extension line")
    return Checkpoint(origin, size, root, tuple(extensions))


def verify_checkpoint(note: str, keys: TrustedKey | Iterable[TrustedKey]) -> Checkpoint:
    """Verifies a signed note with one or more trusted keys and returns its checkpoint.

    Each signature line names its key by name and key ID; lines naming no trusted key are ignored.
    Raises CheckpointError (``kind`` malformed, no_signature or signature).
    """
    trusted = [keys] if isinstance(keys, TrustedKey) else list(keys)
    if not trusted:
        raise ValueError("at least one trusted key is needed")
    by_id: dict[tuple[str, bytes], ec.EllipticCurvePublicKey] = {
        (k.name, k.key_id): _load_public_key(k.spki_der) for k in trusted
    }
    if not isinstance(note, str):
        raise CheckpointError("malformed", "the note is not text")
    if any(c != "\n" and unicodedata.category(c) == "Cc" for c in note):
        raise CheckpointError("malformed", "the note contains a control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed", "no blank line separates the note text from its signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        raise CheckpointError("malformed", "signature line 0 is malformed")
    found_name = None
    for i, line in enumerate(signatures[:-1].split("\n")):
        if i >= MAX_SIGNATURES:
            raise CheckpointError("malformed", f"the note has more than {MAX_SIGNATURES} signatures")
        name, key_id, signature = _parse_signature_line(line, i)
        public_key = by_id.get((name, key_id))
        if public_key is None:
            continue  # someone else's signature, such as a witness cosignature
        try:
            public_key.verify(signature, text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as e:
            raise CheckpointError(
                "signature", f"a signature by key {name} with key ID {key_id.hex()} does not verify"
            ) from e
        found_name = name
    if found_name is None:
        names = ", ".join(f"{k.name} ({k.key_id.hex()})" for k in trusted)
        raise CheckpointError("no_signature", f"the note has no signature by a trusted key: {names}")
    body = parse_checkpoint_body(text)
    return Checkpoint(body.origin, body.size, body.root, body.extensions, note=note, key_name=found_name)


def _parse_signature_line(line: str, index: int) -> tuple[str, bytes, bytes]:
    bad = CheckpointError("malformed", f"signature line {index} is malformed")
    if not line.startswith(_SIGNATURE_PREFIX):
        raise bad
    rest = line[len(_SIGNATURE_PREFIX) :]
    name, sep, encoded = rest.partition(" ")
    if not sep:
        raise bad
    _validate_key_name(name, bad)
    try:
        decoded = b64decode_strict(encoded, "signature")
    except ValueError as e:
        raise bad from e
    if len(decoded) < 5:
        raise bad
    return name, decoded[:4], decoded[4:]


def _parse_decimal(text: str) -> int | None:
    if not text or not text.isascii() or not text.isdigit() or (text != "0" and text.startswith("0")):
        return None
    value = int(text)
    return value if value < 2**64 else None


def _validate_key_name(name: object, error: CheckpointError) -> None:
    if (
        not isinstance(name, str)
        or not name
        or any(c.isspace() or c == "+" or unicodedata.category(c) == "Cc" for c in name)
    ):
        raise error


def _check_no_control(text: str) -> None:
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise CheckpointError("malformed", "the text contains a control character")


def _load_public_key(spki_der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(bytes(spki_der))
    except (ValueError, TypeError) as e:
        raise CheckpointError("malformed", "the public key is not a DER SubjectPublicKeyInfo") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CheckpointError("malformed", "the public key is not a P-256 key")
    return key
