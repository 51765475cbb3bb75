/**
 * Every shared vector file in test-vectors/v1 (and the third-party RFC 6962 vectors), each case
 * checked. A missing file fails its test with the file's name; only test-vectors/v1/exports/ may
 * be absent for now, and then its tests are skipped with the reason.
 */

import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  canonicalEntry,
  chainLink,
  checkpointKey,
  contentBytes,
  contentDigest,
  ed25519RawPublicKey,
  entryLeafHash,
  jcs,
  jcsText,
  merkleRoot,
  normalizeEvent,
  parseStrictJson,
  StrictJsonError,
  parseVerifierKey,
  receiptKeyId,
  receiptSigningBytes,
  signEvent,
  signingBytes,
  verifierKeyString,
  verifyCheckpoint,
  verifyConsistency,
  verifyExportFolder,
  verifyInclusion,
  verifyReceipt,
  VerificationError,
  ZERO_HASH,
  type CheckpointKey,
} from "../src/index.js";
import { loadJson, THIRD_PARTY_DIR, vector, VECTORS_DIR } from "./support.js";

const hex = (s: string) => Buffer.from(s, "hex");
const b64 = (s: string) => Buffer.from(s, "base64");

function assertCases(cases: unknown, file: string): asserts cases is any[] {
  assert.ok(Array.isArray(cases) && cases.length > 0, `${file} has no cases`);
}

describe("test-vectors/third-party/rfc6962-merkle.json", () => {
  const v = loadJson(join(THIRD_PARTY_DIR, "rfc6962-merkle.json"));
  const leaves = (v.leaf_inputs as string[]).map((input) => Buffer.concat([Buffer.from([0]), hex(input)]));
  const leafHashes = leaves.map((l) => (v.node_hashes[0] as string[])[leaves.indexOf(l)]!).map(hex);

  it("gives every root from the leaf inputs", async () => {
    const { hashLeaf } = await import("../src/hash.js");
    const hashed = (v.leaf_inputs as string[]).map((i) => hashLeaf(hex(i)));
    assert.deepEqual(hashed.map((h) => h.toString("hex")), v.node_hashes[0]);
    (v.roots as string[]).forEach((root, size) => {
      assert.equal(merkleRoot(hashed.slice(0, size)).toString("hex"), root, `root of size ${size}`);
    });
  });

  it("verifies every inclusion proof", () => {
    for (const p of v.inclusion_proofs as { leaf_index: number; tree_size: number; proof: string[] }[]) {
      const root = hex((v.roots as string[])[p.tree_size]!);
      verifyInclusion(p.leaf_index, p.tree_size, leafHashes[p.leaf_index]!, p.proof.map(hex), root);
    }
  });

  it("verifies every consistency proof", () => {
    for (const p of v.consistency_proofs as { old_size: number; new_size: number; proof: string[] }[]) {
      verifyConsistency(p.old_size, p.new_size, hex(v.roots[p.old_size]), hex(v.roots[p.new_size]), p.proof.map(hex));
    }
  });
});

describe("test-vectors/v1/canonical.json", () => {
  it("canonicalises every input to its JCS text", () => {
    const v = vector("canonical.json");
    assertCases(v.cases, "canonical.json");
    for (const c of v.cases) {
      assert.equal(jcsText(JSON.parse(c.input)), c.canonical, c.name);
    }
  });
});

describe("test-vectors/v1/strict-json.json", () => {
  it("accepts the valid inputs and refuses the others with their kind and path", () => {
    const v = vector("strict-json.json");
    assertCases(v.cases, "strict-json.json");
    for (const c of v.cases) {
      const input = Buffer.from(c.input as string, "utf8");
      if (c.valid) {
        parseStrictJson(input);
      } else {
        assert.throws(
          () => parseStrictJson(input),
          (e: unknown) => e instanceof StrictJsonError && e.code === c.error && e.path === c.path,
          `${c.name}: expected ${c.error} at ${JSON.stringify(c.path)}`,
        );
      }
    }
  });
});

