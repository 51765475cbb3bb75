"""Known answers published elsewhere: RFC 8785 examples, RFC 6962 Merkle vectors
(transparency-dev/merkle, in test-vectors/third-party), the Rust crate's golden checkpoint and a
real Sigstore Rekor checkpoint, so the SDK is pinned even before the generated vectors exist."""

from __future__ import annotations

import base64

import pytest

import auditlog
from auditlog import CheckpointError, ProofError
from conftest import load_vector

GOLDEN_BODY = "audit.example.com/log/v1\n1042\nfkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=\ntimestamp 1735689600\n"
GOLDEN_SPKI = bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d030107034200041e18532fd4754c02f3041d9c75ceb33b83ffd81ac7ce4fe882"
    "ccb1c98bc5896ea46c311c4e2ff40dd96a3653e6e45445d32dfe486eced75c7a90c6a18881c0a3"
)
GOLDEN_SIGNATURE = (
    "zpfsIDBFAiEAiN3TroxENWdIzlE4H98j5Q5zVTbenIgOTXiij1eaLjICID61folF2b+jT6f0b0vPyzJJhmlk9rNpolpGYkuGE+Y6"
)
ORIGIN = "audit.example.com/log/v1"
REKOR_NOTE = (
    "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n"
    "\u2014 rekor.sigstore.dev "
    "wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n"
)
REKOR_VERIFIER_KEY = (
    "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l"
    "+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc="
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            '{"\\u20ac":1,"\\r":2,"1":3,"\\u0080":4,"\\ud83d\\ude00":5,"\\ufb33":6}',
            '{"\\r":2,"1":3,"\u0080":4,"\u20ac":1,"\U0001f600":5,"\ufb33":6}',
        ),
        (
            "[1E30, 4.50, 2e-3, 0.000001, 1e-7, -0, 333333333.33333329]",
            "[1e+30,4.5,0.002,0.000001,1e-7,0,333333333.3333333]",
        ),
        (
            '{"s":"\\u001f\\"\\\\\\/\\b\\f\\n\\r\\t\\u20ac\\u00e9","n":[1e21,1e-6,1e-7,5e-324,-0.0,9007199254740991,0.1,1.0]}',
            '{"n":[1e+21,0.000001,1e-7,5e-324,0,9007199254740991,0.1,1],"s":"\\u001f\\"\\\\/\\b\\f\\n\\r\\t\u20ac\u00e9"}',
        ),
    ],
)
def test_jcs_matches_rfc8785_examples(text: str, canonical: str) -> None:
    assert auditlog.canonicalize_text(text) == canonical.encode("utf-8")


def test_jcs_reads_integers_beyond_2_pow_53_as_doubles() -> None:
    assert auditlog.canonicalize_text("[9007199254740993, 100000000000000000000000]") == b"[9007199254740992,1e+23]"


def test_merkle_matches_rfc6962_vectors() -> None:
    v = load_vector("third-party/rfc6962-merkle.json")
    leaves = [auditlog.leaf_hash(bytes.fromhex(x)) for x in v["leaf_inputs"]]
    assert [h.hex() for h in leaves] == v["node_hashes"][0]
    for size, root in enumerate(v["roots"]):
        assert auditlog.merkle_root(leaves[:size]).hex() == root
    for case in v["inclusion_proofs"]:
        i, n = case["leaf_index"], case["tree_size"]
        path = [bytes.fromhex(h) for h in case["proof"]]
        auditlog.verify_inclusion(leaves[i], i, n, path, bytes.fromhex(v["roots"][n]))
        if path:
            with pytest.raises(ProofError):
                auditlog.verify_inclusion(leaves[i], i, n, path[:-1], bytes.fromhex(v["roots"][n]))
    for case in v["consistency_proofs"]:
        m, n = case["old_size"], case["new_size"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        auditlog.verify_consistency(m, n, bytes.fromhex(v["roots"][m]), bytes.fromhex(v["roots"][n]), proof)
        if proof:
            bad = proof[:-1] + [bytes(32)]
            with pytest.raises(ProofError):
                auditlog.verify_consistency(m, n, bytes.fromhex(v["roots"][m]), bytes.fromhex(v["roots"][n]), bad)


def test_verifies_the_rust_crates_golden_note() -> None:
    key = auditlog.TrustedKey(ORIGIN, GOLDEN_SPKI)
    assert key.key_id.hex() == "ce97ec20"
    note = f"{GOLDEN_BODY}\n\u2014 {ORIGIN} {GOLDEN_SIGNATURE}\n"
    cp = auditlog.verify_checkpoint(note, [key])
    assert (cp.origin, cp.size, cp.timestamp) == (ORIGIN, 1042, 1735689600)
    assert base64.b64encode(cp.root).decode() == "fkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4="
    with pytest.raises(CheckpointError) as e:
        auditlog.verify_checkpoint(note.replace("\n1042\n", "\n1043\n"), [key])
    assert e.value.kind == "signature"


def test_verifies_a_published_rekor_checkpoint_and_its_verifier_key() -> None:
    key = auditlog.parse_verifier_key(REKOR_VERIFIER_KEY)
    assert key.name == "rekor.sigstore.dev" and key.key_id.hex() == "c0d23d6a"
    assert key.verifier_key == REKOR_VERIFIER_KEY
    cp = auditlog.verify_checkpoint(REKOR_NOTE, key)
    assert (cp.origin, cp.size) == ("Rekor", 798034)


def test_ignores_signatures_by_other_keys_but_needs_one_by_a_trusted_key() -> None:
    golden = auditlog.TrustedKey(ORIGIN, GOLDEN_SPKI)
    rekor = auditlog.parse_verifier_key(REKOR_VERIFIER_KEY)
    # A cosignature by a key the verifier does not trust is ignored ...
    cosigned = REKOR_NOTE + f"\u2014 witness.example {GOLDEN_SIGNATURE}\n"
    assert auditlog.verify_checkpoint(cosigned, [rekor]).size == 798034
    # ... but every signature by a trusted key must verify (this one signs another body).
    with pytest.raises(CheckpointError) as e:
        auditlog.verify_checkpoint(REKOR_NOTE + f"\u2014 {ORIGIN} {GOLDEN_SIGNATURE}\n", [golden, rekor])
    assert e.value.kind == "signature"
    with pytest.raises(CheckpointError) as e:
        auditlog.verify_checkpoint(REKOR_NOTE, [golden])
    assert e.value.kind == "no_signature"
