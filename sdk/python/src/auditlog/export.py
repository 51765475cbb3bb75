"""Offline verification of export bundles (docs/FORMATS.md "Export bundle").

``verify_export`` checks in the order FORMATS.md fixes and raises ExportFault with the first
failure's code (and, for row faults, the 1-based row number and the row's seq), so every
implementation reports a tampered bundle the same way. It streams: the data and proof files are
read line by line (gzip members one after another), both files' SHA-256 are taken over the raw
bytes as they are read, and the Merkle tree is rebuilt as a compact range, so memory stays
O(log n) whatever the file sizes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from .canonical import jcs
from .checkpoint import Checkpoint, TrustedKey, verify_checkpoint
from .errors import CheckpointError, ExportFault, StrictJSONError
from .event import format_timestamp, parse_timestamp
from .hashes import ZERO_HASH, b64decode_strict, canonical_entry, chain_link, content_digest, leaf_hash, parse_hash
from .merkle import CompactRange
from .strict_json import loads_lenient, loads_strict

FORMAT = "audit-log-export/v1"
CSV_COLUMNS = (
    "seq,id,received_at,erased,occurred_at,action,actor_id,actor_type,actor_name,resource_type,resource_id,"
    "resource_name,outcome,severity,source,request_id,session_id,metadata,event,salt,content_digest,leaf_hash,"
    "chain_hash"
).split(",")
# CSV copy columns and the event member each copies (metadata is compared as JCS text).
_CSV_COPIES = (
    ("occurred_at", ("occurred_at",)),
    ("action", ("action",)),
    ("actor_id", ("actor", "id")),
    ("actor_type", ("actor", "type")),
    ("actor_name", ("actor", "name")),
    ("resource_type", ("resource", "type")),
    ("resource_id", ("resource", "id")),
    ("resource_name", ("resource", "name")),
    ("outcome", ("outcome",)),
    ("severity", ("severity",)),
    ("source", ("source",)),
    ("request_id", ("request_id",)),
    ("session_id", ("session_id",)),
    ("metadata", ("metadata",)),
)
_MAX_LINE = 8 << 20  # far above any valid row (an event is at most 64 KiB in canonical form)
_CHUNK = 1 << 16
_MAX_LEVEL = 63


@dataclass(frozen=True)
class ExportReport:
    """What a verified bundle proves: these rows are entries of the log under this checkpoint."""

    export_id: str
    tenant_id: str
    rows: int
    first_seq: int | None
    last_seq: int | None
    proof_nodes: int
    checkpoint: Checkpoint


class _Row(NamedTuple):
    seq: int
    id: str
    received_at: str
    content: bytes | None
    salt: bytes | None
    content_digest: bytes
    leaf_hash: bytes
    chain_hash: bytes


class _Malformed(Exception):
    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class _HashingReader(io.RawIOBase):
    """A raw reader that hashes and counts every byte it passes on."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)
        if n:
            self.sha256.update(memoryview(b)[:n])
            self.bytes += n
        return n or 0

    def drain(self) -> None:
        while chunk := self._f.read(_CHUNK):
            self.sha256.update(chunk)
            self.bytes += len(chunk)

    def close(self) -> None:
        self._f.close()
        super().close()