describe("test-vectors/v1/events.json", () => {
  it("gives each event's content, signing bytes and content digest", () => {
    const v = vector("events.json");
    assertCases(v.cases, "events.json");
    for (const c of v.cases) {
      assert.equal(contentBytes(c.input, c.received_at).toString("utf8"), c.content, `${c.name}: content`);
      assert.equal(jcs(normalizeEvent(c.input, c.received_at)).toString("utf8"), c.signing_bytes, `${c.name}: signing bytes`);
      assert.equal(contentDigest(b64(c.salt), Buffer.from(c.content, "utf8")).toString("hex"), c.content_digest, `${c.name}: digest`);
    }
  });

  it("signs each publisher event exactly as the vectors do", () => {
    const p = vector("events.json").publisher;
    assert.ok(p, "events.json has no publisher member");
    assert.equal(ed25519RawPublicKey(b64(p.seed)).toString("base64"), p.public_key, "public key of the seed");
    assertCases(p.cases, "events.json publisher");
    for (const c of p.cases) {
      assert.equal(signingBytes(c.event).toString("utf8"), c.signing_bytes, `${c.name}: signing bytes`);
      const signed = signEvent(c.event, p.key_id, b64(p.seed));
      assert.equal(signed.signature?.sig, c.signature, `${c.name}: signature`);
      assert.deepEqual(signed.signature, { key_id: p.key_id, alg: "ed25519", sig: c.signature });
    }
  });
});

describe("test-vectors/v1/entries.json", () => {
  it("gives each canonical entry and leaf hash, and the chain", () => {
    const v = vector("entries.json");
    assertCases(v.entries, "entries.json entries");
    for (const e of v.entries) {
      assert.equal(canonicalEntry(e).toString("utf8"), e.canonical_entry, `entry ${e.seq}`);
      assert.equal(entryLeafHash(e).toString("hex"), e.leaf_hash, `leaf ${e.seq}`);
    }
    assertCases(v.chain, "entries.json chain");
    let previous = ZERO_HASH;
    for (const link of v.chain) {
      previous = chainLink(previous, hex(link.leaf_hash));
      assert.equal(previous.toString("hex"), link.chain_hash, `chain ${link.seq}`);
    }
  });
});

describe("test-vectors/v1/merkle.json", () => {
  it("gives every root, verifies every proof and rejects every invalid one", () => {
    const v = vector("merkle.json");
    const leaves = (v.leaves as string[]).map(hex);
    assert.equal(leaves.length, 40);
    const rootOf = new Map<number, Buffer>();
    assertCases(v.roots, "merkle.json roots");
    for (const r of v.roots) {
      assert.equal(merkleRoot(leaves.slice(0, r.size)).toString("hex"), r.root, `root of size ${r.size}`);
      rootOf.set(r.size, hex(r.root));
    }
    assertCases(v.inclusion, "merkle.json inclusion");
    for (const p of v.inclusion) {
      verifyInclusion(p.index, p.size, leaves[p.index]!, p.path.map(hex), rootOf.get(p.size)!);
    }
    assertCases(v.consistency, "merkle.json consistency");
    for (const p of v.consistency) {
      verifyConsistency(p.old_size, p.new_size, rootOf.get(p.old_size)!, rootOf.get(p.new_size)!, p.proof.map(hex));
    }
    assertCases(v.invalid, "merkle.json invalid");
    for (const p of v.invalid) {
      const label = `invalid ${p.kind} ${JSON.stringify({ ...p, path: undefined, proof: undefined })}`;
      if (p.kind === "inclusion") {
        const leaf = p.leaf_hash !== undefined ? hex(p.leaf_hash) : leaves[p.index] ?? Buffer.alloc(32);
        assert.throws(() => verifyInclusion(p.index, p.size, leaf, p.path.map(hex), hex(p.root)), VerificationError, label);
      } else {
        assert.equal(p.kind, "consistency");
        assert.throws(() => verifyConsistency(p.old_size, p.new_size, hex(p.old_root), hex(p.new_root), p.proof.map(hex)), VerificationError, label);
      }
    }
  });
});

