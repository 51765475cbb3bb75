/**
 * Offline verification of an export bundle (docs/FORMATS.md "Export bundle"): manifest, data
 * (JSON Lines or CSV, optionally multi-member gzip) and proof, checked in exactly the order the
 * spec gives, so every implementation reports a tampered bundle with the same code, row and seq:
 *
 * 1. manifest_invalid  2. checkpoint_invalid  3. per row, in order: row_malformed, row_order,
 * content_digest, leaf_hash, chain_hash  4. row_count  5. proof_invalid  6. root_mismatch
 * 7. data_sha256, proof_sha256.
 *
 * Streaming: data and proof are read line by line side by side (proof nodes fill the gaps
 * between rows in leaf order), the root is rebuilt with a stack of O(log n) subtrees, and the
 * SHA-256 of each file is computed over its raw bytes on the way; memory does not grow with the
 * file size.
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyCheckpoint, type CheckpointKey, type VerifiedCheckpoint } from "./checkpoint.js";
import { decodeBase64Strict, isHash } from "./encoding.js";
import { VerificationError } from "./errors.js";
import { chainLink, contentDigest, entryLeafHash, ZERO_HASH } from "./hash.js";
import { jcs, jcsText } from "./jcs.js";
import { fileSource, LineReadError, LineReader, type ByteSource } from "./lines.js";
import { RootBuilder } from "./merkle.js";
import { parseLenientJson, parseStrictJson } from "./strict-json.js";

/** The fault codes of "Verifying an export", in the order they are checked. */
export type ExportFaultCode =
  | "manifest_invalid"
  | "checkpoint_invalid"
  | "row_malformed"
  | "row_order"
  | "content_digest"
  | "leaf_hash"
  | "chain_hash"
  | "row_count"
  | "proof_invalid"
  | "root_mismatch"
  | "data_sha256"
  | "proof_sha256";

/** The first failure found: its code, and for row faults the 1-based row number and the row's seq. */
export interface ExportFault {
  code: ExportFaultCode;
  /** 1-based among data rows (the CSV header is not a row); null for faults not about one row. */
  row: number | null;
  /** The row's seq when it could be read; null otherwise. */
  seq: number | null;
  message: string;
}

/** The export manifest (manifest.json). */
export interface ExportManifest {
  format: "audit-log-export/v1";
  export_id: string;
  tenant_id: string;
  created_at: string;
  completed_at: string;
  filter: Record<string, unknown>;
  data_format: "jsonl" | "csv";
  gzip: boolean;
  rows: number;
  first_seq: number | null;
  last_seq: number | null;
  data: { key: string; sha256: string; bytes: number };
  proof: { key: string; sha256: string; bytes: number; nodes: number };
  checkpoint: { tree_size: number; root: string; note: string };
}

/** The outcome of {@link verifyExport}. */
export interface ExportReport {
  valid: boolean;
  /** The first failure, or null when the bundle verified. */
  fault: ExportFault | null;
  /** The parsed manifest, when it parsed. */
  manifest: ExportManifest | null;
  /** The verified checkpoint, when it verified. */
  checkpoint: VerifiedCheckpoint | null;
  /** Data rows read. */
  rows: number;
}

/** What {@link verifyExport} reads. */
export interface ExportBundle {
  /** manifest.json: its text or bytes, or the parsed object. */
  manifest: string | Uint8Array | Record<string, unknown>;
  /** The data file's bytes as stored (gzip'd when the manifest says so). */
  data: ByteSource;
  /** proof.jsonl's bytes. */
  proof: ByteSource;
}

/** The CSV columns, in order. */
export const CSV_COLUMNS = [
  "seq", "id", "received_at", "erased", "occurred_at", "action", "actor_id", "actor_type", "actor_name",
  "resource_type", "resource_id", "resource_name", "outcome", "severity", "source", "request_id",
  "session_id", "metadata", "event", "salt", "content_digest", "leaf_hash", "chain_hash",
] as const;

