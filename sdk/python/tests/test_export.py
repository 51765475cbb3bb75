"""Export bundle verification on bundles built here: every fault code, in FORMATS.md's order,
with its row number and seq; gzip with several members; streaming in bounded memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

import auditlog
from auditlog import ExportFault
from bundles import data_path, edit_manifest, signing_key, trusted_key, write_bundle

KEY = trusted_key(signing_key())


def fault(folder: Path, keys=KEY) -> ExportFault:
    with pytest.raises(ExportFault) as e:
        auditlog.verify_export_dir(folder, keys)
    return e.value


@pytest.mark.parametrize(("data_format", "gzip"), [("jsonl", False), ("jsonl", True), ("csv", False), ("csv", True)])
def test_accepts_a_full_export_in_every_layout(tmp_path: Path, data_format: str, gzip: bool) -> None:
    report = auditlog.verify_export_dir(write_bundle(tmp_path, data_format=data_format, gzip=gzip), KEY)
    assert (report.rows, report.first_seq, report.last_seq, report.proof_nodes) == (12, 0, 11, 0)
    assert report.checkpoint.size == 12


@pytest.mark.parametrize("data_format", ["jsonl", "csv"])
def test_accepts_a_filtered_export_with_erased_rows(tmp_path: Path, data_format: str) -> None:
    folder = write_bundle(
        tmp_path,
        count=23,
        select=lambda e: e["seq"] % 3 == 0 or e["seq"] == 22,
        erased=frozenset({6, 22}),
        data_format=data_format,
    )
    report = auditlog.verify_export_dir(folder, KEY)
    assert (report.rows, report.first_seq, report.last_seq) == (9, 0, 22)
    assert report.proof_nodes > 0


def test_accepts_an_export_of_no_rows(tmp_path: Path) -> None:
    report = auditlog.verify_export_dir(write_bundle(tmp_path, count=5, select=lambda e: False), KEY)
    assert (report.rows, report.first_seq, report.last_seq, report.proof_nodes) == (0, None, None, 2)


def test_accepts_a_bundle_signed_by_a_retired_key_among_several(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, private=signing_key(9))
    assert auditlog.verify_export_dir(folder, [KEY, trusted_key(signing_key(9))]).rows == 12


def test_manifest_invalid_on_wrong_format_or_type(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    edit_manifest(folder, lambda m: m.update(format="audit-log-export/v2"))
    assert fault(folder).code == "manifest_invalid"
    edit_manifest(folder, lambda m: m.update(format="audit-log-export/v1", rows="12"))
    assert fault(folder).code == "manifest_invalid"
    (folder / "manifest.json").write_text("{not json")
    assert fault(folder).code == "manifest_invalid"


def test_checkpoint_invalid_on_changed_root_untrusted_key_or_other_tenant(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    edit_manifest(folder, lambda m: m["checkpoint"].update(root="00" * 32))
    assert fault(folder).code == "checkpoint_invalid"
    assert fault(write_bundle(tmp_path / "other", private=signing_key(8))).code == "checkpoint_invalid"
    other = write_bundle(tmp_path / "tenant")
    edit_manifest(other, lambda m: m.update(tenant_id="0190a5c4-1111-7000-8000-000000000002"))
    f = fault(other)
    assert f.code == "checkpoint_invalid" and "origin" in str(f)


def _change_event(rows: list[dict], index: int) -> list[dict]:
    rows = [dict(r) for r in rows]
    rows[index]["event"] = dict(rows[index]["event"], action="user.logout")
    return rows


@pytest.mark.parametrize("data_format", ["jsonl", "csv"])
def test_content_digest_names_the_changed_row(tmp_path: Path, data_format: str) -> None:
    folder = write_bundle(tmp_path, data_format=data_format, tamper_rows=lambda rows: _change_event(rows, 4))
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("content_digest", 5, 4)


def test_row_order_on_two_swapped_rows(tmp_path: Path) -> None:
    def swap(rows: list[dict]) -> list[dict]:
        rows = list(rows)
        rows[6], rows[7] = rows[7], rows[6]
        return rows

    f = fault(write_bundle(tmp_path, tamper_rows=swap))
    assert (f.code, f.row, f.seq) == ("row_order", 8, 6)


def test_row_count_when_the_last_row_is_dropped(tmp_path: Path) -> None:
    f = fault(write_bundle(tmp_path, tamper_rows=lambda rows: rows[:-1]))
    assert (f.code, f.row, f.seq) == ("row_count", None, None)


def test_leaf_hash_and_chain_hash_faults(tmp_path: Path) -> None:
    def new_id(rows):
        rows = [dict(r) for r in rows]
        rows[2]["id"] = "0190a5c4-0000-7000-8000-999999999999"
        return rows

    f = fault(write_bundle(tmp_path / "leaf", tamper_rows=new_id))
    assert (f.code, f.row, f.seq) == ("leaf_hash", 3, 2)

    def new_chain(rows):
        rows = [dict(r) for r in rows]
        rows[3]["chain_hash"] = "ab" * 32
        return rows

    f = fault(write_bundle(tmp_path / "chain", tamper_rows=new_chain))
    assert (f.code, f.row, f.seq) == ("chain_hash", 4, 3)


def test_row_malformed_on_a_changed_csv_copy_column(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, data_format="csv")
    path = data_path(folder)
    lines = path.read_text().split("\n")
    assert lines[3].count(",user.login,") == 1
    lines[3] = lines[3].replace(",user.login,", ",user.logout,")
    path.write_text("\n".join(lines))
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 3, 2)


def test_row_malformed_on_broken_json_or_erased_with_content(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    path = data_path(folder)
    lines = path.read_text().split("\n")
    lines[1] = lines[1][:-1]
    path.write_text("\n".join(lines))
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 2, None)

    def erased_with_event(rows):
        rows = [dict(r) for r in rows]
        rows[5]["erased"] = True
        return rows

    f = fault(write_bundle(tmp_path / "erased", tamper_rows=erased_with_event))
    assert (f.code, f.row, f.seq) == ("row_malformed", 6, 5)


def test_proof_invalid_and_root_mismatch(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, count=20, select=lambda e: e["seq"] in (3, 9))
    proof = folder / "proof.jsonl"
    lines = proof.read_text().splitlines(keepends=True)
    proof.write_text("".join(lines[:-1]))
    assert fault(folder).code == "proof_invalid"

    node = json.loads(lines[1])
    node["hash"] = "cd" * 32
    proof.write_text("".join(lines[:1] + [json.dumps(node) + "\n"] + lines[2:]))
    assert fault(folder).code == "root_mismatch"

    proof.write_text("".join(lines[:1] + ["not json\n"] + lines[2:]))
    assert fault(folder).code == "proof_invalid"


def test_row_faults_come_before_proof_faults(tmp_path: Path) -> None:
    folder = write_bundle(
        tmp_path, count=20, select=lambda e: e["seq"] in (3, 9), tamper_rows=lambda r: _change_event(r, 1)
    )
    (folder / "proof.jsonl").write_text("garbage\n")
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("content_digest", 2, 9)


def test_file_hash_faults_come_last(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    edit_manifest(folder, lambda m: m["data"].update(sha256="00" * 32))
    assert fault(folder).code == "data_sha256"
    folder = write_bundle(tmp_path / "p", count=9, select=lambda e: e["seq"] < 4)
    edit_manifest(folder, lambda m: m["proof"].update(bytes=m["proof"]["bytes"] + 1))
    assert fault(folder).code == "proof_sha256"


def test_streams_a_large_export_in_bounded_memory(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, count=2000, gzip=True, select=lambda e: e["seq"] % 7 != 3)
    size = data_path(folder).stat().st_size
    tracemalloc.start()
    try:
        report = auditlog.verify_export_dir(folder, KEY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.rows == 2000 - 286
    assert peak < 1_000_000, f"peak {peak} bytes for a {size}-byte file"


def test_a_non_canonical_time_or_id_is_a_leaf_hash_fault(tmp_path: Path) -> None:
    def respell(rows):
        rows = [dict(r) for r in rows]
        rows[1]["received_at"] = rows[1]["received_at"].replace(".000001Z", ".000001+00:00")
        rows[2]["id"] = rows[2]["id"].upper()
        return rows

    f = fault(write_bundle(tmp_path, tamper_rows=respell))
    assert (f.code, f.row, f.seq) == ("leaf_hash", 2, 1)


def _edit_line(path: Path, index: int, old: str, new: str) -> None:
    lines = path.read_text().split("\n")
    assert lines[index].count(old) == 1, lines[index]
    lines[index] = lines[index].replace(old, new)
    path.write_text("\n".join(lines))


# Each forged text below carries a duplicate member whose last occurrence is the genuine value,
# so a last-wins parser would verify it; the strict reading refuses it.


def test_row_malformed_on_a_duplicate_member_in_a_row_or_its_event(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "row")
    _edit_line(data_path(folder), 4, '{"seq": 4, ', '{"seq": 4, "leaf_hash": "' + "00" * 32 + '", ')
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 5, 4), str(f)
    assert "duplicate_member at leaf_hash" in str(f)

    folder = write_bundle(tmp_path / "event")
    _edit_line(data_path(folder), 2, '"event": {', '"event": {"action": "user.logout", ')
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 3, 2), str(f)
    assert "duplicate_member at event.action" in str(f)


def test_a_row_serde_json_cannot_read_has_no_seq_in_its_fault(tmp_path: Path) -> None:
    # As the Rust verifier names the seq only of rows serde_json reads: a lone surrogate escape
    # or a number beyond the double range (next to a duplicate) leaves it unknown.
    folder = write_bundle(tmp_path / "surrogate")
    _edit_line(data_path(folder), 3, '"type": "user"', '"type": "user\\ud800"')
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 4, None), str(f)
    assert "invalid_string at event.actor.type" in str(f)

    folder = write_bundle(tmp_path / "overflow")
    _edit_line(data_path(folder), 3, '{"seq": 3, ', '{"seq": 3, "seq": 3, "n": 1e400, ')
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 4, None), str(f)
    assert "duplicate_member at seq" in str(f)


def test_row_malformed_on_a_number_outside_the_exact_range_in_an_event(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    _edit_line(data_path(folder), 1, '"metadata": {"n": 1, ', '"metadata": {"n": 9007199254740993, ')
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 2, 1), str(f)
    assert "unsafe_integer at event.metadata.n" in str(f)


def test_row_malformed_on_a_duplicate_member_in_a_csv_event_column(tmp_path: Path) -> None:
    import csv

    folder = write_bundle(tmp_path, data_format="csv")
    path = data_path(folder)
    records = list(csv.reader(path.read_text().splitlines(keepends=True), strict=True))
    column = records[0].index("event")
    assert records[3][column].startswith('{"action":"user.login",')
    records[3][column] = '{"action":"user.logout",' + records[3][column][1:]
    with path.open("w", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows(records)
    f = fault(folder)
    assert (f.code, f.row, f.seq) == ("row_malformed", 3, 2), str(f)
    assert "duplicate_member at action" in str(f)


def test_manifest_invalid_on_a_duplicate_member(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    path = folder / "manifest.json"
    text = path.read_text()
    path.write_text(text.replace('"rows": 12,', '"rows": 11, "rows": 12,', 1))
    f = fault(folder)
    assert f.code == "manifest_invalid"
    assert "duplicate_member at rows" in str(f)


def test_proof_invalid_on_a_duplicate_member_in_a_proof_line(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, count=20, select=lambda e: e["seq"] in (3, 9))
    _edit_line(folder / "proof.jsonl", 1, '{"level": ', '{"hash": "' + "ab" * 32 + '", "level": ')
    f = fault(folder)
    assert f.code == "proof_invalid"
    assert "duplicate_member at hash" in str(f)
