/**
 * Shared test support: where the vectors are, loading them (a missing file fails the test with
 * its name), and a builder of export bundles signed with a fresh P-256 key, for the verifier's
 * own tests.
 */

import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import {
  chainLink,
  checkpointKey,
  contentDigest,
  CSV_COLUMNS,
  entryLeafHash,
  jcs,
  jcsText,
  merkleRoot,
  ZERO_HASH,
  type CheckpointKey,
} from "../src/index.js";

/** The SDK folder (sdk/typescript), found from dist/test/. */
export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository root. */
export const REPO_DIR = resolve(SDK_DIR, "..", "..");
/** test-vectors/v1, relative to the SDK folder as ../../test-vectors/v1. */
export const VECTORS_DIR = resolve(SDK_DIR, "..", "..", "test-vectors", "v1");
export const THIRD_PARTY_DIR = resolve(SDK_DIR, "..", "..", "test-vectors", "third-party");

/** Parses a vector file; fails the calling test with the file's path when it does not exist. */
export function loadJson<T = any>(path: string): T {
  assert.ok(existsSync(path), `test vector file ${relative(REPO_DIR, path)} is missing (expected at ${path})`);
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

export function vector<T = any>(name: string): T {
  return loadJson<T>(join(VECTORS_DIR, name));
}

// ---------------------------------------------------------------------------------------------
// Export bundle builder

export interface BuiltEntry {
  seq: number;
  id: string;
  received_at: string;
  event: Record<string, unknown> | null;
  salt: string | null;
  content_digest: string;
  leaf_hash: string;
  chain_hash: string;
}

export interface BuiltBundle {
  manifest: Record<string, any>;
  data: Buffer;
  proof: Buffer;
  key: CheckpointKey;
  rows: BuiltEntry[];
  entries: BuiltEntry[];
}

export interface BundleOptions {
  treeSize: number;
  /** Which seqs are rows (default: all). */
  include?: (seq: number) => boolean;
  format?: "jsonl" | "csv";
  gzip?: boolean;
  /** Seqs whose content is erased. */
  erased?: number[];
  keyName?: string;
}

const KEY_NAME = "audit.test/log/v1";

let cachedKey: { pair: ReturnType<typeof generateKeyPairSync>; key: CheckpointKey } | undefined;

/** One P-256 key for the whole test process. */
export function testCheckpointKey(keyName = KEY_NAME): { key: CheckpointKey; signNote: (body: string) => string } {
  cachedKey ??= (() => {
    const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const spki = pair.publicKey.export({ format: "der", type: "spki" });
    return { pair, key: checkpointKey(keyName, spki) };
  })();
  const { pair } = cachedKey;
  const key = checkpointKey(keyName, cachedKey.key.publicKey);
  const signNote = (body: string): string => {
    const sig = sign("sha256", Buffer.from(body), { key: pair.privateKey, dsaEncoding: "der" });
    return `${body}\n\u2014 ${keyName} ${Buffer.concat([key.keyId, sig]).toString("base64")}\n`;
  };
  return { key, signNote };
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** A CSV data line of an entry, as the service writes it. */
export function csvLine(r: BuiltEntry): string {
  const e = r.event ?? {};
  const s = (v: unknown) => (typeof v === "string" ? v : "");
  const actor = (e.actor ?? {}) as Record<string, unknown>;
  const resource = (e.resource ?? {}) as Record<string, unknown>;
  const values = [
    String(r.seq), r.id, r.received_at, r.event === null ? "true" : "false",
    s(e.occurred_at), s(e.action), s(actor.id), s(actor.type), s(actor.name),
    s(resource.type), s(resource.id), s(resource.name), s(e.outcome), s(e.severity), s(e.source),
    s(e.request_id), s(e.session_id), e.metadata === undefined ? "" : jcsText(e.metadata),
    r.event === null ? "" : jcsText(r.event), r.salt ?? "", r.content_digest, r.leaf_hash, r.chain_hash,
  ];
  return values.map(csvField).join(",") + "\n";
}

export function jsonlLine(r: BuiltEntry): string {
  return JSON.stringify({
    seq: r.seq, id: r.id, received_at: r.received_at, erased: r.event === null, event: r.event,
    salt: r.salt, content_digest: r.content_digest, leaf_hash: r.leaf_hash, chain_hash: r.chain_hash,
  }) + "\n";
}

/** Proof nodes covering the leaves in [0, size) that are not rows, as largest aligned subtrees. */
export function proofNodes(leaves: Buffer[], rowSeqs: Set<number>): { level: number; index: number; hash: string }[] {
  const nodes: { level: number; index: number; hash: string }[] = [];
  let a = 0;
  while (a < leaves.length) {
    if (rowSeqs.has(a)) {
      a += 1;
      continue;
    }
    let b = a;
    while (b < leaves.length && !rowSeqs.has(b)) b += 1;
    while (a < b) {
      let level = 0;
      while (a % 2 ** (level + 1) === 0 && a + 2 ** (level + 1) <= b) level += 1;
      const width = 2 ** level;
      nodes.push({ level, index: a / width, hash: merkleRoot(leaves.slice(a, a + width)).toString("hex") });
      a += width;
    }
  }
  return nodes;
}

/** A complete, valid export bundle over a fresh tenant of `treeSize` entries. */
export function buildBundle(o: BundleOptions): BuiltBundle {
  const tenant = randomUUID();
  const format = o.format ?? "jsonl";
  const gzip = o.gzip ?? false;
  const include = o.include ?? (() => true);
  const { key, signNote } = testCheckpointKey(o.keyName);
  const entries: BuiltEntry[] = [];
  let chain = ZERO_HASH;
  for (let seq = 0; seq < o.treeSize; seq++) {
    const erased = o.erased?.includes(seq) ?? false;
    const event: Record<string, unknown> = {
      action: seq % 3 === 0 ? "document.delete" : "user.login",
      actor: { id: `u-${seq}`, type: "user", name: seq % 4 === 0 ? "Ann, \"the admin\"" : "Bob" },
      occurred_at: `2026-11-24T10:00:${String(seq % 60).padStart(2, "0")}.000000Z`,
      outcome: "success",
    };
    if (seq % 2 === 0) event.resource = { type: "document", id: `d-${seq}`, name: "Q3\nplan" };
    if (seq % 5 === 0) event.metadata = { reason: "cleanup", n: seq, nested: { list: [true, null, 1.5] } };
    if (seq % 7 === 0) event.severity = "high";
    const salt = randomBytes(32);
    const digest = contentDigest(salt, jcs(event)).toString("hex");
    const id = randomUUID();
    const received_at = `2026-11-24T10:01:${String(seq % 60).padStart(2, "0")}.500000Z`;
    const leaf = entryLeafHash({ tenant_id: tenant, seq, id, received_at, content_digest: digest });
    chain = chainLink(chain, leaf);
    entries.push({
      seq, id, received_at, event: erased ? null : event, salt: erased ? null : salt.toString("base64"),
      content_digest: digest, leaf_hash: leaf.toString("hex"), chain_hash: chain.toString("hex"),
    });
  }
  const rows = entries.filter((e) => include(e.seq));
  const leaves = entries.map((e) => Buffer.from(e.leaf_hash, "hex"));
  const root = merkleRoot(leaves);
  const body = `${key.keyName}/${tenant}\n${o.treeSize}\n${root.toString("base64")}\ntimestamp 1735689600\n`;
  const note = signNote(body);

  const lines = format === "csv" ? [CSV_COLUMNS.join(",") + "\n", ...rows.map(csvLine)] : rows.map(jsonlLine);
  let data: Buffer;
  if (gzip) {
    // Several gzip members, as the service writes them in parts.
    const half = Math.ceil(lines.length / 2);
    data = Buffer.concat([gzipSync(lines.slice(0, half).join("")), gzipSync(lines.slice(half).join(""))]);
  } else {
    data = Buffer.from(lines.join(""));
  }
  const nodes = proofNodes(leaves, new Set(rows.map((r) => r.seq)));
  const proof = Buffer.from(nodes.map((n) => JSON.stringify(n) + "\n").join(""));
  const id = randomUUID();
  const dataKey = `exports/${tenant}/${id}/data.${format}${gzip ? ".gz" : ""}`;
  const manifest = {
    format: "audit-log-export/v1", export_id: id, tenant_id: tenant,
    created_at: "2026-11-24T11:00:00.000000Z", completed_at: "2026-11-24T11:00:01.000000Z",
    filter: {}, data_format: format, gzip, rows: rows.length,
    first_seq: rows[0]?.seq ?? null, last_seq: rows[rows.length - 1]?.seq ?? null,
    data: { key: dataKey, sha256: sha256hex(data), bytes: data.length },
    proof: { key: `exports/${tenant}/${id}/proof.jsonl`, sha256: sha256hex(proof), bytes: proof.length, nodes: nodes.length },
    checkpoint: { tree_size: o.treeSize, root: root.toString("hex"), note },
  };
  return { manifest, data, proof, key, rows, entries };
}

export function sha256hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Re-derives the manifest's file hashes after a test changed data or proof on purpose. */
export function rehash(b: BuiltBundle): BuiltBundle {
  b.manifest.data.sha256 = sha256hex(b.data);
  b.manifest.data.bytes = b.data.length;
  b.manifest.proof.sha256 = sha256hex(b.proof);
  b.manifest.proof.bytes = b.proof.length;
  return b;
}

/** Yields `bytes` in small pieces, so lines and gzip members straddle chunk boundaries. */
export async function* chunked(bytes: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
