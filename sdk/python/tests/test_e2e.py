"""End to end against a real local run of the service (scripts/local).

Enabled by AUDIT_LOG_URL (e.g. http://127.0.0.1:3000) and AUDIT_LOG_PLATFORM_KEY; skipped
otherwise. Creates a fresh tenant, so it can run against a shared local run.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import auditlog
from auditlog import ApiError, Client

URL = os.environ.get("AUDIT_LOG_URL")
PLATFORM_KEY = os.environ.get("AUDIT_LOG_PLATFORM_KEY")

pytestmark = pytest.mark.skipif(
    not (URL and PLATFORM_KEY),
    reason="end-to-end test: set AUDIT_LOG_URL and AUDIT_LOG_PLATFORM_KEY to run it against a local run",
)

CHECKPOINT_WAIT = 30.0
EXPORT_WAIT = 120.0


def _wait_for_checkpoint(client: Client, size: int) -> auditlog.Checkpoint:
    """The latest signed checkpoint once it covers ``size`` leaves (signed every 5 s locally)."""
    deadline = time.monotonic() + CHECKPOINT_WAIT
    while True:
        try:
            cp = client.verified_checkpoint()
            if cp.size >= size:
                return cp
        except ApiError as e:
            if e.status != 404:
                raise
            cp = None
        if time.monotonic() > deadline:
            pytest.fail(f"no signed checkpoint covering {size} entries within {CHECKPOINT_WAIT:g} s (latest: {cp})")
        time.sleep(1)


def test_signed_events_round_trip_proofs_and_a_verified_export(tmp_path: Path) -> None:
    platform = Client(URL, PLATFORM_KEY)
    tenant = platform.create_tenant(f"sdk-python-e2e-{secrets.token_hex(4)}")
    tenant_id = tenant["tenant_id"]
    client = Client(URL, tenant["api_key"]["secret"])

    publisher = Ed25519PrivateKey.generate()
    key_id = f"py-{secrets.token_hex(4)}"
    registered = client.register_signing_key(auditlog.public_key_bytes(publisher), name="e2e publisher", key_id=key_id)
    assert registered["key_id"] == key_id
    client.update_settings(require_signatures=True)

    # An unsigned event is now refused, and not retried.
    with pytest.raises(ApiError) as refused:
        client.send({"action": "user.login", "actor": {"id": "nobody"}})
    assert 400 <= refused.value.status < 500

    one = auditlog.sign_event(
        {"action": "user.login", "actor": {"id": "ada", "type": "user"}, "metadata": {"ip_country": "NZ"}},
        publisher,
        key_id,
    )
    first = client.send(one)
    # The tenant's creation, its first key, the signing key registration and the settings change
    # are in its chain first.
    base = first["seq"]
    assert base == 4
    client.verify_receipt(first["receipt"])

    batch = [
        auditlog.sign_event(
            {"action": f"document.{verb}", "actor": {"id": "ada"}, "resource": {"type": "document", "id": f"d-{i}"}},
            publisher,
            key_id,
        )
        for i, verb in enumerate(["create", "update", "delete", "update", "share"])
    ]
    appended = client.send_batch(batch)
    assert appended["count"] == 5 and [e["seq"] for e in appended["events"]] == list(range(base + 1, base + 6))
    for e in appended["events"]:
        client.verify_receipt(e["receipt"])

    # A replay with the same key returns the original result.
    again = client.send(one, idempotency_key="e2e-replay-1")
    replayed = client.send(one, idempotency_key="e2e-replay-1")
    assert replayed.replayed and replayed["id"] == again["id"]

    everything = list(client.query(order="asc", page_size=2))
    assert [e["seq"] for e in everything] == list(range(base + 7))
    assert all(e["tenant_id"] == tenant_id for e in everything)
    entries = everything[base:]
    for e in entries:
        auditlog.entry_leaf_hash(e)  # content digest and leaf hash recomputed from event and salt
    docs = list(client.query(action="document.*", order="asc", page_size=2))
    assert [e["event"]["action"] for e in docs] == [b["action"] for b in batch]
    assert entries[0]["event"]["signature"] == one["signature"]

    keys = client.checkpoint_keys()
    checkpoint = _wait_for_checkpoint(client, base + 7)
    assert checkpoint.origin == f"{checkpoint.key_name}/{tenant_id}"
    for e in (entries[0], entries[3], entries[6]):
        client.verify_event(e["id"], checkpoint=checkpoint)

    report = client.export_and_verify(
        tmp_path / "jsonl", format="jsonl", filter={"action": "document.*"}, keys=keys, timeout=EXPORT_WAIT
    )
    assert report.rows == 5 and report.tenant_id == tenant_id
    report = client.export_and_verify(tmp_path / "csv", format="csv", gzip=True, keys=keys, timeout=EXPORT_WAIT)
    assert report.rows == report.checkpoint.size
    # The downloaded files verify offline on their own, too.
    assert auditlog.verify_export_dir(tmp_path / "csv", keys).rows == report.rows