function keyOf(k: { key_name: string; public_key: string; key_id: string; verifier_key: string }): CheckpointKey {
  const key = checkpointKey(k.key_name, k.public_key);
  assert.equal(key.keyId.toString("hex"), k.key_id, "key ID of the public key");
  assert.equal(verifierKeyString(key), k.verifier_key, "verifier key string");
  const parsed = parseVerifierKey(k.verifier_key);
  assert.ok(parsed.publicKey.equals(key.publicKey));
  return key;
}

describe("test-vectors/v1/checkpoints.json", () => {
  it("verifies the valid notes and rejects the others with their error word", () => {
    const v = vector("checkpoints.json");
    const keys: Record<string, CheckpointKey> = { key: keyOf(v.key), retired_key: keyOf(v.retired_key) };
    assertCases(v.cases, "checkpoints.json");
    for (const c of v.cases) {
      const trusted = ((c.keys as string[] | undefined) ?? ["key"]).map((name) => keys[name]!);
      if (c.valid) {
        const cp = verifyCheckpoint(c.note, trusted);
        assert.deepEqual({ origin: cp.origin, size: cp.size, root: cp.rootHex }, { origin: c.origin, size: c.tree_size, root: c.root }, c.name);
      } else {
        assert.throws(
          () => verifyCheckpoint(c.note, trusted),
          (e: unknown) => e instanceof VerificationError && e.code === c.error,
          `${c.name}: expected error ${c.error}`,
        );
      }
    }
  });
});

describe("test-vectors/v1/receipts.json", () => {
  it("verifies the valid receipts and rejects the tampered ones", () => {
    const v = vector("receipts.json");
    assert.equal(receiptKeyId(v.public_key), v.key_id);
    assertCases(v.cases, "receipts.json");
    for (const c of v.cases) {
      assert.equal(receiptSigningBytes(c.receipt).toString("utf8"), c.signing_bytes, `${c.name}: signing bytes`);
      if (c.valid) {
        verifyReceipt(c.receipt, [v.public_key]);
      } else {
        assert.throws(() => verifyReceipt(c.receipt, [v.public_key]), VerificationError, c.name);
      }
    }
  });
});

const EXPORTS_DIR = join(VECTORS_DIR, "exports");
const exportsMissing = existsSync(EXPORTS_DIR) ? false : "test-vectors/v1/exports/ does not exist yet (the export bundle vectors are generated last)";

describe("test-vectors/v1/exports", { skip: exportsMissing }, () => {
  it("reports each bundle as expected.json says", async () => {
    const pk = loadJson(join(EXPORTS_DIR, "public_key.json"));
    const key = checkpointKey(pk.key_name, pk.public_key);
    assert.ok(parseVerifierKey(pk.verifier_key).publicKey.equals(key.publicKey), "public_key.json: verifier key and public key agree");
    const cases = readdirSync(EXPORTS_DIR).filter((name) => statSync(join(EXPORTS_DIR, name)).isDirectory()).sort();
    assert.ok(cases.length > 0, "test-vectors/v1/exports/ holds no case folders");
    for (const name of cases) {
      const expected = loadJson(join(EXPORTS_DIR, name, "expected.json"));
      const report = await verifyExportFolder(join(EXPORTS_DIR, name), key);
      if (expected.valid) {
        assert.equal(report.fault, null, `${name}: expected valid, got ${JSON.stringify(report.fault)}`);
        assert.equal(report.valid, true, name);
      } else {
        assert.deepEqual(
          { code: report.fault?.code, row: report.fault?.row ?? null, seq: report.fault?.seq ?? null },
          { code: expected.code, row: expected.row ?? null, seq: expected.seq ?? null },
          `${name}: ${report.fault?.message ?? "verified, but a fault was expected"}`,
        );
      }
    }
  });
});