/**
 * The CSV copy columns and the event member each copies. A copy is the member as text (as its
 * JCS when it is not a string; `metadata` always as its JCS), empty when absent or null.
 */
const CSV_COPIES: [string, (e: Record<string, unknown>) => unknown][] = [
  ["occurred_at", (e) => e.occurred_at],
  ["action", (e) => e.action],
  ["actor_id", (e) => member(e.actor, "id")],
  ["actor_type", (e) => member(e.actor, "type")],
  ["actor_name", (e) => member(e.actor, "name")],
  ["resource_type", (e) => member(e.resource, "type")],
  ["resource_id", (e) => member(e.resource, "id")],
  ["resource_name", (e) => member(e.resource, "name")],
  ["outcome", (e) => e.outcome],
  ["severity", (e) => e.severity],
  ["source", (e) => e.source],
  ["request_id", (e) => e.request_id],
  ["session_id", (e) => e.session_id],
  ["metadata", (e) => e.metadata],
];

function copyText(column: string, value: unknown): string | null {
  if (value === undefined || value === null) return "";
  if (typeof value === "string" && column !== "metadata") return value;
  try {
    return jcsText(value);
  } catch {
    return null;
  }
}

function member(v: unknown, key: string): unknown {
  return isObject(v) ? v[key] : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The lowercase hyphenated form of a UUID written in any spelling Rust's `uuid` crate parses
 * (hyphenated, simple, braced or URN; any case), or null.
 */
function canonicalUuid(v: unknown): string | null {
  if (typeof v !== "string") return null;
  let s = v;
  if (/^urn:uuid:/i.test(s)) s = s.slice(9);
  else if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
  let hex: string;
  if (/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) hex = s.replace(/-/g, "");
  else if (/^[0-9a-fA-F]{32}$/.test(s) && s === v) hex = s;
  else return null;
  hex = hex.toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** A fault found while checking; thrown internally and turned into the report. */
class Fault extends Error {
  constructor(readonly code: ExportFaultCode, message: string, readonly row: number | null = null, readonly seq: number | null = null) {
    super(message);
  }

  toFault(): ExportFault {
    return { code: this.code, row: this.row, seq: this.seq, message: this.message };
  }
}

/** Parses and type-checks a manifest; throws a `manifest_invalid` Fault. */
function parseManifest(input: ExportBundle["manifest"]): ExportManifest {
  let m: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    try {
      m = parseStrictJson(input);
    } catch (e) {
      throw new Fault("manifest_invalid", `the manifest does not parse: ${(e as Error).message}`);
    }
  }
  const bad = (what: string): never => {
    throw new Fault("manifest_invalid", `the manifest's ${what}`);
  };
  if (!isObject(m)) bad("top level is not an object");
  const o = { ...(m as Record<string, unknown>) };
  if (o.format !== "audit-log-export/v1") bad(`format ${JSON.stringify(o.format)} is not "audit-log-export/v1"`);
  for (const k of ["export_id", "tenant_id"]) {
    const id = canonicalUuid(o[k]);
    if (id === null) bad(`${k} is missing or not a UUID`);
    o[k] = id;
  }
  for (const k of ["created_at", "completed_at"]) {
    if (typeof o[k] !== "string") bad(`${k} is missing or not a string`);
  }
  if (!isObject(o.filter)) bad("filter is missing or not an object");
  if (o.data_format !== "jsonl" && o.data_format !== "csv") bad("data_format is not \"jsonl\" or \"csv\"");
  if (typeof o.gzip !== "boolean") bad("gzip is missing or not a boolean");
  if (!isCount(o.rows)) bad("rows is missing or not a non-negative integer");
  for (const k of ["first_seq", "last_seq"]) {
    if (o[k] !== null && !isCount(o[k])) bad(`${k} is missing or not a non-negative integer or null`);
  }
  for (const k of ["data", "proof"]) {
    const f = o[k];
    if (!isObject(f)) bad(`${k} is missing or not an object`);
    const file = f as Record<string, unknown>;
    if (typeof file.key !== "string") bad(`${k}.key is missing or not a string`);
    if (!isHash(file.sha256)) bad(`${k}.sha256 is missing or not the lowercase hex of 32 bytes`);
    if (!isCount(file.bytes)) bad(`${k}.bytes is missing or not a non-negative integer`);
  }
  if (!isCount((o.proof as Record<string, unknown>).nodes)) bad("proof.nodes is missing or not a non-negative integer");
  if (!isObject(o.checkpoint)) bad("checkpoint is missing or not an object");
  const c = o.checkpoint as Record<string, unknown>;
  if (!isCount(c.tree_size)) bad("checkpoint.tree_size is missing or not a non-negative integer");
  if (!isHash(c.root)) bad("checkpoint.root is missing or not the lowercase hex of 32 bytes");
  if (typeof c.note !== "string") bad("checkpoint.note is missing or not a string");
  return o as unknown as ExportManifest;
}

/** One data row, parsed and type-checked, in the shape both formats share. */
interface Row {
  seq: number;
  id: string;
  received_at: string;
  erased: boolean;
  /** The exact content bytes that were digested (null when erased). */
  content: Buffer | null;
  salt: Buffer | null;
  content_digest: string;
  leaf_hash: string;
  chain_hash: string;
}

/** Every content digest's salt is 32 random bytes. */
const SALT_BYTES = 32;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Checks the members both formats share; `malformed(what)` throws. */
function checkRow(
  r: { seq: number; id: unknown; received_at: unknown; erased: boolean; event: unknown; salt: unknown; content_digest: unknown; leaf_hash: unknown; chain_hash: unknown },
  malformed: (what: string, seq?: number) => never,
): Omit<Row, "content"> {
  const { seq } = r;
  if (typeof r.id !== "string") malformed("id is missing or not a string", seq);
  if (typeof r.received_at !== "string") malformed("received_at is missing or not a string", seq);
  for (const k of ["content_digest", "leaf_hash", "chain_hash"] as const) {
    if (!isHash(r[k])) malformed(`${k} is missing or not the lowercase hex of 32 bytes`, seq);
  }
  let salt: Buffer | null = null;
  if (r.erased) {
    if (r.event !== null || r.salt !== null) malformed("is marked erased but carries an event or a salt", seq);
  } else {
    if (!isObject(r.event)) malformed("is not erased but its event is missing or not an object", seq);
    if (typeof r.salt !== "string") malformed("is not erased but its salt is missing or not a string", seq);
    salt = decodeBase64Strict(r.salt as string);
    if (salt === null || salt.length !== SALT_BYTES) malformed(`salt is not the standard padded base64 of ${SALT_BYTES} bytes`, seq);
  }
  return {
    seq,
    id: r.id as string,
    received_at: r.received_at as string,
    erased: r.erased,
    salt,
    content_digest: r.content_digest as string,
    leaf_hash: r.leaf_hash as string,
    chain_hash: r.chain_hash as string,
  };
}

function parseJsonlRow(line: Buffer, rowNumber: number): Row {
  const malformed = (what: string, seq?: number): never => {
    throw new Fault("row_malformed", `row ${rowNumber}: ${what}`, rowNumber, seq ?? null);
  };
  const text = decodeUtf8(line);
  if (text === null) malformed("is not UTF-8");
  let v: unknown;
  try {
    v = parseStrictJson(text as string);
  } catch (e) {
    malformed(`does not parse (${(e as Error).message})`, readableSeq(text as string));
  }
  if (!isObject(v)) malformed("is not a JSON object");
  const o = v as Record<string, unknown>;
  if (!isCount(o.seq)) malformed("seq is missing or not a non-negative integer");
  const seq = o.seq as number;
  if (typeof o.erased !== "boolean") malformed("erased is missing or not a boolean", seq);
  if (!("event" in o)) malformed("event is missing", seq);
  if (!("salt" in o)) malformed("salt is missing", seq);
  const row = checkRow({ ...(o as Record<string, unknown>), seq, erased: o.erased as boolean } as Parameters<typeof checkRow>[0], malformed);
  let content: Buffer | null = null;
  if (!row.erased) {
    try {
      content = jcs(o.event);
    } catch (e) {
      malformed(`event has no canonical form (${(e as Error).message})`, seq);
    }
  }
  return { ...row, content };
}

/**
 * The seq of a row that is JSON but not strict JSON, read the lenient way (the last of duplicate
 * members), so that the fault names the entry; undefined when even that fails.
 */
function readableSeq(text: string): number | undefined {
  try {
    const v: unknown = parseLenientJson(text);
    return isObject(v) && isCount(v.seq) ? v.seq : undefined;
  } catch {
    return undefined;
  }
}

/** Splits one CSV record (RFC 4180); returns null when a quoted field continues on the next line. */
function splitCsv(text: string): string[] | null | Error {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = "";
      i += 1;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) return null; // the quoted field goes on past this line
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i === text.length) return fields;
      if (text[i] !== ",") return new Error(`a quoted field is followed by ${JSON.stringify(text[i])}, not a comma`);
      i += 1;
    } else {
      const comma = text.indexOf(",", i);
      const value = comma < 0 ? text.slice(i) : text.slice(i, comma);
      if (value.includes('"')) return new Error("an unquoted field contains a double quote");
      fields.push(value);
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}

