/**
 * Offline verification pinned against values computed elsewhere: the Rust crate's golden
 * checkpoint, a published Sigstore Rekor checkpoint, FORMATS.md's examples, and round trips.
 */

import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, it } from "node:test";
import {
  checkpointKey,
  contentBytes,
  ed25519RawPublicKey,
  merkleRoot,
  normalizeTimestamp,
  parseCheckpointBody,
  parseVerifierKey,
  receiptKeyId,
  receiptSigningBytes,
  RootBuilder,
  signEvent,
  signingBytes,
  verifierKeyString,
  verifyCheckpoint,
  verifyEntry,
  verifyEventSignature,
  verifyInclusion,
  verifyReceipt,
  VerificationError,
  type Receipt,
} from "../src/index.js";
import { buildBundle, testCheckpointKey } from "./support.js";

const code = (c: string) => (e: unknown) => e instanceof VerificationError && e.code === c;

// From shared/src/chain/checkpoint.rs: a body, the SPKI of the key with scalar 0x07..07, its key
// ID, and base64(key ID || DER signature) over the body (checked there with Python's cryptography).
const GOLDEN_BODY = "audit.example.com/log/v1\n1042\nfkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=\ntimestamp 1735689600\n";
const GOLDEN_SPKI_HEX =
  "3059301306072a8648ce3d020106082a8648ce3d030107034200041e18532fd4754c02f3041d9c75ceb33b83ffd81ac7ce4fe882ccb1c98bc5896ea46c311c4e2ff40dd96a3653e6e45445d32dfe486eced75c7a90c6a18881c0a3";
const GOLDEN_SIGNATURE = "zpfsIDBFAiEAiN3TroxENWdIzlE4H98j5Q5zVTbenIgOTXiij1eaLjICID61folF2b+jT6f0b0vPyzJJhmlk9rNpolpGYkuGE+Y6";
const GOLDEN_NOTE = `${GOLDEN_BODY}\n\u2014 audit.example.com/log/v1 ${GOLDEN_SIGNATURE}\n`;

// A published Sigstore Rekor checkpoint and its verifier key (as in the Go ECDSA note verifier's tests).
const REKOR_NOTE =
  "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n\u2014 rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n";
const REKOR_VERIFIER_KEY =
  "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=";

describe("checkpoints", () => {
  const golden = checkpointKey("audit.example.com/log/v1", Buffer.from(GOLDEN_SPKI_HEX, "hex"));

  it("computes the key ID of a DER SPKI as the Rust crate does", () => {
    assert.equal(golden.keyId.toString("hex"), "ce97ec20");
    assert.deepEqual(parseVerifierKey(verifierKeyString(golden)).publicKey, golden.publicKey);
  });

  it("verifies the Rust crate's golden note and parses its body", () => {
    const cp = verifyCheckpoint(GOLDEN_NOTE, golden);
    assert.equal(cp.origin, "audit.example.com/log/v1");
    assert.equal(cp.size, 1042);
    assert.equal(cp.timestamp, 1735689600);
    assert.equal(cp.root.toString("base64"), "fkO00iomjMuosSlAEwXbHIShbj7WsZhq/YIigYfwqR4=");
  });

  it("verifies a published Rekor checkpoint with its verifier key string", () => {
    const key = parseVerifierKey(REKOR_VERIFIER_KEY);
    assert.equal(key.keyName, "rekor.sigstore.dev");
    const cp = verifyCheckpoint(REKOR_NOTE, key);
    assert.equal(cp.origin, "Rekor");
    assert.equal(cp.size, 798034);
  });

  it("rejects a changed size as a bad signature", () => {
    assert.throws(() => verifyCheckpoint(GOLDEN_NOTE.replace("\n1042\n", "\n1043\n"), golden), code("signature"));
  });

  it("ignores other keys' signatures but needs one by a trusted key", () => {
    const cosigned = `${GOLDEN_NOTE}\u2014 witness.example ${Buffer.alloc(70, 1).toString("base64")}\n`;
    assert.equal(verifyCheckpoint(cosigned, golden).size, 1042);
    assert.throws(() => verifyCheckpoint(GOLDEN_NOTE, parseVerifierKey(REKOR_VERIFIER_KEY)), code("no_signature"));
  });

  it("picks the trusted key by key ID among several (rotation)", () => {
    const { key, signNote } = testCheckpointKey();
    const retired = checkpointKey(key.keyName, Buffer.from(GOLDEN_SPKI_HEX, "hex"));
    const note = signNote("audit.test/log/v1/t\n3\n" + Buffer.alloc(32, 9).toString("base64") + "\n");
    assert.equal(verifyCheckpoint(note, [retired, key]).signedBy.keyId.toString("hex"), key.keyId.toString("hex"));
  });

  it("rejects malformed notes and bodies", () => {
    assert.throws(() => verifyCheckpoint(GOLDEN_BODY, golden), code("malformed"));
    assert.throws(() => verifyCheckpoint(GOLDEN_NOTE.replace("\u2014", "-"), golden), code("malformed"));
    assert.throws(() => verifyCheckpoint(GOLDEN_NOTE.slice(0, -1), golden), code("malformed"));
    assert.throws(() => parseCheckpointBody("origin\n01\nAAAA\n"), code("malformed"));
    assert.throws(() => parseCheckpointBody("origin\n1\n" + Buffer.alloc(31).toString("base64") + "\n"), code("malformed"));
    assert.throws(() => parseCheckpointBody("origin\n1\n" + Buffer.alloc(32).toString("base64")), code("malformed"));
  });

  it("refuses a key that is not P-256 and a verifier key of another type", () => {
    const ed = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
    assert.throws(() => checkpointKey("k", ed), code("public_key"));
    assert.throws(() => parseVerifierKey(REKOR_VERIFIER_KEY.replace("+AjBZ", "+ATBZ")), code("public_key"));
    assert.throws(() => parseVerifierKey(REKOR_VERIFIER_KEY.replace("c0d23d6a", "c0d23d6b")), code("public_key"));
  });
});

