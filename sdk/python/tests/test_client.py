"""The HTTP client against a stub server on 127.0.0.1: retries, idempotency keys, errors, paging,
export polling and download."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import auditlog
from auditlog import ApiError, Client, ExportFailed, TransportError
from bundles import signing_key, trusted_key, write_bundle

API_KEY = "alk_" + "0" * 24 + "_" + "1" * 64


class Stub:
    """Answers each request with the next scripted (status, body, headers) for its route."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.routes: dict[tuple[str, str], list] = {}
        self.files: dict[str, bytes] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": dict(urllib.parse.parse_qsl(url.query)),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(body) if body else None,
                    }
                )
                if url.path in stub.files:
                    status, payload, headers = 200, stub.files[url.path], {}
                else:
                    queue = stub.routes.get((self.command, url.path))
                    if not queue:
                        status, payload, headers = 404, {"error": {"code": "not_found", "message": "no route"}}, {}
                    else:
                        answer = queue.pop(0) if len(queue) > 1 else queue[0]
                        status, payload, headers = answer(stub.requests[-1]) if callable(answer) else answer
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def on(self, method: str, path: str, *answers) -> None:
        self.routes[(method, path)] = list(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(stub: Stub, sleeps: list[float]) -> Client:
    return Client(stub.url, API_KEY, timeout=5, sleep=sleeps.append)


APPENDED = {"id": "e1", "seq": 0, "leaf_hash": "00" * 32, "chain_hash": "11" * 32, "received_at": "t", "receipt": {}}
UNAVAILABLE = (503, {"error": {"code": "unavailable", "message": "try again"}}, {"Retry-After": "2"})


def test_retries_503_honouring_retry_after_with_the_same_idempotency_key(stub: Stub, client: Client, sleeps) -> None:
    stub.on("POST", "/v1/events", UNAVAILABLE, UNAVAILABLE, (201, APPENDED, {}))
    result = client.send({"action": "user.login", "actor": {"id": "u1"}})
    assert result["seq"] == 0
    assert len(stub.requests) == 3
    keys = {r["headers"]["idempotency-key"] for r in stub.requests}
    assert len(keys) == 1 and 1 <= len(keys.pop()) <= 255
    assert sleeps == [2.0, 2.0]
    assert all(r["headers"]["authorization"] == f"Bearer {API_KEY}" for r in stub.requests)
    assert stub.requests[0]["body"] == {"action": "user.login", "actor": {"id": "u1"}}


def test_each_call_gets_its_own_idempotency_key_unless_one_is_given(stub: Stub, client: Client) -> None:
    stub.on("POST", "/v1/events", (201, APPENDED, {"idempotent-replayed": "true"}))
    client.send({"action": "a", "actor": {"id": "u"}})
    client.send({"action": "a", "actor": {"id": "u"}})
    replay = client.send({"action": "a", "actor": {"id": "u"}}, idempotency_key="order-42")
    generated = [r["headers"]["idempotency-key"] for r in stub.requests[:2]]
    assert generated[0] != generated[1]
    assert stub.requests[2]["headers"]["idempotency-key"] == "order-42"
    assert replay.replayed is True
    with pytest.raises(ValueError, match="Idempotency-Key"):
        client.send({"action": "a", "actor": {"id": "u"}}, idempotency_key="has space")


def test_does_not_retry_400_and_raises_a_typed_error(stub: Stub, client: Client, sleeps) -> None:
    stub.on(
        "POST",
        "/v1/events/batch",
        (400, {"error": {"code": "invalid_request", "message": "events[3].actor.id: must not be empty"}}, {}),
    )
    with pytest.raises(ApiError) as e:
        client.send_batch([{"action": "a", "actor": {"id": "u"}}])
    assert (e.value.status, e.value.code) == (400, "invalid_request")
    assert "events[3].actor.id" in e.value.message
    assert len(stub.requests) == 1 and sleeps == []
    assert API_KEY not in str(e.value)


def test_gateway_errors_get_codes_and_429_is_retried_with_backoff(stub: Stub, client: Client, sleeps) -> None:
    stub.on("GET", "/v1/checkpoints/latest", (403, {"message": "Forbidden"}, {}))
    with pytest.raises(ApiError) as e:
        client.latest_checkpoint()
    assert (e.value.status, e.value.code, e.value.message) == (403, "forbidden", "Forbidden")
    stub.on("GET", "/v1/events/x", (429, {"message": "Too Many Requests"}, {}))
    with pytest.raises(ApiError) as e:
        client.get_event("x")
    assert (e.value.status, e.value.code) == (429, "throttled")
    assert len(sleeps) == client.max_retries
    assert all(0 <= s <= client.backoff_base * 2**i for i, s in enumerate(sleeps))


def test_retries_network_errors_then_raises_transport_error(sleeps) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", API_KEY, timeout=2, max_retries=2, sleep=sleeps.append)
    with pytest.raises(TransportError):
        client.get_event("x")
    assert len(sleeps) == 2


def test_query_follows_cursors_across_pages(stub: Stub, client: Client) -> None:
    pages = {
        None: {"events": [{"seq": 0}, {"seq": 1}], "next_cursor": "c1"},
        "c1": {"events": [{"seq": 2}, {"seq": 3}], "next_cursor": "c2"},
        "c2": {"events": [{"seq": 4}], "next_cursor": None},
    }
    stub.on("GET", "/v1/events", lambda req: (200, pages[req["query"].get("cursor")], {}))
    seqs = [e["seq"] for e in client.query(action="user.*", order="asc", page_size=2)]
    assert seqs == [0, 1, 2, 3, 4]
    assert [r["query"].get("cursor") for r in stub.requests] == [None, "c1", "c2"]
    assert all(
        r["query"]["action"] == "user.*" and r["query"]["order"] == "asc" and r["query"]["limit"] == "2"
        for r in stub.requests
    )


def test_waits_for_an_export_downloads_it_without_auth_and_verifies_it(
    stub: Stub, client: Client, tmp_path: Path
) -> None:
    bundle = write_bundle(
        tmp_path / "served", count=9, select=lambda e: e["seq"] % 2 == 0, data_format="csv", gzip=True
    )
    for name in ("manifest.json", "proof.jsonl", "data.csv.gz"):
        stub.files[f"/bucket/{name}"] = (bundle / name).read_bytes()

    def link(name: str) -> dict:
        return {"url": f"{stub.url}/bucket/{name}?X-Amz-Signature=abc", "expires_at": "t"}

    job = {"id": "x1", "status": "queued", "format": "csv", "gzip": True, "download": None}
    done = dict(
        job,
        status="done",
        rows=5,
        download={"data": link("data.csv.gz"), "manifest": link("manifest.json"), "proof": link("proof.jsonl")},
    )
    stub.on("POST", "/v1/exports", (202, job, {}))
    stub.on("GET", "/v1/exports/x1", (200, job, {}), (200, dict(job, status="running"), {}), (200, done, {}))
    report = client.export_and_verify(
        tmp_path / "out", format="csv", gzip=True, keys=[trusted_key(signing_key())], timeout=10
    )
    assert report.rows == 5
    assert stub.requests[0]["body"] == {"format": "csv", "gzip": True, "filter": {}}
    downloads = [r for r in stub.requests if r["path"].startswith("/bucket/")]
    assert len(downloads) == 3 and all("authorization" not in r["headers"] for r in downloads)


def test_a_failed_export_raises(stub: Stub, client: Client) -> None:
    stub.on("GET", "/v1/exports/x2", (200, {"id": "x2", "status": "failed", "error": "disk full"}, {}))
    with pytest.raises(ExportFailed, match="disk full"):
        client.wait_for_export("x2", timeout=5)


def test_verify_event_checks_entry_and_proof_against_the_signed_checkpoint(stub: Stub, client: Client) -> None:
    import base64

    from bundles import KEY_NAME, TENANT, entries, sign_note

    es = entries(5)
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in es]
    root = auditlog.merkle_root(leaves)
    note = sign_note(f"{KEY_NAME}/{TENANT}\n5\n{base64.b64encode(root).decode()}\n", signing_key())
    entry = dict(es[2], tenant_id=TENANT)
    path = [auditlog.merkle_root(leaves[3:4]), auditlog.merkle_root(leaves[0:2]), leaves[4]]
    proof = {
        "event_id": entry["id"],
        "leaf_index": 2,
        "tree_size": 5,
        "leaf_hash": entry["leaf_hash"],
        "root": root.hex(),
        "audit_path": [p.hex() for p in path],
        "checkpoint": None,
    }
    early = sign_note(
        f"{KEY_NAME}/{TENANT}\n2\n{base64.b64encode(auditlog.merkle_root(leaves[:2])).decode()}\n", signing_key()
    )
    stub.on(
        "GET",
        "/v1/checkpoints/latest",
        (404, {"error": {"code": "not_found", "message": "no checkpoint yet"}}, {}),
        (200, {"tree_size": 2, "note": early}, {}),
        (200, {"tree_size": 5, "root": root.hex(), "note": note}, {}),
    )
    stub.on("GET", f"/v1/events/{entry['id']}", (200, entry, {}))
    stub.on("GET", f"/v1/events/{entry['id']}/proof", (200, proof, {}))
    cp = client.verify_event(entry["id"], keys=[trusted_key(signing_key())], wait=10, poll_interval=0.5)
    assert cp.size == 5
    assert sum(1 for r in stub.requests if r["path"] == "/v1/checkpoints/latest") == 3
    assert stub.requests[-1]["query"] == {"tree_size": "5"}

    tampered = dict(entry, event=dict(entry["event"], action="user.logout"))
    stub.on("GET", f"/v1/events/{entry['id']}", (200, tampered, {}))
    with pytest.raises(auditlog.EntryError):
        client.verify_event(entry["id"], keys=[trusted_key(signing_key())])