/** Reads one CSV record, joining lines while a quoted field spans them. Null at the end of the file. */
async function readCsvRecord(reader: LineReader, rowNumber: number | null): Promise<string[] | null> {
  const malformed = (what: string): never => {
    throw new Fault("row_malformed", rowNumber === null ? `the CSV header: ${what}` : `row ${rowNumber}: ${what}`, rowNumber);
  };
  const first = await reader.next();
  if (first === null) return null;
  let text = decodeUtf8(first);
  if (text === null) malformed("is not UTF-8");
  for (;;) {
    const fields = splitCsv(text as string);
    if (fields instanceof Error) malformed(fields.message);
    if (fields !== null) return fields as string[];
    const more = await reader.next();
    if (more === null) malformed("a quoted field is not closed before the end of the file");
    const next = decodeUtf8(more as Buffer);
    if (next === null) malformed("is not UTF-8");
    text = `${text}\n${next}`;
    if (text.length > 16 * 1024 * 1024) malformed("the record is too long");
  }
}

function parseCsvRow(fields: string[], rowNumber: number): Row {
  const malformed = (what: string, seq?: number): never => {
    throw new Fault("row_malformed", `row ${rowNumber}: ${what}`, rowNumber, seq ?? null);
  };
  if (fields.length !== CSV_COLUMNS.length) malformed(`has ${fields.length} fields, not ${CSV_COLUMNS.length}`);
  const f = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, fields[i]!])) as Record<(typeof CSV_COLUMNS)[number], string>;
  if (!/^(0|[1-9][0-9]*)$/.test(f.seq) || !Number.isSafeInteger(Number(f.seq))) malformed("seq is not a non-negative integer");
  const seq = Number(f.seq);
  if (f.erased !== "true" && f.erased !== "false") malformed("erased is not true or false", seq);
  const erased = f.erased === "true";
  if (f.id === "" || f.received_at === "") malformed("id or received_at is empty", seq);
  let event: unknown = null;
  if (f.event !== "") {
    try {
      event = parseStrictJson(f.event);
    } catch (e) {
      malformed(`event does not parse (${(e as Error).message})`, seq);
    }
  }
  const row = checkRow(
    { seq, id: f.id, received_at: f.received_at, erased, event, salt: f.salt === "" ? null : f.salt, content_digest: f.content_digest, leaf_hash: f.leaf_hash, chain_hash: f.chain_hash },
    malformed,
  );
  // Every copy column must equal the member of `event` it copies (empty when absent).
  const e = isObject(event) ? event : {};
  for (const [column, get] of CSV_COPIES) {
    const expected = copyText(column, get(e));
    const found = f[column as keyof typeof f];
    if (expected === null || found !== expected) {
      malformed(`column ${column} is ${JSON.stringify(found)}, but the event's member is ${JSON.stringify(expected)}`, seq);
    }
  }
  return { ...row, content: erased ? null : Buffer.from(f.event, "utf8") };
}

