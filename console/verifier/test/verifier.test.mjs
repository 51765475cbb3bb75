// The glue (console/src/verifier.ts, compiled to dist/) with the built WebAssembly module, under
// Node's WebAssembly: the glue itself uses only web-platform APIs, so what passes here runs in a
// browser unchanged. Build the module first: console/verifier/build.sh (or set VERIFIER_WASM).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadVerifier, VECTOR_FILES, VerifierError } from "../dist/verifier.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const wasmPath = process.env.VERIFIER_WASM ?? join(root, "target/wasm32-unknown-unknown/wasm/console_verifier.opt.wasm");
const vectorsDir = join(root, "test-vectors/v1");
const vector = (name) => JSON.parse(readFileSync(join(vectorsDir, name), "utf8"));

async function verifier() {
  assert.ok(existsSync(wasmPath), `${wasmPath} is missing: run console/verifier/build.sh first`);
  // Bytes, as a page would after fetch(); loadVerifier(url) fetches them itself.
  return loadVerifier(readFileSync(wasmPath));
}

describe("runVectors", () => {
  it("passes every case of every shared vector file", async () => {
    const v = await verifier();
    const files = Object.fromEntries(VECTOR_FILES.map((name) => [name, readFileSync(join(vectorsDir, name), "utf8")]));
    const report = v.runVectors(files);
    const failed = report.cases.filter((c) => !c.pass);
    assert.deepEqual(failed, []);
    assert.equal(report.failed, 0);
    assert.ok(report.passed > 500, `${report.passed} cases passed`);
    assert.deepEqual([...report.files].sort(), [...VECTOR_FILES].sort());
  });

  it("reports a changed vector as a failed case", async () => {
    const v = await verifier();
    const merkle = vector("merkle.json");
    merkle.roots[3].root = "00".repeat(32);
    const report = v.runVectors({ "merkle.json": merkle });
    assert.ok(report.failed >= 1);
    assert.ok(report.cases.some((c) => !c.pass && c.name === "root of size 3"), JSON.stringify(report.cases.filter((c) => !c.pass)));
  });
});

// RFC 9162 audit paths over leaf hashes (the test's own, to build a batch proof).
const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
const node = (l, r) => sha256(Buffer.from([1]), l, r);
const largestPowerOfTwoBelow = (n) => { let k = 1; while (k * 2 < n) k *= 2; return k; };
const mth = (leaves) => leaves.length === 1 ? leaves[0] : node(mth(leaves.slice(0, largestPowerOfTwoBelow(leaves.length))), mth(leaves.slice(largestPowerOfTwoBelow(leaves.length))));
function path(m, leaves) {
  if (leaves.length === 1) return [];
  const k = largestPowerOfTwoBelow(leaves.length);
  return m < k ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** A page of the vectors' ten entries (erased: the vectors give their digests, not content)
 * with its batch proof against the vectors' signed checkpoint of size 10. */
function page() {
  const { entries, chain } = vector("entries.json");
  const checkpoints = vector("checkpoints.json");
  const signed = checkpoints.cases.find((c) => c.name === "signed_checkpoint_with_timestamp");
  const leaves = entries.map((e) => Buffer.from(e.leaf_hash, "hex"));
  assert.equal(mth(leaves).toString("hex"), signed.root, "the vectors' checkpoint covers the vectors' entries");
  const items = entries.map((e, i) => ({
    id: e.id, tenant_id: e.tenant_id, seq: e.seq, received_at: e.received_at, event: null, erased: true, salt: null,
    content_digest: e.content_digest, leaf_hash: e.leaf_hash, chain_hash: chain[i].chain_hash,
  }));
  const checkpoint = { tree_size: 10, root: signed.root, note: signed.note, key_name: checkpoints.key.key_name, key_id: checkpoints.key.key_id, signed_at: "2026-11-24T10:00:00.000000Z" };
  const proofs = entries.map((e) => ({ id: e.id, seq: e.seq, leaf_index: e.seq, audit_path: path(e.seq, leaves).map((h) => h.toString("hex")) }));
  return {
    entries: items,
    batch: { tree_size: 10, checkpoint, proofs, missing: [], global_proof: null },
    trusted: { checkpoint_keys: [checkpoints.key.verifier_key], global_log_keys: [] },
  };
}

describe("verifyPage", () => {
  it("verifies a page against the pinned key", async () => {
    const v = await verifier();
    const report = v.verifyPage(page());
    assert.equal(report.checkpoint.ok, true, JSON.stringify(report.checkpoint));
    assert.equal(report.results.length, 10);
    for (const r of report.results) {
      assert.deepEqual({ ok: r.ok, steps: r.steps }, { ok: true, steps: { leaf: "ok", inclusion: "ok", checkpoint: "ok", global: "absent" } }, JSON.stringify(r));
    }
    // The same, given as JSON text.
    assert.deepEqual(v.verifyPage(JSON.stringify(page())), report);
  });

  it("names the changed entry and refuses a checkpoint no pinned key signed", async () => {
    const v = await verifier();
    const changed = page();
    changed.entries[4].received_at = "2026-11-24T10:00:04.000001Z";
    const report = v.verifyPage(changed);
    assert.deepEqual(report.results.map((r) => r.ok), [true, true, true, true, false, true, true, true, true, true]);
    assert.match(report.results[4].reason, /^the leaf hash does not match the entry's fields/);

    const unpinned = page();
    unpinned.trusted.checkpoint_keys = [vector("checkpoints.json").retired_key.verifier_key];
    const refused = v.verifyPage(unpinned);
    assert.equal(refused.checkpoint.ok, false);
    assert.ok(refused.results.every((r) => !r.ok && r.reason === "the checkpoint is not signed by a trusted key"));
  });

  it("throws a VerifierError for an input it cannot read", async () => {
    const v = await verifier();
    assert.throws(() => v.verifyPage('{"entries":[],"entries":[]}'), (e) => e instanceof VerifierError && e.code === "invalid_json");
    const bad = page();
    bad.trusted.checkpoint_keys = ["not a key"];
    assert.throws(() => v.verifyPage(bad), (e) => e instanceof VerifierError && e.code === "invalid_input" && /checkpoint_keys\[0\]/.test(e.message));
    // The module keeps working after an error, and across many calls (memory is reused).
    for (let i = 0; i < 50; i++) assert.equal(v.verifyPage(page()).checkpoint.ok, true);
  });
});
