/**
 * The console's verifier: the log's own Rust chain core compiled to WebAssembly
 * (console/verifier, built by console/verifier/build.sh), so the browser checks entries, proofs
 * and checkpoints with exactly the code the service, the CLI and the SDKs use.
 *
 * The module exports a small C ABI (no generated bindings): `alloc(len)`, `dealloc(ptr, len)`,
 * and `verify_page(ptr, len)` / `run_vectors(ptr, len)`, which read a JSON input buffer and
 * return a buffer holding a 4-byte little-endian length and that many bytes of JSON.
 *
 * Only web-platform APIs are used (WebAssembly, fetch, TextEncoder/TextDecoder), so this runs
 * unchanged in a browser and under Node's WebAssembly.
 *
 * Signatures are checked against the pinned keys passed in `trusted` only (the console's
 * config.json), never against a key from the response being verified.
 */

/** A stored entry, as GET /v1/events returns each item. */
export interface Entry {
  id: string;
  tenant_id: string;
  seq: number;
  received_at: string;
  event: Record<string, unknown> | null;
  erased: boolean;
  salt: string | null;
  content_digest: string;
  leaf_hash: string;
  chain_hash: string;
}

/** A signed checkpoint, as GET /v1/checkpoints/latest returns it. */
export interface CheckpointView {
  tree_size: number;
  root: string;
  note: string;
  key_name: string;
  key_id: string;
  signed_at: string;
}

/** The answer of POST /v1/proofs/inclusion. */
export interface BatchProof {
  tree_size: number;
  checkpoint: CheckpointView;
  proofs: { id: string; seq: number; leaf_index: number; audit_path: string[] }[];
  /** Ids the service could not prove, each with why (`not_found`, `not_signed_yet`). */
  missing?: { id: string; code: string; message: string; seq?: number }[];
  /** As GET /v1/checkpoints/{n}/global-proof; null until the checkpoint is anchored. */
  global_proof?: {
    checkpoint: CheckpointView;
    entry: Entry;
    leaf_index: number;
    audit_path: string[];
    global_checkpoint: CheckpointView;
    anchor_key: string;
  } | null;
}

/** The pinned keys: verifier key strings, as GET /v1/checkpoints/public-key shows `verifier_key`. */
export interface TrustedKeys {
  checkpoint_keys: string[];
  global_log_keys: string[];
}

export interface PageInput {
  entries: Entry[];
  batch: BatchProof;
  trusted: TrustedKeys;
}

/**
 * One step's outcome: `ok`, `failed`, `not_checked` (a step it depends on failed), `pending`
 * (inclusion: the entry is newer than the signed checkpoint) or `absent` (global: the
 * checkpoint is not anchored in the global log yet).
 */
export type Step = "ok" | "failed" | "not_checked" | "pending" | "absent";

export interface EntryResult {
  id: string;
  seq: number | null;
  /** Every step passed (`global` may be `absent`). */
  ok: boolean;
  steps: { leaf: Step; inclusion: Step; checkpoint: Step; global: Step };
  /** What failed first, in plain words. */
  reason?: string;
}

export interface PageReport {
  /** One per input entry, in input order. */
  results: EntryResult[];
  checkpoint: {
    ok: boolean;
    tree_size: number | null;
    root: string | null;
    origin: string | null;
    key_name: string | null;
    reason?: string;
  };
  global: { status: Step; tree_size: number | null; reason?: string };
}

export interface VectorCase {
  file: string;
  name: string;
  pass: boolean;
  message?: string;
}

export interface VectorReport {
  files: string[];
  cases: VectorCase[];
  passed: number;
  failed: number;
}

/** The vector files `runVectors` knows (test-vectors/v1/<name>). */
export const VECTOR_FILES = [
  "canonical.json",
  "strict-json.json",
  "events.json",
  "entries.json",
  "merkle.json",
  "checkpoints.json",
  "receipts.json",
] as const;

/** A refused input (`code` as the service's error codes: `invalid_json`, `invalid_input`). */
export class VerifierError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "VerifierError";
  }
}

export interface Verifier {
  /** Verifies a page of entries and its batch proof against the pinned keys. */
  verifyPage(input: PageInput | string): PageReport;
  /**
   * Runs the shared test vectors: `files` maps a file name (see VECTOR_FILES) to its text (best:
   * exactly as fetched) or its parsed JSON.
   */
  runVectors(files: Record<string, string | unknown>): VectorReport;
}

interface Exports {
  memory: WebAssembly.Memory;
  alloc(len: number): number;
  dealloc(ptr: number, len: number): void;
  verify_page(ptr: number, len: number): number;
  run_vectors(ptr: number, len: number): number;
}

/**
 * Loads the verifier from the .wasm bytes, a compiled module, a Response, or a URL to fetch
 * (e.g. "/console/console_verifier.wasm").
 */
export async function loadVerifier(
  source: BufferSource | WebAssembly.Module | Response | string | URL,
): Promise<Verifier> {
  let module: WebAssembly.Module;
  if (source instanceof WebAssembly.Module) {
    module = source;
  } else {
    let bytes: BufferSource;
    if (typeof source === "string" || source instanceof URL) {
      const response = await fetch(source);
      if (!response.ok) throw new VerifierError("load", `fetching the verifier: HTTP ${response.status}`);
      bytes = await response.arrayBuffer();
    } else if (typeof Response !== "undefined" && source instanceof Response) {
      bytes = await source.arrayBuffer();
    } else {
      bytes = source as BufferSource;
    }
    module = await WebAssembly.compile(bytes);
  }
  // The module imports nothing: no clock, no randomness, no I/O.
  const instance = await WebAssembly.instantiate(module, {});
  return bind(instance.exports as unknown as Exports);
}

function bind(wasm: Exports): Verifier {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: true });

  function call(fn: (ptr: number, len: number) => number, input: string): unknown {
    const bytes = encoder.encode(input);
    const inPtr = wasm.alloc(bytes.length);
    // The memory may grow on any call, so its buffer is read afresh each time.
    new Uint8Array(wasm.memory.buffer, inPtr, bytes.length).set(bytes);
    let outPtr: number;
    try {
      outPtr = fn(inPtr, bytes.length);
    } finally {
      wasm.dealloc(inPtr, bytes.length);
    }
    const length = new DataView(wasm.memory.buffer).getUint32(outPtr, true);
    const text = decoder.decode(new Uint8Array(wasm.memory.buffer, outPtr + 4, length));
    wasm.dealloc(outPtr, 4 + length);
    const answer = JSON.parse(text) as { error?: { code: string; message: string } };
    if (answer.error) throw new VerifierError(answer.error.code, answer.error.message);
    return answer;
  }

  return {
    verifyPage(input) {
      const text = typeof input === "string" ? input : JSON.stringify(input);
      return call(wasm.verify_page, text) as PageReport;
    },
    runVectors(files) {
      // File texts are passed as JSON strings, so the module reads every number and escape as
      // the file spells it.
      const text = `{"files":{${Object.entries(files)
        .map(([name, content]) => `${JSON.stringify(name)}:${JSON.stringify(content)}`)
        .join(",")}}}`;
      return call(wasm.run_vectors, text) as VectorReport;
    },
  };
}