/** Parses one proof line: `{"level":L,"index":I,"hash":"<hex>"}`. */
function parseProofLine(line: Buffer, n: number): { level: number; index: bigint; hash: Buffer } {
  const bad = (what: string): never => {
    throw new Fault("proof_invalid", `proof line ${n}: ${what}`);
  };
  let v: unknown;
  try {
    v = parseStrictJson(line);
  } catch (e) {
    bad(`does not parse (${(e as Error).message})`);
  }
  if (!isObject(v)) bad("is not a JSON object");
  const o = v as Record<string, unknown>;
  if (!isCount(o.level) || o.level > 63) bad("level is missing or not an integer 0-63");
  if (!isCount(o.index)) bad("index is missing or not a non-negative integer");
  if (!isHash(o.hash)) bad("hash is missing or not the lowercase hex of 32 bytes");
  return { level: o.level as number, index: BigInt(o.index as number), hash: Buffer.from(o.hash as string, "hex") };
}

/**
 * Proof nodes, pulled on demand to cover the leaves between rows. The first problem is recorded,
 * not thrown, because row faults found later take precedence over proof faults.
 */
class ProofTiler {
  private lineNumber = 0;
  fault: Fault | null = null;

  /** Proof lines read so far. */
  get nodes(): number {
    return this.lineNumber;
  }