def test_verify_consistency_between_two_verified_checkpoints(stub: Stub, client: Client) -> None:
    leaves = [auditlog.leaf_hash(b"%d" % i) for i in range(7)]
    old = auditlog.Checkpoint("log/t", 3, auditlog.merkle_root(leaves[:3]))
    new = auditlog.Checkpoint("log/t", 7, auditlog.merkle_root(leaves))
    # RFC 9162 proof for 3 -> 7: leaf 2, leaf 3, node [0,2), node [4,7).
    proof = [leaves[2], leaves[3], auditlog.merkle_root(leaves[:2]), auditlog.merkle_root(leaves[4:])]
    stub.on("GET", "/v1/proofs/consistency", (200, {"from": 3, "to": 7, "proof": [p.hex() for p in proof]}, {}))
    client.verify_consistency(old, new)
    assert stub.requests[-1]["query"] == {"from": "3", "to": "7"}
    stub.on("GET", "/v1/proofs/consistency", (200, {"from": 3, "to": 7, "proof": [p.hex() for p in proof[:3]]}, {}))
    with pytest.raises(auditlog.ProofError):
        client.verify_consistency(old, new)


def test_verify_event_refuses_an_entry_whose_text_has_a_duplicate_member(stub: Stub, client: Client) -> None:
    import base64

    from bundles import KEY_NAME, TENANT, entries, sign_note

    es = entries(2)
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in es]
    root = auditlog.merkle_root(leaves)
    note = sign_note(f"{KEY_NAME}/{TENANT}\n2\n{base64.b64encode(root).decode()}\n", signing_key())
    entry = dict(es[1], tenant_id=TENANT)
    proof = {"event_id": entry["id"], "leaf_index": 1, "tree_size": 2, "audit_path": [leaves[0].hex()]}
    # A forged first "action" before the genuine one: a last-wins parser verifies this text,
    # a first-wins one shows the forged action.
    text = json.dumps(entry).replace('"event": {', '"event": {"action": "document.delete", ', 1)
    assert auditlog.verify_entry(json.loads(text), proof, auditlog.Checkpoint(f"{KEY_NAME}/{TENANT}", 2, root)) is None
    stub.on("GET", "/v1/checkpoints/latest", (200, {"tree_size": 2, "note": note}, {}))
    stub.on("GET", f"/v1/events/{entry['id']}", (200, text.encode(), {}))
    stub.on("GET", f"/v1/events/{entry['id']}/proof", (200, proof, {}))
    with pytest.raises(auditlog.StrictJSONError) as e:
        client.verify_event(entry["id"], keys=[trusted_key(signing_key())])
    assert (e.value.kind, e.value.path) == ("duplicate_member", "event.action")
    assert isinstance(e.value, auditlog.VerificationError)


def test_an_answer_that_is_not_json_is_an_invalid_response(stub: Stub, client: Client) -> None:
    stub.on("GET", "/v1/checkpoints/latest", (200, b'{"tree_size": 2', {}))
    with pytest.raises(ApiError) as e:
        client.latest_checkpoint()
    assert e.value.code == "invalid_response"
