"""A small HTTP client for the audit log API (standard library only).

Retries: network errors, 429 and 503 are retried with exponential backoff and full jitter,
honouring Retry-After; other statuses are not. Appends carry an Idempotency-Key, generated per
call unless given and reused across that call's retries, so a retry never appends twice.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from ._version import __version__
from .checkpoint import Checkpoint, TrustedKey, trusted_keys_from_response, verify_checkpoint
from .entry import verify_entry
from .errors import ApiError, EntryError, ExportFailed, ProofError, StrictJSONError, TransportError
from .export import ExportReport, verify_export
from .hashes import parse_hash
from .merkle import verify_consistency
from .receipt import receipt_keys_from_response, verify_receipt
from .strict_json import loads_strict

RETRY_STATUSES = frozenset({429, 503})
_MAX_RETRY_AFTER = 300.0
_GATEWAY_CODES = {401: "unauthorized", 403: "forbidden", 429: "throttled"}


class ApiResponse(dict):
    """A JSON object answer, with the response headers (lower-case names) beside it."""

    headers: dict[str, str]

    @property
    def replayed(self) -> bool:
        """True when the service returned the original result of an earlier idempotent call."""
        return self.headers.get("idempotent-replayed", "").lower() == "true"


def new_idempotency_key() -> str:
    return "sdk-py-" + secrets.token_hex(16)


class Client:
    """``Client("http://127.0.0.1:3000", api_key)``; the key is sent as a bearer token and never logged."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 0.25,
        backoff_max: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._checkpoint_keys: list[TrustedKey] | None = None
        self._receipt_keys: list[bytes] | None = None

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    # --- transport ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """One API call with retries; returns the JSON answer or raises ApiError / TransportError."""
        url = self.base_url + path
        if params:
            query = {k: _param(v) for k, v in params.items() if v is not None}
            if query:
                url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        all_headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": f"auditlog-python/{__version__}",
        }
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})

        attempt = 0
        while True:
            req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return _json_response(resp.status, resp.read(), dict(resp.headers.items()))
            except urllib.error.HTTPError as e:
                with e:
                    error = _api_error(e.code, e.read(), e.headers)
                if e.code not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise error from None
                delay = self._delay(attempt, error.retry_after)
            except (urllib.error.URLError, OSError) as e:
                if attempt >= self.max_retries:
                    raise TransportError(f"{method} {path}: {getattr(e, 'reason', e)}") from None
                delay = self._delay(attempt, None)
            attempt += 1
            self._sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server knows best when it can take the request again; a cap guards against typos.
            return min(max(retry_after, 0.0), _MAX_RETRY_AFTER)
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))

    # --- events ---------------------------------------------------------------------------

    def send(self, event: Mapping[str, Any], *, idempotency_key: str | None = None) -> ApiResponse:
        """``POST /v1/events``: appends one event; returns {id, seq, leaf_hash, chain_hash, received_at, receipt}."""
        key = _check_idempotency_key(idempotency_key or new_idempotency_key())
        return self.request("POST", "/v1/events", body=dict(event), headers={"Idempotency-Key": key})

    def send_batch(self, events: Iterable[Mapping[str, Any]], *, idempotency_key: str | None = None) -> ApiResponse:
        """``POST /v1/events/batch``: appends up to 1000 events, all or nothing."""
        items = [dict(e) for e in events]
        if not 1 <= len(items) <= 1000:
            raise ValueError(f"a batch holds 1 to 1000 events, not {len(items)}")
        key = _check_idempotency_key(idempotency_key or new_idempotency_key())
        return self.request("POST", "/v1/events/batch", body={"events": items}, headers={"Idempotency-Key": key})

    def list_events(self, **filters: Any) -> ApiResponse:
        """One page of ``GET /v1/events`` ({events, next_cursor})."""
        return self.request("GET", "/v1/events", params=filters)

    def query(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every entry matching the filters (action, actor_id, ..., order), across all pages."""
        if "cursor" in filters or "limit" in filters:
            raise ValueError("query() pages by itself: use page_size, not cursor or limit")
        cursor = None
        while True:
            page = self.list_events(**filters, limit=page_size, cursor=cursor)
            yield from page["events"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def get_event(self, event_id: str) -> ApiResponse:
        return self.request("GET", f"/v1/events/{_segment(event_id)}")

    def inclusion_proof(self, event_id: str, *, tree_size: int | None = None) -> ApiResponse:
        return self.request("GET", f"/v1/events/{_segment(event_id)}/proof", params={"tree_size": tree_size})

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ApiResponse:
        return self.request("GET", "/v1/proofs/consistency", params={"from": old_size, "to": new_size})

    # --- checkpoints, receipts, verification ----------------------------------------------

    def latest_checkpoint(self) -> ApiResponse:
        return self.request("GET", "/v1/checkpoints/latest")

    def checkpoint_public_key(self) -> ApiResponse:
        return self.request("GET", "/v1/checkpoints/public-key")

    def receipt_public_keys(self) -> ApiResponse:
        return self.request("GET", "/v1/receipts/public-key")

    def checkpoint_keys(self) -> list[TrustedKey]:
        """The checkpoint keys (current and retired) the service publishes, fetched once.

        Trusting the service's own answer protects against later changes only; pass pinned keys
        to the verify methods for independent assurance.
        """
        if self._checkpoint_keys is None:
            self._checkpoint_keys = trusted_keys_from_response(self.checkpoint_public_key())
        return self._checkpoint_keys

    def verified_checkpoint(self, keys: Iterable[TrustedKey] | None = None) -> Checkpoint:
        """The latest signed checkpoint, its note verified (raises CheckpointError)."""
        trusted = list(keys) if keys is not None else self.checkpoint_keys()
        return verify_checkpoint(self.latest_checkpoint()["note"], trusted)

    def verify_event(
        self,
        event_id: str,
        *,
        keys: Iterable[TrustedKey] | None = None,
        checkpoint: Checkpoint | None = None,
        wait: float = 0.0,
        poll_interval: float = 1.0,
    ) -> Checkpoint:
        """Fetches an entry and its inclusion proof and checks both against a verified checkpoint.

        Checkpoints are signed periodically, so a fresh event may not be covered yet: with
        ``wait`` (seconds) the latest checkpoint is polled until it covers the event. Raises
        EntryError (not covered in time, or the entry does not verify), ProofError or
        CheckpointError. Returns the checkpoint used.
        """
        trusted = list(keys) if keys is not None else None
        entry = self.get_event(event_id)
        deadline = time.monotonic() + wait
        while True:
            if checkpoint is None or checkpoint.size <= entry["seq"]:
                try:
                    checkpoint = self.verified_checkpoint(trusted)
                except ApiError as e:
                    if e.status != 404 or time.monotonic() >= deadline:
                        raise
            if checkpoint is not None and entry["seq"] < checkpoint.size:
                break
            if time.monotonic() >= deadline:
                size = checkpoint.size if checkpoint else 0
                raise EntryError(f"seq {entry['seq']} is not yet covered by the latest checkpoint (size {size})")
            self._sleep(poll_interval)
        proof = self.inclusion_proof(event_id, tree_size=checkpoint.size)
        verify_entry(entry, proof, checkpoint)
        return checkpoint

    def verify_consistency(self, old: Checkpoint, new: Checkpoint) -> None:
        """Checks that the log of checkpoint ``new`` extends that of ``old`` (both already verified):
        fetches the consistency proof between their sizes and checks it against their roots."""
        if old.origin != new.origin:
            raise ProofError(f"the checkpoints are of different logs ({old.origin!r}, {new.origin!r})")
        answer = self.consistency_proof(old.size, new.size)
        try:
            proof = [parse_hash(x, "consistency proof element") for x in answer["proof"]]
        except (KeyError, TypeError, ValueError) as e:
            raise ProofError(f"malformed consistency proof: {e}") from e
        verify_consistency(old.size, new.size, old.root, new.root, proof)

    def verify_receipt(self, receipt: Mapping[str, Any]) -> None:
        """Checks a receipt with the service's published receipt keys (raises ReceiptError)."""
        if self._receipt_keys is None:
            self._receipt_keys = receipt_keys_from_response(self.receipt_public_keys())
        verify_receipt(receipt, self._receipt_keys)

    # --- administration -------------------------------------------------------------------

    def create_tenant(self, name: str) -> ApiResponse:
        """``POST /v1/tenants`` (platform key): {tenant_id, name, api_key: {secret, key}}."""
        return self.request("POST", "/v1/tenants", body={"name": name})

    def register_signing_key(self, public_key: bytes, *, name: str, key_id: str | None = None) -> ApiResponse:
        """``POST /v1/signing-keys``: registers a publisher's raw 32-byte Ed25519 public key."""
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        body: dict[str, Any] = {"name": name, "public_key": base64.b64encode(public_key).decode()}
        if key_id is not None:
            body["key_id"] = key_id
        return self.request("POST", "/v1/signing-keys", body=body)

    def update_settings(self, **settings: Any) -> ApiResponse:
        return self.request("PATCH", "/v1/settings", body=settings)

    # --- exports --------------------------------------------------------------------------

    def create_export(
        self, *, format: str = "jsonl", gzip: bool = False, filter: Mapping[str, Any] | None = None
    ) -> ApiResponse:
        """``POST /v1/exports``; returns the queued job."""
        if format not in ("jsonl", "csv"):
            raise ValueError('format must be "jsonl" or "csv"')
        return self.request("POST", "/v1/exports", body={"format": format, "gzip": gzip, "filter": dict(filter or {})})

    def get_export(self, export_id: str) -> ApiResponse:
        return self.request("GET", f"/v1/exports/{_segment(export_id)}")

    def list_exports(self) -> ApiResponse:
        return self.request("GET", "/v1/exports")

    def wait_for_export(self, export_id: str, *, timeout: float = 300.0, poll_interval: float = 1.0) -> ApiResponse:
        """Polls until the export is done; raises ExportFailed when it failed or timed out."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_export(export_id)
            if job["status"] == "done":
                return job
            if job["status"] == "failed":
                raise ExportFailed(f"export {export_id} failed: {job.get('error')}")
            if time.monotonic() >= deadline:
                raise ExportFailed(f"export {export_id} is still {job['status']} after {timeout:g} s")
            self._sleep(poll_interval)

    def download_export(self, job: Mapping[str, Any], directory: str | Path) -> dict[str, Path]:
        """Downloads a finished export's data, manifest and proof into ``directory``.

        The presigned URLs are fetched without the Authorization header. Returns the paths
        ({"data", "manifest", "proof"}); the data file keeps its name (data.jsonl, data.csv.gz, ...).
        """
        download = job.get("download")
        if not download:
            raise ExportFailed(f"export {job.get('id')} has no download links (status {job.get('status')})")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        data_name = "data." + job["format"] + (".gz" if job.get("gzip") else "")
        names = {"data": data_name, "manifest": "manifest.json", "proof": "proof.jsonl"}
        paths = {}
        for part, name in names.items():
            paths[part] = folder / name
            self._download(download[part]["url"], paths[part])
        return paths

    def _download(self, url: str, path: Path) -> None:
        attempt = 0
        while True:
            req = urllib.request.Request(url, headers={"User-Agent": f"auditlog-python/{__version__}"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp, open(path, "wb") as out:
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                return
            except urllib.error.HTTPError as e:
                with e:
                    e.read()
                if (e.code not in RETRY_STATUSES and e.code < 500) or attempt >= self.max_retries:
                    raise ApiError(e.code, "download_failed", f"downloading {path.name} failed") from None
            except (urllib.error.URLError, OSError) as e:
                if attempt >= self.max_retries:
                    raise TransportError(f"downloading {path.name}: {getattr(e, 'reason', e)}") from None
            self._sleep(self._delay(attempt, None))
            attempt += 1

    def export_and_verify(
        self,
        directory: str | Path,
        *,
        format: str = "jsonl",
        gzip: bool = False,
        filter: Mapping[str, Any] | None = None,
        keys: Iterable[TrustedKey] | None = None,
        timeout: float = 300.0,
    ) -> ExportReport:
        """Requests an export, waits for it, downloads it into ``directory`` and verifies it offline."""
        job = self.create_export(format=format, gzip=gzip, filter=filter)
        done = self.wait_for_export(job["id"], timeout=timeout)
        paths = self.download_export(done, directory)
        trusted = list(keys) if keys is not None else self.checkpoint_keys()
        return verify_export(paths["manifest"], paths["data"], paths["proof"], trusted)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _segment(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _check_idempotency_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or any(not 0x21 <= ord(c) <= 0x7E for c in key):
        raise ValueError("an Idempotency-Key is 1 to 255 printable ASCII characters without spaces")
    return key


def _json_response(status: int, raw: bytes, headers: Mapping[str, str]) -> ApiResponse:
    # Answers are read strictly: entries, proofs, checkpoints and receipts in them are verified,
    # and a duplicate member or inexact number would let the verified value differ from the
    # one the service hashed. Such an answer raises StrictJSONError (a VerificationError).
    try:
        value = loads_strict(raw) if raw else {}
    except StrictJSONError as e:
        if e.kind != "invalid_json":
            raise
        raise ApiError(status, "invalid_response", f"the answer is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ApiError(status, "invalid_response", "the answer is not a JSON object")
    result = ApiResponse(value)
    result.headers = {k.lower(): v for k, v in headers.items()}
    return result


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _api_error(status: int, raw: bytes, headers: Any) -> ApiError:
    retry_after = _retry_after(headers)
    code, message = _GATEWAY_CODES.get(status, f"http_{status}"), ""
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code", code))
        message = str(body["error"].get("message", ""))
    elif isinstance(body, dict) and "message" in body:
        message = str(body["message"])
    else:
        message = raw[:200].decode("utf-8", "replace")
    return ApiError(status, code, message, retry_after=retry_after)