  constructor(private readonly reader: LineReader, private readonly root: RootBuilder) {}

  /** Covers `[root.size, end)` with proof nodes. */
  async fillTo(end: bigint): Promise<void> {
    while (this.fault === null && this.root.size < end) {
      const pos = this.root.size;
      let line: Buffer | null;
      try {
        line = await this.reader.next();
      } catch (e) {
        this.fault = new Fault("proof_invalid", `the proof file cannot be read: ${(e as Error).message}`);
        return;
      }
      this.lineNumber += 1;
      if (line === null) {
        this.fault = new Fault("proof_invalid", `leaves ${pos} to ${end - 1n} are covered by neither rows nor proof nodes`);
        return;
      }
      try {
        const node = parseProofLine(line, this.lineNumber);
        const width = 1n << BigInt(node.level);
        const start = node.index * width;
        if (start !== pos) {
          throw new Fault("proof_invalid", `proof line ${this.lineNumber} covers leaves from ${start}, but the next uncovered leaf is ${pos}`);
        }
        if (start + width > end) {
          throw new Fault("proof_invalid", `proof line ${this.lineNumber} covers leaves ${start} to ${start + width - 1n}, past leaf ${end - 1n}`);
        }
        this.root.pushNode(node.level, node.hash);
      } catch (e) {
        this.fault = e instanceof Fault ? e : new Fault("proof_invalid", `proof line ${this.lineNumber}: ${(e as Error).message}`);
      }
    }
  }

  /** After the last row: everything up to the tree size must be covered and no node left over. */
  async finish(treeSize: bigint): Promise<void> {
    await this.fillTo(treeSize);
    if (this.fault !== null) return;
    try {
      const extra = await this.reader.next();
      if (extra !== null) {
        this.fault = new Fault("proof_invalid", `the proof has more nodes than the leaves of tree size ${treeSize} that are not rows`);
      }
    } catch (e) {
      this.fault = new Fault("proof_invalid", `the proof file cannot be read: ${(e as Error).message}`);
    }
  }
}