def verify_export(
    manifest: str | os.PathLike[str] | bytes | Mapping[str, Any],
    data: str | os.PathLike[str],
    proof: str | os.PathLike[str],
    keys: TrustedKey | Iterable[TrustedKey],
) -> ExportReport:
    """Verifies a bundle: the manifest (a path, its bytes, or the parsed object), the data file,
    ``proof.jsonl`` and the trusted checkpoint key(s). Raises ExportFault on the first failure."""
    m = _load_manifest(manifest)
    checkpoint = _verify_manifest_checkpoint(m, keys)
    tree_size = checkpoint.size

    with open(data, "rb") as data_file, open(proof, "rb") as proof_file:
        data_raw = _HashingReader(data_file)
        data_stream: IO[bytes] = io.BufferedReader(data_raw, _CHUNK)
        if m["gzip"]:
            data_stream = gzip.GzipFile(fileobj=data_stream, mode="rb")
        rows = _csv_rows(data_stream) if m["data_format"] == "csv" else _jsonl_rows(data_stream)
        tiler = _ProofTiler(proof_file)

        count = 0
        first_seq = last_seq = None
        previous: _Row | None = None
        while True:
            row_number = count + 1
            try:
                row = next(rows, None)
            except _Malformed as e:
                raise ExportFault("row_malformed", str(e), row=row_number, seq=e.seq) from None
            if row is None:
                break
            count = row_number
            _check_row(row, row_number, previous, tree_size, m["tenant_id"])
            tiler.add_leaf(row.seq, row.leaf_hash)
            if first_seq is None:
                first_seq = row.seq
            last_seq = row.seq
            previous = row

        if count != m["rows"] or first_seq != m["first_seq"] or last_seq != m["last_seq"]:
            raise ExportFault(
                "row_count",
                f"the data has {count} rows with seqs {first_seq} to {last_seq}; the manifest says "
                f"{m['rows']} rows with seqs {m['first_seq']} to {m['last_seq']}",
            )
        tiler.finish(tree_size)
        if tiler.fault is not None:
            raise ExportFault("proof_invalid", tiler.fault)
        if tiler.nodes != m["proof"]["nodes"]:
            raise ExportFault(
                "proof_invalid", f"the proof has {tiler.nodes} nodes; the manifest says {m['proof']['nodes']}"
            )
        if tiler.range.root() != checkpoint.root:
            raise ExportFault("root_mismatch", "the rows and proof nodes do not rebuild the checkpoint's root")
        data_raw.drain()
        _check_file_hash("data_sha256", "data", data_raw, m["data"])
        _check_file_hash("proof_sha256", "proof", tiler.raw, m["proof"])

    return ExportReport(
        export_id=m["export_id"],
        tenant_id=m["tenant_id"],
        rows=count,
        first_seq=first_seq,
        last_seq=last_seq,
        proof_nodes=tiler.nodes,
        checkpoint=checkpoint,
    )


def verify_export_dir(directory: str | os.PathLike[str], keys: TrustedKey | Iterable[TrustedKey]) -> ExportReport:
    """Verifies a bundle laid out in one folder: ``manifest.json`` and the data and proof files
    named by the last part of the manifest's ``data.key`` and ``proof.key``."""
    folder = Path(directory)
    manifest_bytes = _read_manifest_bytes(folder / "manifest.json")
    m = _load_manifest(manifest_bytes)
    data_name = m["data"]["key"].rsplit("/", 1)[-1]
    proof_name = m["proof"]["key"].rsplit("/", 1)[-1]
    for name in (data_name, proof_name):
        if name in ("", ".", "..") or not (folder / name).is_file():
            raise ExportFault("manifest_invalid", f"the bundle has no file {name!r} named by the manifest")
    return verify_export(m, folder / data_name, folder / proof_name, keys)


# --- manifest ---------------------------------------------------------------------------------


def _read_manifest_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ExportFault("manifest_invalid", f"cannot read the manifest: {e}") from e


