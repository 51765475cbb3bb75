"""Builds export bundles exactly as docs/FORMATS.md describes them, for tests of the verifier
(the fault cases, sizes and layouts the shared vectors do not cover)."""

from __future__ import annotations

import base64
import csv
import gzip as gzip_module
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import auditlog
from auditlog.export import CSV_COLUMNS

KEY_NAME = "audit.test/log/v1"
TENANT = "0190a5c4-1111-7000-8000-000000000001"


def signing_key(seed: int = 7) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(bytes([seed]) * 32, "big"), ec.SECP256R1())


def trusted_key(private: ec.EllipticCurvePrivateKey, name: str = KEY_NAME) -> auditlog.TrustedKey:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return auditlog.TrustedKey(name, der)


def sign_note(body: str, private: ec.EllipticCurvePrivateKey, name: str = KEY_NAME) -> str:
    key = trusted_key(private, name)
    sig = private.sign(body.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{body}\n\u2014 {name} {base64.b64encode(key.key_id + sig).decode()}\n"


def entries(count: int, tenant: str = TENANT, erased: frozenset[int] = frozenset()) -> list[dict]:
    """``count`` consecutive entries (seq from 0) with their hashes, as the log would hold them."""
    out, chain = [], auditlog.hashes.ZERO_HASH
    for seq in range(count):
        event = {
            "action": "user.login" if seq % 3 else "document.delete",
            "actor": {"id": f"u-{seq % 5}", "type": "user", "name": 'Ann "A", B'},
            "occurred_at": f"2026-11-24T10:{seq // 60 % 60:02d}:{seq % 60:02d}.000000Z",
            "outcome": "success" if seq % 4 else "denied",
        }
        if seq % 2:
            event["resource"] = {"type": "document", "id": f"d-{seq}"}
            event["metadata"] = {"n": seq, "note": "line\nbreak, comma"}
        salt = hashlib.sha256(b"salt %d" % seq).digest()
        content = auditlog.jcs(event)
        digest = auditlog.content_digest(salt, content).hex()
        entry_id = f"0190a5c4-0000-7000-8000-{seq:012d}"
        received_at = f"2026-11-24T11:00:00.{seq % 1000000:06d}Z"
        leaf = auditlog.leaf_hash(
            auditlog.canonical_entry(
                tenant_id=tenant, seq=seq, id=entry_id, received_at=received_at, content_digest=digest
            )
        )
        chain = auditlog.chain_link(chain, leaf)
        is_erased = seq in erased
        out.append(
            {
                "seq": seq,
                "id": entry_id,
                "received_at": received_at,
                "erased": is_erased,
                "event": None if is_erased else event,
                "salt": None if is_erased else base64.b64encode(salt).decode(),
                "content_digest": digest,
                "leaf_hash": leaf.hex(),
                "chain_hash": chain.hex(),
            }
        )
    return out


def _csv_line(row: dict) -> list[str]:
    ev = row["event"] or {}

    def get(*path: str) -> str:
        v = ev
        for p in path:
            if not isinstance(v, dict) or p not in v:
                return ""
            v = v[p]
        return v if isinstance(v, str) else auditlog.jcs(v).decode()

    copies = {
        "occurred_at": get("occurred_at"),
        "action": get("action"),
        "actor_id": get("actor", "id"),
        "actor_type": get("actor", "type"),
        "actor_name": get("actor", "name"),
        "resource_type": get("resource", "type"),
        "resource_id": get("resource", "id"),
        "resource_name": get("resource", "name"),
        "outcome": get("outcome"),
        "severity": get("severity"),
        "source": get("source"),
        "request_id": get("request_id"),
        "session_id": get("session_id"),
        "metadata": get("metadata"),
    }
    fields = {
        "seq": str(row["seq"]),
        "id": row["id"],
        "received_at": row["received_at"],
        "erased": "true" if row["erased"] else "false",
        **copies,
        "event": auditlog.jcs(row["event"]).decode() if row["event"] is not None else "",
        "salt": row["salt"] or "",
        "content_digest": row["content_digest"],
        "leaf_hash": row["leaf_hash"],
        "chain_hash": row["chain_hash"],
    }
    return [fields[c] for c in CSV_COLUMNS]


def gap_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """RFC 9162's decomposition of [start, end) into its largest aligned perfect subtrees."""
    out = []
    while start < end:
        level = 0
        while start % (2 << level) == 0 and start + (2 << level) <= end:
            level += 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def write_bundle(
    folder: Path,
    *,
    count: int = 12,
    select: Callable[[dict], bool] = lambda e: True,
    data_format: str = "jsonl",
    gzip: bool = False,
    erased: frozenset[int] = frozenset(),
    private: ec.EllipticCurvePrivateKey | None = None,
    tamper_rows: Callable[[list[dict]], list[dict]] | None = None,
) -> Path:
    """Writes manifest.json, the data file and proof.jsonl into ``folder`` and returns it."""
    private = private or signing_key()
    folder.mkdir(parents=True, exist_ok=True)
    all_entries = entries(count, erased=erased)
    rows = [e for e in all_entries if select(e)]
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in all_entries]

    nodes, position = [], 0
    for seq in [r["seq"] for r in rows] + [count]:
        for level, index in gap_nodes(position, seq):
            nodes.append(
                {
                    "level": level,
                    "index": index,
                    "hash": auditlog.merkle_root(leaves[index << level : (index + 1) << level]).hex(),
                }
            )
        position = seq + 1
    proof_bytes = "".join(json.dumps(n) + "\n" for n in nodes).encode()

    written = tamper_rows(rows) if tamper_rows else rows
    if data_format == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in written)
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in written:
            writer.writerow(_csv_line(r))
        text = buf.getvalue()
    data_bytes = text.encode()
    name = f"data.{data_format}"
    if gzip:
        # Two members, as the exporter writes them: every decompressor must read both.
        half = len(data_bytes) // 2
        data_bytes = gzip_module.compress(data_bytes[:half]) + gzip_module.compress(data_bytes[half:])
        name += ".gz"
    (folder / name).write_bytes(data_bytes)
    (folder / "proof.jsonl").write_bytes(proof_bytes)

    root = auditlog.merkle_root(leaves)
    body = f"{KEY_NAME}/{TENANT}\n{count}\n{base64.b64encode(root).decode()}\ntimestamp 1735689600\n"
    prefix = f"exports/{TENANT}/0190a5c4-9999-7000-8000-000000000000/"
    manifest = {
        "format": "audit-log-export/v1",
        "export_id": "0190a5c4-9999-7000-8000-000000000000",
        "tenant_id": TENANT,
        "created_at": "2026-11-24T12:00:00.000000Z",
        "completed_at": "2026-11-24T12:00:01.000000Z",
        "filter": {},
        "data_format": data_format,
        "gzip": gzip,
        "rows": len(rows),
        "first_seq": rows[0]["seq"] if rows else None,
        "last_seq": rows[-1]["seq"] if rows else None,
        "data": {"key": prefix + name, "sha256": hashlib.sha256(data_bytes).hexdigest(), "bytes": len(data_bytes)},
        "proof": {
            "key": prefix + "proof.jsonl",
            "sha256": hashlib.sha256(proof_bytes).hexdigest(),
            "bytes": len(proof_bytes),
            "nodes": len(nodes),
        },
        "checkpoint": {"tree_size": count, "root": root.hex(), "note": sign_note(body, private)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


def data_path(folder: Path) -> Path:
    return next(p for p in folder.iterdir() if p.name.startswith("data."))