/** Step 7 for one file: its SHA-256 and length over the bytes as stored. */
async function checkFile(code: ExportFaultCode, name: string, reader: LineReader, expected: { sha256: string; bytes: number }): Promise<void> {
  try {
    await reader.drain();
  } catch (e) {
    throw new Fault(code, `the ${name} file cannot be read to its end: ${(e as Error).message}`);
  }
  const found = reader.sha256();
  if (found !== expected.sha256 || reader.bytes !== expected.bytes) {
    throw new Fault(code, `the ${name} file has SHA-256 ${found} over ${reader.bytes} bytes, the manifest says ${expected.sha256} over ${expected.bytes} bytes`);
  }
}

/**
 * Verifies an export bundle offline with the trusted checkpoint key(s), in the order of
 * docs/FORMATS.md "Verifying an export", and reports the first failure. Never throws for a bad
 * bundle; it throws only for bad arguments (no trusted key).
 */
export async function verifyExport(bundle: ExportBundle, trusted: CheckpointKey | CheckpointKey[]): Promise<ExportReport> {
  const keys = Array.isArray(trusted) ? trusted : [trusted];
  if (keys.length === 0) throw new VerificationError("public_key", "no trusted checkpoint key was given");
  const report: ExportReport = { valid: false, fault: null, manifest: null, checkpoint: null, rows: 0 };
  const proof = new LineReader(bundle.proof, false);
  let dataReader: LineReader | null = null;
  try {
    // 1. The manifest.
    const manifest = parseManifest(bundle.manifest);
    report.manifest = manifest;

    // 2. The checkpoint: signed by a trusted key, for this tenant, with the manifest's size and root.
    let checkpoint: VerifiedCheckpoint;
    try {
      checkpoint = verifyCheckpoint(manifest.checkpoint.note, keys);
    } catch (e) {
      throw new Fault("checkpoint_invalid", `the checkpoint note does not verify: ${(e as Error).message}`);
    }
    const origin = `${checkpoint.signedBy.keyName}/${manifest.tenant_id}`;
    if (!checkpoint.signers.some((k) => checkpoint.origin === `${k.keyName}/${manifest.tenant_id}`)) {
      throw new Fault("checkpoint_invalid", `the checkpoint's origin is ${JSON.stringify(checkpoint.origin)}, not ${JSON.stringify(origin)}`);
    }
    if (checkpoint.size !== manifest.checkpoint.tree_size || checkpoint.rootHex !== manifest.checkpoint.root) {
      throw new Fault("checkpoint_invalid", "the signed checkpoint's size or root differs from the manifest's checkpoint");
    }
    report.checkpoint = checkpoint;
    const treeSize = checkpoint.size;

    // 3. Rows, in order, with the proof nodes filling the gaps between them.
    dataReader = new LineReader(bundle.data, manifest.gzip);
    const root = new RootBuilder();
    const tiler = new ProofTiler(proof, root);
    let previous: Row | null = null;
    let firstSeq: number | null = null;
    let rowNumber = 0;
    if (manifest.data_format === "csv") {
      let header: string[] | null;
      try {
        header = await readCsvRecord(dataReader, null);
      } catch (e) {
        throw e instanceof LineReadError ? new Fault("row_malformed", `the CSV header cannot be read: ${e.message}`) : e;
      }
      if (header === null || header.join(",") !== CSV_COLUMNS.join(",")) {
        throw new Fault("row_malformed", `the CSV header is not ${CSV_COLUMNS.join(",")}`);
      }
    }
    for (;;) {
      const n = rowNumber + 1;
      let row: Row;
      try {
        if (manifest.data_format === "csv") {
          const fields = await readCsvRecord(dataReader, n);
          if (fields === null) break;
          row = parseCsvRow(fields, n);
        } else {
          const line = await dataReader.next();
          if (line === null) break;
          row = parseJsonlRow(line, n);
        }
      } catch (e) {
        if (e instanceof LineReadError) throw new Fault("row_malformed", `row ${n}: ${e.message}`, n);
        throw e;
      }
      rowNumber = n;
      const seq = row.seq;
      if ((previous !== null && seq <= previous.seq) || seq >= treeSize) {
        const why = seq >= treeSize ? `is not below the tree size ${treeSize}` : `is not greater than the previous row's seq ${previous!.seq}`;
        throw new Fault("row_order", `row ${n}: seq ${seq} ${why}`, n, seq);
      }
      if (row.content !== null && contentDigest(row.salt!, row.content).toString("hex") !== row.content_digest) {
        throw new Fault("content_digest", `row ${n} (seq ${seq}): the event and salt do not hash to the content digest`, n, seq);
      }
      const leaf = entryLeafHash({ tenant_id: manifest.tenant_id, seq, id: row.id, received_at: row.received_at, content_digest: row.content_digest });
      if (leaf.toString("hex") !== row.leaf_hash) {
        throw new Fault("leaf_hash", `row ${n} (seq ${seq}): the canonical entry does not hash to the leaf hash`, n, seq);
      }
      const before = seq === 0 ? ZERO_HASH : previous !== null && seq === previous.seq + 1 ? Buffer.from(previous.chain_hash, "hex") : null;
      if (before !== null && chainLink(before, leaf).toString("hex") !== row.chain_hash) {
        throw new Fault("chain_hash", `row ${n} (seq ${seq}): the chain hash does not follow from the previous one`, n, seq);
      }
      await tiler.fillTo(BigInt(seq));
      if (tiler.fault === null) root.pushLeaf(leaf);
      firstSeq ??= seq;
      previous = row;
    }
    report.rows = rowNumber;

    // 4. The row count and the first and last seq.
    const lastSeq = previous === null ? null : previous.seq;
    if (rowNumber !== manifest.rows || firstSeq !== manifest.first_seq || lastSeq !== manifest.last_seq) {
      throw new Fault(
        "row_count",
        `the data has ${rowNumber} rows (seq ${firstSeq} to ${lastSeq}); the manifest says ${manifest.rows} (seq ${manifest.first_seq} to ${manifest.last_seq})`,
      );
    }

    // 5. The proof tiles the rest of the tree.
    await tiler.finish(BigInt(treeSize));
    if (tiler.fault !== null) throw tiler.fault;
    if (tiler.nodes !== manifest.proof.nodes) {
      throw new Fault("proof_invalid", `the proof has ${tiler.nodes} nodes, the manifest says ${manifest.proof.nodes}`);
    }

    // 6. The rebuilt root.
    if (!root.root().equals(checkpoint.root)) {
      throw new Fault("root_mismatch", `the rows and proof nodes rebuild a root other than the checkpoint's (tree size ${treeSize})`);
    }

    // 7. The files' SHA-256 over their bytes as stored.
    await checkFile("data_sha256", "data", dataReader, manifest.data);
    await checkFile("proof_sha256", "proof", proof, manifest.proof);
    report.valid = true;
    return report;
  } catch (e) {
    if (!(e instanceof Fault)) throw e;
    report.fault = e.toFault();
    return report;
  } finally {
    await dataReader?.close();
    await proof.close();
  }
}

/**
 * Verifies a bundle stored in a folder: `manifest.json`, `proof.jsonl` and the data file the
 * manifest names (by the last part of its `data.key`).
 */
export async function verifyExportFolder(folder: string, trusted: CheckpointKey | CheckpointKey[]): Promise<ExportReport> {
  const manifestText = await readFile(join(folder, "manifest.json"), "utf8");
  let dataName = "data.jsonl";
  try {
    const key = (parseStrictJson(manifestText) as { data?: { key?: unknown } }).data?.key;
    if (typeof key === "string" && key.length > 0) dataName = key.slice(key.lastIndexOf("/") + 1);
  } catch {
    // verifyExport reports the unparsable manifest
  }
  if (dataName === "" || dataName === "." || dataName === "..") dataName = "data.jsonl";
  return verifyExport({ manifest: manifestText, data: fileSource(join(folder, dataName)), proof: fileSource(join(folder, "proof.jsonl")) }, trusted);
}