describe("events", () => {
  it("normalises occurred_at to UTC with six fractional digits, truncating", () => {
    const cases: [string, string][] = [
      ["2026-11-24T09:59:00Z", "2026-11-24T09:59:00.000000Z"],
      ["2026-11-24T11:59:00.1234567+02:00", "2026-11-24T09:59:00.123456Z"],
      ["2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00.000000Z"],
      ["2026-01-01T00:00:00.9999999+00:30", "2025-12-31T23:30:00.999999Z"],
      ["2024-02-29t23:59:59.5z", "2024-02-29T23:59:59.500000Z"],
    ];
    for (const [input, expected] of cases) assert.equal(normalizeTimestamp(input), expected, input);
    assert.equal(normalizeTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), "2026-01-02T03:04:05.678000Z");
    for (const bad of ["2026-02-30T00:00:00Z", "2026-11-24T09:59:00", "2026-11-24 9:59:00Z", "yesterday"]) {
      assert.throws(() => normalizeTimestamp(bad), code("invalid_event"), bad);
    }
  });

  it("gives FORMATS.md's example content", () => {
    const content = contentBytes({
      action: "user.login",
      actor: { id: "u1", type: "user" },
      metadata: { b: 1, a: [true, null] },
      occurred_at: "2026-11-24T11:00:00+01:00",
    });
    assert.equal(
      content.toString(),
      '{"action":"user.login","actor":{"id":"u1","type":"user"},"metadata":{"a":[true,null],"b":1},"occurred_at":"2026-11-24T10:00:00.000000Z","outcome":"success"}',
    );
    assert.ok(!contentBytes({ action: "a", actor: { id: "u" }, metadata: {}, occurred_at: "2026-11-24T10:00:00Z" }).toString().includes("metadata"));
  });

  it("signs over the normalised event without its signature, filling in occurred_at and outcome", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const event = { action: "document.delete", actor: { id: "u-42" }, occurred_at: "2026-11-24T10:59:00.1234567+01:00" };
    const signed = signEvent(event, "k1", privateKey);
    assert.equal(signed.outcome, "success");
    assert.equal(signed.occurred_at, "2026-11-24T09:59:00.123456Z");
    assert.deepEqual(Object.keys(event), ["action", "actor", "occurred_at"], "the input is not modified");
    assert.equal(signed.signature?.alg, "ed25519");
    const raw = ed25519RawPublicKey(privateKey);
    assert.ok(verifyEventSignature(signingBytes(signed), signed.signature!.sig, raw));
    assert.ok(!verifyEventSignature(signingBytes({ ...signed, action: "document.create" }), signed.signature!.sig, raw));
    const now = new Date(Date.UTC(2026, 10, 24, 12));
    assert.equal(signEvent({ action: "a", actor: { id: "u" } }, "k1", privateKey, now).occurred_at, "2026-11-24T12:00:00.000000Z");
  });

  it("refuses events the service would refuse, naming the field", () => {
    assert.throws(() => contentBytes({ action: "a", actor: { id: "u" }, tenant_id: "x" } as never), /tenant_id: unknown member/);
    assert.throws(() => contentBytes({ action: "a", actor: {} } as never), /actor\.id/);
    assert.throws(() => contentBytes({ action: "a", actor: { id: "u" }, outcome: "maybe" } as never), /outcome/);
    assert.throws(() => signingBytes({ action: "a", actor: { id: "u" } }), /occurred_at: required/);
  });
});

