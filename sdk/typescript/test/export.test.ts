/** The export verifier on bundles built here, valid and tampered one way at a time. */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { verifyExport, verifyExportFolder, type ExportReport } from "../src/index.js";
import { buildBundle, chunked, csvLine, jsonlLine, rehash, testCheckpointKey, type BuiltBundle } from "./support.js";

async function verify(b: BuiltBundle, chunk?: number): Promise<ExportReport> {
  return verifyExport(
    { manifest: JSON.stringify(b.manifest), data: chunk ? chunked(b.data, chunk) : b.data, proof: chunk ? chunked(b.proof, chunk) : b.proof },
    b.key,
  );
}

function assertFault(r: ExportReport, code: string, row: number | null = null, seq: number | null = null): void {
  assert.equal(r.valid, false, `expected fault ${code}, but the bundle verified`);
  assert.deepEqual({ code: r.fault?.code, row: r.fault?.row, seq: r.fault?.seq }, { code, row, seq }, r.fault?.message);
}

function replaceLine(data: Buffer, index: number, line: string): Buffer {
  const lines = data.toString().split("\n");
  lines[index] = line.replace(/\n$/, "");
  return Buffer.from(lines.join("\n"));
}

describe("verifyExport accepts", () => {
  it("a JSONL export of every entry, with an empty proof", async () => {
    const b = buildBundle({ treeSize: 13 });
    assert.equal(b.proof.length, 0);
    const r = await verify(b);
    assert.equal(r.fault, null);
    assert.equal(r.valid, true);
    assert.equal(r.rows, 13);
  });

  it("a CSV export, read in 7-byte chunks", async () => {
    const r = await verify(buildBundle({ treeSize: 9, format: "csv" }), 7);
    assert.equal(r.fault, null);
    assert.equal(r.rows, 9);
  });

  it("a gzip'd CSV export made of several gzip members", async () => {
    const r = await verify(buildBundle({ treeSize: 21, format: "csv", gzip: true }), 5);
    assert.equal(r.fault, null);
    assert.equal(r.rows, 21);
  });

  it("a filtered export whose proof fills the gaps", async () => {
    const b = buildBundle({ treeSize: 37, include: (s) => s % 5 === 2 || s === 36 });
    assert.ok(b.proof.length > 0);
    const r = await verify(b);
    assert.equal(r.fault, null);
    assert.equal(r.rows, 8); // seqs 2, 7, 12, 17, 22, 27, 32 and 36
  });

  it("an export of no rows (proof covers the whole tree)", async () => {
    const b = buildBundle({ treeSize: 6, include: () => false });
    assert.equal(b.manifest.first_seq, null);
    const r = await verify(b);
    assert.equal(r.fault, null);
    assert.equal(r.rows, 0);
  });

  it("erased rows, whose digest is taken as given", async () => {
    for (const format of ["jsonl", "csv"] as const) {
      const r = await verify(buildBundle({ treeSize: 8, erased: [2, 5], format }));
      assert.equal(r.fault, null, format);
    }
  });

  it("a bundle in a folder, naming the data file by the manifest's key", async () => {
    const b = buildBundle({ treeSize: 10, format: "csv", gzip: true, include: (s) => s > 3 });
    const dir = mkdtempSync(join(tmpdir(), "export-"));
    try {
      writeFileSync(join(dir, "manifest.json"), JSON.stringify(b.manifest));
      writeFileSync(join(dir, "data.csv.gz"), b.data);
      writeFileSync(join(dir, "proof.jsonl"), b.proof);
      const r = await verifyExportFolder(dir, b.key);
      assert.equal(r.fault, null);
      assert.equal(r.rows, 6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("verifyExport reports", () => {
  it("manifest_invalid for a manifest that is not JSON, has another format or misses a member", async () => {
    const b = buildBundle({ treeSize: 3 });
    assertFault(await verifyExport({ manifest: "{", data: b.data, proof: b.proof }, b.key), "manifest_invalid");
    assertFault(await verify({ ...b, manifest: { ...b.manifest, format: "audit-log-export/v2" } }), "manifest_invalid");
    const { rows: _rows, ...withoutRows } = b.manifest;
    assertFault(await verify({ ...b, manifest: withoutRows }), "manifest_invalid");
    assertFault(await verify({ ...b, manifest: { ...b.manifest, gzip: "no" } }), "manifest_invalid");
  });

  it("checkpoint_invalid for a changed manifest root, another key, or another tenant's origin", async () => {
    const b = buildBundle({ treeSize: 4 });
    const root = b.manifest.checkpoint.root as string;
    const changed = (root[0] === "0" ? "1" : "0") + root.slice(1);
    assertFault(await verify({ ...b, manifest: { ...b.manifest, checkpoint: { ...b.manifest.checkpoint, root: changed } } }), "checkpoint_invalid");
    assertFault(await verify({ ...b, manifest: { ...b.manifest, checkpoint: { ...b.manifest.checkpoint, tree_size: 5 } } }), "checkpoint_invalid");
    const other = testCheckpointKey("other.test/log/v1").key;
    assertFault(await verifyExport({ manifest: JSON.stringify(b.manifest), data: b.data, proof: b.proof }, other), "checkpoint_invalid");
    assertFault(await verify({ ...b, manifest: { ...b.manifest, tenant_id: "00000000-0000-0000-0000-000000000001" } }), "checkpoint_invalid");
  });

  it("content_digest at the row whose event changed, with its row number and seq", async () => {
    const b = buildBundle({ treeSize: 6, include: (s) => s !== 1 });
    b.data = Buffer.from(b.data.toString().replace('"id":"u-3"', '"id":"u-X"'));
    assertFault(await verify(rehash(b)), "content_digest", 3, 3);
  });

  it("row_malformed for a line that is not JSON, a missing member, or erased disagreeing with the event", async () => {
    const b = buildBundle({ treeSize: 4 });
    assertFault(await verify(rehash({ ...b, data: replaceLine(b.data, 1, "{not json") })), "row_malformed", 2, null);
    const row = JSON.parse(jsonlLine(b.rows[2]!));
    delete row.leaf_hash;
    assertFault(await verify(rehash({ ...b, data: replaceLine(b.data, 2, JSON.stringify(row)) })), "row_malformed", 3, 2);
    const erased = { ...JSON.parse(jsonlLine(b.rows[0]!)), erased: true };
    assertFault(await verify(rehash({ ...b, data: replaceLine(b.data, 0, JSON.stringify(erased)) })), "row_malformed", 1, 0);
  });

  // Each forged text carries a duplicate member whose last occurrence is the genuine value, so
  // a last-wins parser such as JSON.parse would verify it; the strict reading refuses it.
  it("row_malformed, with row and seq, for a duplicate member in a row or its event", async () => {
    const b = buildBundle({ treeSize: 5 });
    const forgedRow = jsonlLine(b.rows[3]!).replace('{"seq":3,', `{"seq":3,"leaf_hash":"${"00".repeat(32)}",`);
    let r = await verify(rehash({ ...b, data: replaceLine(b.data, 3, forgedRow) }));
    assertFault(r, "row_malformed", 4, 3);
    assert.match(r.fault!.message, /duplicate_member at leaf_hash/);
    const forgedEvent = jsonlLine(b.rows[2]!).replace('"event":{', '"event":{"action":"user.logout",');
    r = await verify(rehash({ ...b, data: replaceLine(b.data, 2, forgedEvent) }));
    assertFault(r, "row_malformed", 3, 2);
    assert.match(r.fault!.message, /duplicate_member at event\.action/);
  });

  it("row_malformed without a seq for a row serde_json cannot read either, as the Rust verifier reports it", async () => {
    const b = buildBundle({ treeSize: 5 });
    const surrogate = jsonlLine(b.rows[3]!).replace('"type":"user"', '"type":"user\\ud800"');
    let r = await verify(rehash({ ...b, data: replaceLine(b.data, 3, surrogate) }));
    assertFault(r, "row_malformed", 4, null);
    assert.match(r.fault!.message, /invalid_string at event\.actor\.type/);
    const overflow = jsonlLine(b.rows[3]!).replace('{"seq":3,', '{"seq":3,"seq":3,"n":1e400,');
    r = await verify(rehash({ ...b, data: replaceLine(b.data, 3, overflow) }));
    assertFault(r, "row_malformed", 4, null);
    assert.match(r.fault!.message, /duplicate_member at seq/);
  });

  it("row_malformed for a number in an event that is not exactly a double", async () => {
    const b = buildBundle({ treeSize: 6 });
    const line = jsonlLine(b.rows[5]!).replace('"n":5,', '"n":9007199254740993,');
    const r = await verify(rehash({ ...b, data: replaceLine(b.data, 5, line) }));
    assertFault(r, "row_malformed", 6, 5);
    assert.match(r.fault!.message, /unsafe_integer at event\.metadata\.n/);
  });

  it("row_malformed for a duplicate member in a CSV event column", async () => {
    const b = buildBundle({ treeSize: 5, format: "csv" });
    const line = csvLine(b.rows[1]!);
    const forged = line.replace('"{""action"":""user.login"",', '"{""action"":""user.logout"",""action"":""user.login"",');
    assert.notEqual(forged, line);
    const r = await verify(rehash({ ...b, data: Buffer.from(b.data.toString().replace(line, forged)) }));
    assertFault(r, "row_malformed", 2, 1);
    assert.match(r.fault!.message, /duplicate_member at action/);
  });

  it("manifest_invalid for a duplicate member in the manifest", async () => {
    const b = buildBundle({ treeSize: 3 });
    const manifest = JSON.stringify(b.manifest).replace('"rows":3,', '"rows":2,"rows":3,');
    const r = await verifyExport({ manifest, data: b.data, proof: b.proof }, b.key);
    assertFault(r, "manifest_invalid");
    assert.match(r.fault!.message, /duplicate_member at rows/);
  });

  it("proof_invalid for a duplicate member in a proof line", async () => {
    const b = buildBundle({ treeSize: 8, include: (s) => s === 2 });
    const nodes = b.proof.toString().split("\n");
    nodes[0] = nodes[0]!.replace('{"level":', `{"hash":"${"ab".repeat(32)}","level":`);
    const r = await verify(rehash({ ...b, proof: Buffer.from(nodes.join("\n")) }));
    assertFault(r, "proof_invalid");
    assert.match(r.fault!.message, /duplicate_member at hash/);
  });

  it("row_malformed for a CSV copy column that differs from the event", async () => {
    const b = buildBundle({ treeSize: 5, format: "csv" });
    const line = csvLine(b.rows[1]!).replace(",user.login,", ",user.logout,");
    assert.notEqual(line, csvLine(b.rows[1]!));
    const data = Buffer.from(b.data.toString().replace(csvLine(b.rows[1]!), line));
    assertFault(await verify(rehash({ ...b, data })), "row_malformed", 2, 1);
  });

  it("row_order for two swapped rows and for a seq at or past the tree size", async () => {
    const b = buildBundle({ treeSize: 6 });
    const lines = b.data.toString().split("\n");
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    assertFault(await verify(rehash({ ...b, data: Buffer.from(lines.join("\n")) })), "row_order", 4, 2);
    // A row past the signed size.
    const five = buildBundle({ treeSize: 5 });
    const extra = jsonlLine({ ...five.rows[4]!, seq: 5 });
    assertFault(await verify(rehash({ ...five, data: Buffer.concat([five.data, Buffer.from(extra)]) })), "row_order", 6, 5);
  });

  it("leaf_hash when the entry fields changed but the digest still matches", async () => {
    const b = buildBundle({ treeSize: 4 });
    const row = JSON.parse(jsonlLine(b.rows[1]!));
    row.received_at = "2026-11-24T10:01:01.500001Z";
    assertFault(await verify(rehash({ ...b, data: replaceLine(b.data, 1, JSON.stringify(row)) })), "leaf_hash", 2, 1);
  });

  it("chain_hash when a row's chain hash does not follow from the previous row's", async () => {
    const b = buildBundle({ treeSize: 4 });
    const row = JSON.parse(jsonlLine(b.rows[2]!));
    row.chain_hash = b.rows[1]!.chain_hash;
    assertFault(await verify(rehash({ ...b, data: replaceLine(b.data, 2, JSON.stringify(row)) })), "chain_hash", 3, 2);
  });

  it("row_count when the last row is dropped", async () => {
    const b = buildBundle({ treeSize: 5, include: (s) => s !== 4 });
    const lines = b.data.toString().split("\n");
    lines.splice(lines.length - 2, 1);
    assertFault(await verify(rehash({ ...b, data: Buffer.from(lines.join("\n")) })), "row_count");
  });

  it("proof_invalid for a missing, misplaced or extra proof node", async () => {
    const b = buildBundle({ treeSize: 11, include: (s) => s === 4 || s === 9 });
    const nodes = b.proof.toString().trim().split("\n");
    const without = Buffer.from(nodes.slice(1).join("\n") + "\n");
    assertFault(await verify(rehash({ ...b, proof: without })), "proof_invalid");
    const swapped = [nodes[1], nodes[0], ...nodes.slice(2)].join("\n") + "\n";
    assertFault(await verify(rehash({ ...b, proof: Buffer.from(swapped) })), "proof_invalid");
    const extra = Buffer.concat([b.proof, Buffer.from(nodes[0] + "\n")]);
    assertFault(await verify(rehash({ ...b, proof: extra })), "proof_invalid");
    assertFault(await verify(rehash({ ...b, proof: Buffer.from("nonsense\n") })), "proof_invalid");
  });

  it("root_mismatch when a proof node's hash changed", async () => {
    const b = buildBundle({ treeSize: 11, include: (s) => s === 4 || s === 9 });
    const nodes = b.proof.toString().trim().split("\n").map((l) => JSON.parse(l));
    nodes[0].hash = "00".repeat(32);
    const proof = Buffer.from(nodes.map((n) => JSON.stringify(n) + "\n").join(""));
    assertFault(await verify(rehash({ ...b, proof })), "root_mismatch");
  });

  it("data_sha256 and proof_sha256 when the manifest's hashes differ", async () => {
    const b = buildBundle({ treeSize: 6, include: (s) => s > 1 });
    assertFault(await verify({ ...b, manifest: { ...b.manifest, data: { ...b.manifest.data, sha256: "ab".repeat(32) } } }), "data_sha256");
    assertFault(await verify({ ...b, manifest: { ...b.manifest, proof: { ...b.manifest.proof, sha256: "ab".repeat(32) } } }), "proof_sha256");
  });

  it("a row fault before a proof fault that precedes it in the files", async () => {
    const b = buildBundle({ treeSize: 8, include: (s) => s >= 4 });
    const row = JSON.parse(jsonlLine(b.rows[3]!));
    row.content_digest = "00".repeat(32);
    const data = replaceLine(b.data, 3, JSON.stringify(row));
    assertFault(await verify(rehash({ ...b, data, proof: Buffer.from("broken\n") })), "content_digest", 4, 7);
  });

  it("row_malformed for a last line without its newline, an empty line, or a salt that is not 32 bytes", async () => {
    const b = buildBundle({ treeSize: 4 });
    assertFault(await verify(rehash({ ...b, data: b.data.subarray(0, b.data.length - 1) })), "row_malformed", 4, null);
    assertFault(await verify(rehash({ ...b, data: Buffer.concat([b.data, Buffer.from("\n")]) })), "row_malformed", 5, null);
    const lines = b.data.toString().split("\n");
    lines.splice(1, 0, "");
    assertFault(await verify(rehash({ ...b, data: Buffer.from(lines.join("\n")) })), "row_malformed", 2, null);
    const row = JSON.parse(jsonlLine(b.rows[1]!));
    row.salt = Buffer.alloc(31).toString("base64");
    assertFault(await verify(rehash({ ...b, data: replaceLine(b.data, 1, JSON.stringify(row)) })), "row_malformed", 2, 1);
    const csv = buildBundle({ treeSize: 3, format: "csv" });
    assertFault(await verify(rehash({ ...csv, data: csv.data.subarray(0, csv.data.length - 1) })), "row_malformed", 3, null);
    assertFault(await verify(rehash({ ...csv, data: Buffer.concat([csv.data, Buffer.from("\n")]) })), "row_malformed", 4, null);
    assertFault(await verify(rehash({ ...csv, data: Buffer.from(csv.data.toString().replace(/^seq,/, "Seq,")) })), "row_malformed", null, null);
  });

  it("proof_invalid when the manifest counts other proof nodes, and the digest fault for another length", async () => {
    const b = buildBundle({ treeSize: 7, include: (s) => s === 3 });
    assertFault(await verify({ ...b, manifest: { ...b.manifest, proof: { ...b.manifest.proof, nodes: 2 } } }), "proof_invalid");
    assertFault(await verify({ ...b, manifest: { ...b.manifest, data: { ...b.manifest.data, bytes: b.data.length + 1 } } }), "data_sha256");
    const proofLines = b.proof.toString();
    assertFault(await verify(rehash({ ...b, proof: Buffer.from(proofLines.slice(0, -1)) })), "proof_invalid");
  });

  it("accepts the tenant id in another UUID spelling, as the Rust verifier does", async () => {
    const b = buildBundle({ treeSize: 3 });
    const r = await verify({ ...b, manifest: { ...b.manifest, tenant_id: (b.manifest.tenant_id as string).toUpperCase() } });
    assert.equal(r.fault, null);
    assertFault(await verify({ ...b, manifest: { ...b.manifest, tenant_id: "not-a-uuid" } }), "manifest_invalid");
  });

  it("row_malformed for corrupt gzip data", async () => {
    const b = buildBundle({ treeSize: 6, format: "jsonl", gzip: true });
    const data = Buffer.from(b.data);
    data[data.length - 12]! ^= 0xff; // inside the last member's deflate stream or trailer
    const r = await verify(rehash({ ...b, data }));
    assert.equal(r.valid, false);
    assert.ok(["row_malformed", "content_digest", "data_sha256"].includes(r.fault!.code), r.fault!.message);
  });
});