def _load_manifest(manifest: str | os.PathLike[str] | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(manifest, Mapping):
        m: Any = dict(manifest)
    else:
        raw = manifest if isinstance(manifest, bytes) else _read_manifest_bytes(Path(manifest))
        try:
            m = loads_strict(raw)
        except StrictJSONError as e:
            raise ExportFault("manifest_invalid", f"the manifest does not parse: {e}") from None
    if not isinstance(m, dict):
        raise ExportFault("manifest_invalid", "the manifest is not a JSON object")
    if m.get("format") != FORMAT:
        raise ExportFault("manifest_invalid", f"the manifest's format is {m.get('format')!r}, not {FORMAT!r}")
    for name in ("export_id", "tenant_id"):
        try:
            # As the service reads it: any UUID spelling, used in its canonical (lowercase) form.
            m[name] = str(uuid.UUID(_expect(m, name, str)))
        except ValueError:
            raise ExportFault("manifest_invalid", f"manifest member {name} is not a UUID") from None
    _expect(m, "created_at", str)
    _expect(m, "completed_at", str)
    _expect(m, "filter", dict)
    _expect(m, "gzip", bool)
    if m.get("data_format") not in ("jsonl", "csv"):
        raise ExportFault("manifest_invalid", 'data_format must be "jsonl" or "csv"')
    _expect_count(m, "rows")
    _expect_count(m, "first_seq", nullable=True)
    _expect_count(m, "last_seq", nullable=True)
    for name in ("data", "proof"):
        part = _expect(m, name, dict)
        _expect(part, "key", str, f"{name}.")
        _expect_hash(part, "sha256", f"{name}.")
        _expect_count(part, "bytes", prefix=f"{name}.")
    _expect_count(m["proof"], "nodes", prefix="proof.")
    cp = _expect(m, "checkpoint", dict)
    _expect_count(cp, "tree_size", prefix="checkpoint.")
    _expect_hash(cp, "root", "checkpoint.")
    _expect(cp, "note", str, "checkpoint.")
    return m


def _expect(obj: Mapping[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ExportFault("manifest_invalid", f"manifest member {prefix}{name} is missing or not a {kind.__name__}")
    return value


def _expect_count(obj: Mapping[str, Any], name: str, *, nullable: bool = False, prefix: str = "") -> None:
    value = obj.get(name)
    if nullable and name in obj and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ExportFault(
            "manifest_invalid", f"manifest member {prefix}{name} is missing or not a non-negative integer"
        )


def _expect_hash(obj: Mapping[str, Any], name: str, prefix: str) -> None:
    try:
        parse_hash(obj.get(name))
    except ValueError:
        raise ExportFault(
            "manifest_invalid", f"manifest member {prefix}{name} is not 64 lowercase hex digits"
        ) from None


def _verify_manifest_checkpoint(m: Mapping[str, Any], keys: TrustedKey | Iterable[TrustedKey]) -> Checkpoint:
    cp = m["checkpoint"]
    try:
        checkpoint = verify_checkpoint(cp["note"], keys)
    except CheckpointError as e:
        raise ExportFault("checkpoint_invalid", str(e)) from None
    expected_origin = f"{checkpoint.key_name}/{m['tenant_id']}"
    if checkpoint.origin != expected_origin:
        raise ExportFault("checkpoint_invalid", f"the note's origin is {checkpoint.origin!r}, not {expected_origin!r}")
    if checkpoint.size != cp["tree_size"]:
        raise ExportFault(
            "checkpoint_invalid", f"the note's tree size {checkpoint.size} is not the manifest's {cp['tree_size']}"
        )
    if checkpoint.root.hex() != cp["root"]:
        raise ExportFault("checkpoint_invalid", "the note's root is not the manifest's")
    return checkpoint


def _check_file_hash(code: str, what: str, reader: _HashingReader, expected: Mapping[str, Any]) -> None:
    if reader.sha256.hexdigest() != expected["sha256"]:
        raise ExportFault(code, f"the {what} file's SHA-256 is not the manifest's")
    if reader.bytes != expected["bytes"]:
        raise ExportFault(code, f"the {what} file has {reader.bytes} bytes; the manifest says {expected['bytes']}")


# --- rows -------------------------------------------------------------------------------------


def _check_row(row: _Row, number: int, previous: _Row | None, tree_size: int, tenant_id: str) -> None:
    if previous is not None and row.seq <= previous.seq:
        raise ExportFault("row_order", f"seq {row.seq} does not follow seq {previous.seq}", row=number, seq=row.seq)
    if row.seq >= tree_size:
        raise ExportFault("row_order", f"seq {row.seq} is not below the tree size {tree_size}", row=number, seq=row.seq)
    if row.content is not None and row.salt is not None:
        if content_digest(row.salt, row.content) != row.content_digest:
            raise ExportFault(
                "content_digest", "the event and salt do not give the row's content_digest", row=number, seq=row.seq
            )
    if not _is_canonical_id(row.id) or not _is_canonical_time(row.received_at):
        raise ExportFault(
            "leaf_hash",
            "id or received_at is not in its canonical spelling, which no entry's leaf hash covers",
            row=number,
            seq=row.seq,
        )
    entry = canonical_entry(
        tenant_id=tenant_id,
        seq=row.seq,
        id=row.id,
        received_at=row.received_at,
        content_digest=row.content_digest.hex(),
    )
    if leaf_hash(entry) != row.leaf_hash:
        raise ExportFault(
            "leaf_hash", "the canonical entry does not hash to the row's leaf_hash", row=number, seq=row.seq
        )
    if row.seq == 0 or (previous is not None and row.seq == previous.seq + 1):
        before = ZERO_HASH if row.seq == 0 else previous.chain_hash  # type: ignore[union-attr]
        if chain_link(before, row.leaf_hash) != row.chain_hash:
            raise ExportFault(
                "chain_hash", "the row's chain_hash does not follow from the previous row", row=number, seq=row.seq
            )


def _is_canonical_id(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _is_canonical_time(text: str) -> bool:
    try:
        return format_timestamp(parse_timestamp(text)) == text
    except ValueError:
        return False


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines of a (possibly gzip'd) byte stream; every line must end in a newline."""
    while True:
        try:
            line = stream.readline(_MAX_LINE)
        except (OSError, EOFError, zlib.error) as e:
            raise _Malformed(f"the data file cannot be read: {e}") from None
        if not line:
            return
        if not line.endswith(b"\n"):
            raise _Malformed(
                "the line does not end with a newline" if len(line) < _MAX_LINE else "the line is too long"
            )
        yield line


def _seq_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _readable_seq(line: bytes) -> int | None:
    """The seq of a row that is JSON but not strict JSON, read the lenient way (the last of
    duplicate members), so the fault can name the entry; None when even that fails."""
    try:
        obj = loads_lenient(line)
    except StrictJSONError:
        return None
    seq = _seq_of(obj.get("seq")) if isinstance(obj, dict) else None
    return seq if seq is not None and seq < 2**64 else None


def _jsonl_rows(stream: IO[bytes]) -> Iterator[_Row]:
    for line in _lines(stream):
        try:
            obj = loads_strict(line)
        except StrictJSONError as e:
            raise _Malformed(f"the row does not parse: {e}", _readable_seq(line)) from None
        if not isinstance(obj, dict):
            raise _Malformed("the row is not a JSON object")
        seq = _seq_of(obj.get("seq"))
        try:
            if seq is None:
                raise ValueError("seq is missing or not a non-negative integer")
            for name in ("id", "received_at"):
                if not isinstance(obj.get(name), str):
                    raise ValueError(f"{name} is missing or not a string")
            erased, event, salt_text = obj.get("erased"), obj.get("event", ...), obj.get("salt", ...)
            if not isinstance(erased, bool):
                raise ValueError("erased is missing or not a boolean")
            if event is ... or salt_text is ...:
                raise ValueError("event or salt is missing")
            content = salt = None
            if erased:
                if event is not None or salt_text is not None:
                    raise ValueError("an erased row must have a null event and salt")
            else:
                if not isinstance(event, dict) or salt_text is None:
                    raise ValueError("a row that is not erased needs an event object and a salt")
                content = jcs(event)
                salt = _salt(salt_text)
            yield _Row(
                seq,
                obj["id"],
                obj["received_at"],
                content,
                salt,
                parse_hash(obj.get("content_digest"), "content_digest"),
                parse_hash(obj.get("leaf_hash"), "leaf_hash"),
                parse_hash(obj.get("chain_hash"), "chain_hash"),
            )
        except ValueError as e:
            raise _Malformed(str(e), seq) from None


def _salt(value: Any) -> bytes:
    salt = b64decode_strict(value, "salt")
    if len(salt) != 32:
        raise ValueError("salt is not base64 of 32 bytes")
    return salt


def _decoded_lines(stream: IO[bytes]) -> Iterator[str]:
    for line in _lines(stream):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _Malformed(f"the data is not UTF-8: {e}") from None


def _csv_rows(stream: IO[bytes]) -> Iterator[_Row]:
    reader = csv.reader(_decoded_lines(stream), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise ExportFault("row_malformed", f"the CSV header cannot be read: {e}") from None
    if header != CSV_COLUMNS:
        raise ExportFault("row_malformed", "the CSV header is not the export's column list")
    while True:
        try:
            record = next(reader, None)
        except csv.Error as e:
            raise _Malformed(f"the CSV line cannot be read: {e}") from None
        if record is None:
            return
        yield _csv_row(record)


def _csv_row(record: list[str]) -> _Row:
    if len(record) != len(CSV_COLUMNS):
        raise _Malformed(f"the row has {len(record)} fields, not {len(CSV_COLUMNS)}")
    f = dict(zip(CSV_COLUMNS, record, strict=True))
    s = f["seq"]
    seq = int(s) if s.isascii() and s.isdigit() and (s == "0" or not s.startswith("0")) else None
    try:
        if seq is None:
            raise ValueError("seq is not a non-negative decimal integer")
        if not f["id"] or not f["received_at"]:
            raise ValueError("id or received_at is empty")
        if f["erased"] not in ("true", "false"):
            raise ValueError("erased is neither true nor false")
        erased = f["erased"] == "true"
        event = content = salt = None
        if erased:
            if f["event"] or f["salt"]:
                raise ValueError("an erased row must have an empty event and salt")
        else:
            if not f["event"] or not f["salt"]:
                raise ValueError("a row that is not erased needs an event and a salt")
            try:
                event = loads_strict(f["event"])
            except StrictJSONError as e:
                raise ValueError(f"event does not parse: {e}") from None
            if not isinstance(event, dict):
                raise ValueError("event is not a JSON object")
            content = f["event"].encode("utf-8")
            salt = _salt(f["salt"])
        for column, path in _CSV_COPIES:
            if f[column] != _copy_of(event, path, column):
                raise ValueError(f"column {column} differs from the event's value")
        return _Row(
            seq,
            f["id"],
            f["received_at"],
            content,
            salt,
            parse_hash(f["content_digest"], "content_digest"),
            parse_hash(f["leaf_hash"], "leaf_hash"),
            parse_hash(f["chain_hash"], "chain_hash"),
        )
    except ValueError as e:
        raise _Malformed(str(e), seq) from None


def _copy_of(event: Mapping[str, Any] | None, path: tuple[str, ...], column: str) -> str:
    value: Any = event
    for name in path:
        if not isinstance(value, Mapping) or value.get(name) is None:
            return ""
        value = value[name]
    if column == "metadata" or not isinstance(value, str):
        return jcs(value).decode("utf-8")
    return value


# --- proof ------------------------------------------------------------------------------------


class _ProofTiler:
    """Reads proof nodes as the rows need them and merges both into one compact range.

    A proof fault is recorded, not raised: row faults come first in the verification order.
    """

    def __init__(self, f: IO[bytes]) -> None:
        self.raw = _HashingReader(f)
        self._stream = io.BufferedReader(self.raw, _CHUNK)
        self.range = CompactRange()
        self.fault: str | None = None
        self.nodes = 0

    def _next_node(self) -> tuple[int, int, bytes] | None:
        line = self._stream.readline(_MAX_LINE)
        if not line:
            return None
        self.nodes += 1
        where = f"proof line {self.nodes}"
        if not line.endswith(b"\n"):
            raise ValueError(f"{where} does not end with a newline")
        try:
            obj = loads_strict(line)
        except StrictJSONError as e:
            raise ValueError(f"{where} does not parse: {e}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where} is not a JSON object")
        level, index = obj.get("level"), obj.get("index")
        if _seq_of(level) is None or level > _MAX_LEVEL or _seq_of(index) is None:
            raise ValueError(f"{where}: level and index must be non-negative integers")
        return level, index, parse_hash(obj.get("hash"), f"{where} hash")

    def _fill_to(self, position: int, what: str) -> None:
        while self.fault is None and self.range.size < position:
            try:
                node = self._next_node()
                if node is None:
                    raise ValueError(f"the proof ends at leaf {self.range.size}, before {what}")
                level, index, value = node
                start, end = index << level, (index + 1) << level
                if start != self.range.size:
                    raise ValueError(f"proof line {self.nodes} starts at leaf {start}, not at {self.range.size}")
                if end > position:
                    raise ValueError(f"proof line {self.nodes} covers leaves up to {end}, past {what}")
                self.range.append(level, index, value)
            except ValueError as e:
                self.fault = str(e)

    def add_leaf(self, seq: int, leaf: bytes) -> None:
        self._fill_to(seq, f"the row with seq {seq}")
        if self.fault is None:
            self.range.append(0, seq, leaf)

    def finish(self, tree_size: int) -> None:
        self._fill_to(tree_size, f"the tree size {tree_size}")
        if self.fault is None:
            try:
                if self._next_node() is not None:
                    self.fault = f"proof line {self.nodes} lies beyond the tree size {tree_size}"
            except ValueError as e:
                self.fault = str(e)
        self.raw.drain()