describe("receipts", () => {
  it("verifies a receipt with the key its key_id names, and rejects a changed one", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
    const unsigned = {
      tenant_id: "0190c1a4-0000-7000-8000-000000000001",
      event_id: "0190c1a4-0000-7000-8000-000000000002",
      seq: 41,
      leaf_hash: "11".repeat(32),
      chain_hash: "22".repeat(32),
      received_at: "2026-11-24T10:00:00.123456Z",
      key_id: receiptKeyId(raw),
      sig: "",
    };
    const receipt: Receipt = { ...unsigned, sig: sign(null, receiptSigningBytes(unsigned), privateKey).toString("base64") };
    const other = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(12);
    verifyReceipt(receipt, [other, raw.toString("base64")]);
    assert.throws(() => verifyReceipt({ ...receipt, seq: 42 }, [raw]), code("signature"));
    assert.throws(() => verifyReceipt(receipt, [other]), code("unknown_key"));
    assert.throws(() => verifyReceipt({ ...receipt, sig: "AAAA" }, [raw]), code("malformed"));
  });
});

describe("entries", () => {
  it("verifies an API entry with its inclusion proof against a verified checkpoint", () => {
    const b = buildBundle({ treeSize: 11 });
    const checkpoint = verifyCheckpoint(b.manifest.checkpoint.note, b.key);
    const leaves = b.entries.map((e) => Buffer.from(e.leaf_hash, "hex"));
    assert.ok(merkleRoot(leaves).equals(checkpoint.root));
    const e = b.entries[6]!;
    const entry = { ...e, tenant_id: b.manifest.tenant_id, erased: false };
    // The audit path of leaf 6 in 11 leaves: leaf 7, node [4,6), node [0,4), node [8,11).
    const path = [leaves[7]!, merkleRoot(leaves.slice(4, 6)), merkleRoot(leaves.slice(0, 4)), merkleRoot(leaves.slice(8, 11))];
    verifyInclusion(6, 11, leaves[6]!, path, checkpoint.root);
    const proof = { event_id: e.id, leaf_index: 6, tree_size: 11, leaf_hash: e.leaf_hash, root: checkpoint.rootHex, audit_path: path.map((p) => p.toString("hex")), checkpoint: null };
    verifyEntry(entry, proof, checkpoint);
    assert.throws(() => verifyEntry({ ...entry, event: { ...entry.event!, action: "x" } }, proof, checkpoint), code("content_digest"));
    assert.throws(() => verifyEntry({ ...entry, received_at: "2026-01-01T00:00:00.000000Z" }, proof, checkpoint), code("leaf_hash"));
    assert.throws(() => verifyEntry(entry, { ...proof, audit_path: proof.audit_path.slice(1) }, checkpoint), code("inclusion"));
    assert.throws(() => verifyEntry(entry, { ...proof, tree_size: 12 }, checkpoint), code("inclusion"));
    const erased = { ...entry, event: null, salt: null, erased: true };
    verifyEntry(erased, proof, checkpoint);
  });

  it("rebuilds roots of every size incrementally", () => {
    const leaves = Array.from({ length: 33 }, (_, i) => Buffer.alloc(32, i));
    const b = new RootBuilder();
    leaves.forEach((leaf, i) => {
      b.pushLeaf(leaf);
      assert.ok(b.root().equals(merkleRoot(leaves.slice(0, i + 1))));
    });
    const unaligned = new RootBuilder();
    unaligned.pushLeaf(leaves[0]!);
    assert.throws(() => unaligned.pushNode(1, leaves[1]!), code("malformed"), "a level-1 node cannot start at leaf 1");
  });
});
