/**
 * A small HTTP client for the audit log API, on the global `fetch`.
 *
 * Retries: network errors, 429 and 503 are retried with exponential backoff and full jitter,
 * honouring Retry-After; other 4xx and 5xx are not. Appends carry an Idempotency-Key (generated
 * per call unless given) that stays the same across the retries of that call, so a retry never
 * appends twice.
 */

import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { checkpointKey, verifyCheckpoint, type CheckpointKey, type VerifiedCheckpoint } from "./checkpoint.js";
import { decodeHash } from "./encoding.js";
import { verifyEntry, type Entry, type InclusionProof } from "./entry.js";
import { ApiError, NetworkError, VerificationError } from "./errors.js";
import type { AuditEvent } from "./event.js";
import { verifyExport, type ExportReport } from "./export.js";
import { verifyConsistency } from "./merkle.js";
import type { Receipt } from "./receipt.js";
import { parseStrictJson, StrictJsonError } from "./strict-json.js";

/** What POST /v1/events answers (and each element of a batch's `events`). */
export interface Appended {
  id: string;
  seq: number;
  leaf_hash: string;
  chain_hash: string;
  received_at: string;
  receipt: Receipt;
  /** True when the service answered a replayed Idempotency-Key with the original result. */
  replayed?: boolean;
}

export interface BatchAppended {
  count: number;
  tree_size: number;
  events: Appended[];
}

/** The filters of GET /v1/events (and of an export). */
export interface EventFilter {
  /** Exact, or a prefix followed by `*` (`user.*`). */
  action?: string;
  actor_id?: string;
  resource_type?: string;
  resource_id?: string;
  outcome?: string;
  severity?: string;
  source?: string;
  /** occurred_at >= from (RFC 3339). */
  from?: string;
  /** occurred_at < to (RFC 3339). */
  to?: string;
  /** Full-text search. */
  q?: string;
}

export interface ListOptions extends EventFilter {
  /** Page size, 1-1000. */
  limit?: number;
  order?: "asc" | "desc";
  cursor?: string;
}

export interface EventPage {
  events: Entry[];
  next_cursor: string | null;
}

export interface CheckpointResponse {
  tree_size: number;
  root: string;
  note: string;
  key_name: string;
  key_id: string;
  signed_at: string;
}

export interface CheckpointPublicKey {
  key_name: string;
  key_id: string;
  algorithm: string;
  origin: string;
  public_key: string;
  public_key_pem: string;
  verifier_key: string;
  retired?: { key_id: string; public_key: string; public_key_pem: string; verifier_key: string }[];
}

export interface ConsistencyProof {
  from: number;
  to: number;
  from_root: string;
  to_root: string;
  proof: string[];
}

export interface PresignedUrl {
  url: string;
  expires_at: string;
}

export interface ExportStatus {
  id: string;
  status: "queued" | "running" | "done" | "failed";
  format: "jsonl" | "csv";
  gzip: boolean;
  filter: EventFilter;
  rows: number | null;
  tree_size: number | null;
  created_at: string;
  updated_at: string;
  error: string | null;
  download: { data: PresignedUrl; manifest: PresignedUrl; proof: PresignedUrl } | null;
}

export interface ExportRequest {
  format?: "jsonl" | "csv";
  gzip?: boolean;
  filter?: EventFilter;
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  maxAttempts?: number;
  /** First backoff in milliseconds (default 200), doubled per attempt. */
  baseDelayMs?: number;
  /** Longest wait between attempts, Retry-After included (default 20 000). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** `alk_<24 hex>_<64 hex>`. Sent only to `baseUrl`, never to presigned download URLs. */
  apiKey: string;
  retry?: RetryOptions;
  /** Per-request timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

export interface AppendOptions {
  /** 1-255 printable ASCII characters without spaces; default a fresh UUID per call. */
  idempotencyKey?: string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Seconds of a Retry-After header (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, (t - now) / 1000);
}

/** The audit log API. */
export class AuditLogClient {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    if (typeof options.baseUrl !== "string" || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError("baseUrl must be an http(s) URL, e.g. http://127.0.0.1:3000");
    }
    if (typeof options.apiKey !== "string" || options.apiKey.length === 0) {
      throw new TypeError("apiKey is required (alk_<key id>_<secret>)");
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 4);
    this.baseDelayMs = options.retry?.baseDelayMs ?? 200;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 20_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** The key is a secret: keep it out of logs and console output. */
  toJSON(): Record<string, unknown> {
    return { baseUrl: this.baseUrl, apiKey: "[redacted]" };
  }

  private backoff(attempt: number, retryAfterSeconds: number | undefined): number {
    if (retryAfterSeconds !== undefined) return Math.min(this.maxDelayMs, retryAfterSeconds * 1000);
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
    return Math.random() * cap; // full jitter
  }

  /** Sends one request with retries and returns the parsed JSON body and the response headers. */
  async request<T>(
    method: string,
    path: string,
    options: { query?: Record<string, string | number | undefined>; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ body: T; headers: Headers; status: number }> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: "application/json", ...options.headers };
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= this.maxAttempts;
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method, headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (e) {
        if (last) {
          throw new NetworkError(`${method} ${url.pathname} failed after ${attempt + 1} attempts: ${(e as Error).message}`, { cause: e });
        }
        await sleep(this.backoff(attempt, undefined));
        continue;
      }
      if (response.ok) {
        // Answers are read strictly: entries, proofs, checkpoints and receipts in them are
        // verified, and a duplicate member or inexact number would let the verified value differ
        // from the one the service hashed. Such an answer throws a StrictJsonError (a
        // VerificationError); text that is not JSON at all is an invalid_response.
        const text = await response.text();
        let body: T;
        try {
          body = (text === "" ? null : parseStrictJson(text)) as T;
        } catch (e) {
          if (e instanceof StrictJsonError && e.code !== "invalid_json") throw e;
          throw new ApiError(response.status, "invalid_response", `${method} ${url.pathname} answered with a body that is not JSON`);
        }
        return { body, headers: response.headers, status: response.status };
      }
      const error = await apiError(response);
      if ((response.status === 429 || response.status === 503) && !last) {
        await sleep(this.backoff(attempt, error.retryAfterSeconds));
        continue;
      }
      throw error;
    }
  }

  private async append<T>(path: string, body: unknown, options: AppendOptions): Promise<{ body: T; replayed: boolean }> {
    const key = options.idempotencyKey ?? randomUUID();
    if (!IDEMPOTENCY_KEY.test(key)) {
      throw new TypeError("idempotencyKey must be 1-255 printable ASCII characters without spaces");
    }
    const r = await this.request<T>("POST", path, { body, headers: { "idempotency-key": key } });
    return { body: r.body, replayed: r.headers.get("idempotent-replayed") === "true" };
  }

  /** POST /v1/events: appends one event (sign it first with signEvent to make it a signed event). */
  async appendEvent(event: AuditEvent, options: AppendOptions = {}): Promise<Appended> {
    const r = await this.append<Appended>("/v1/events", event, options);
    return { ...r.body, replayed: r.replayed };
  }

  /** POST /v1/events/batch: appends up to 1000 events, all or nothing. */
  async appendBatch(events: AuditEvent[], options: AppendOptions = {}): Promise<BatchAppended> {
    if (!Array.isArray(events) || events.length === 0 || events.length > 1000) {
      throw new TypeError("a batch holds 1 to 1000 events");
    }
    return (await this.append<BatchAppended>("/v1/events/batch", { events }, options)).body;
  }

  /** GET /v1/events: one page. */
  async listEvents(options: ListOptions = {}): Promise<EventPage> {
    return (await this.request<EventPage>("GET", "/v1/events", { query: { ...options } })).body;
  }

  /** Every event matching the filter, across pages, as an async iterator (`for await`). */
  async *queryEvents(options: Omit<ListOptions, "cursor"> = {}): AsyncGenerator<Entry> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.listEvents({ ...options, cursor });
      yield* page.events;
      if (page.next_cursor === null || page.next_cursor === undefined || page.events.length === 0) return;
      cursor = page.next_cursor;
    }
  }

  /** GET /v1/events/{id}. */
  async getEvent(id: string): Promise<Entry> {
    return (await this.request<Entry>("GET", `/v1/events/${encodeURIComponent(id)}`)).body;
  }

  /** GET /v1/events/{id}/proof. */
  async inclusionProof(id: string, treeSize?: number): Promise<InclusionProof> {
    return (await this.request<InclusionProof>("GET", `/v1/events/${encodeURIComponent(id)}/proof`, { query: { tree_size: treeSize } })).body;
  }

  /** GET /v1/proofs/consistency. */
  async consistencyProof(from: number, to?: number): Promise<ConsistencyProof> {
    return (await this.request<ConsistencyProof>("GET", "/v1/proofs/consistency", { query: { from, to } })).body;
  }

  /** GET /v1/checkpoints/latest (unverified; see {@link latestVerifiedCheckpoint}). */
  async latestCheckpoint(): Promise<CheckpointResponse> {
    return (await this.request<CheckpointResponse>("GET", "/v1/checkpoints/latest")).body;
  }

  /** GET /v1/checkpoints/{tree_size}. */
  async checkpointAt(treeSize: number): Promise<CheckpointResponse> {
    return (await this.request<CheckpointResponse>("GET", `/v1/checkpoints/${treeSize}`)).body;
  }

  /** GET /v1/checkpoints/public-key. */
  async checkpointPublicKey(): Promise<CheckpointPublicKey> {
    return (await this.request<CheckpointPublicKey>("GET", "/v1/checkpoints/public-key")).body;
  }

  /**
   * The current and retired checkpoint keys as the service publishes them. Trusting keys fetched
   * from the service you are checking is trust on first use: pin them (or their verifier key
   * strings) out of band and pass those to the verify methods instead.
   */
  async fetchCheckpointKeys(): Promise<CheckpointKey[]> {
    const k = await this.checkpointPublicKey();
    return [checkpointKey(k.key_name, k.public_key), ...(k.retired ?? []).map((r) => checkpointKey(k.key_name, r.public_key))];
  }

  /** GET /v1/receipts/public-key: the raw receipt keys (base64), current first. */
  async receiptPublicKeys(): Promise<{ algorithm: string; keys: { key_id: string; public_key: string; created_at: string }[] }> {
    return (await this.request<{ algorithm: string; keys: { key_id: string; public_key: string; created_at: string }[] }>("GET", "/v1/receipts/public-key")).body;
  }

  /** The latest checkpoint, verified with the trusted key(s). */
  async latestVerifiedCheckpoint(trusted: CheckpointKey | CheckpointKey[]): Promise<VerifiedCheckpoint> {
    const c = await this.latestCheckpoint();
    return checkedCheckpoint(c, trusted);
  }

  /**
   * Verifies one event end to end: fetches the entry and its inclusion proof at the latest signed
   * checkpoint, verifies the checkpoint with the trusted key(s), then the entry's digest and leaf
   * hash and the audit path to the signed root. Returns the verified checkpoint; throws a
   * VerificationError when anything does not hold (an ApiError 404 when no checkpoint covers the
   * event yet).
   */
  async verifyEvent(id: string, trusted: CheckpointKey | CheckpointKey[]): Promise<{ entry: Entry; checkpoint: VerifiedCheckpoint }> {
    const entry = await this.getEvent(id);
    let proof = await this.inclusionProof(id);
    let checkpoint: VerifiedCheckpoint;
    if (proof.checkpoint !== null && proof.checkpoint !== undefined) {
      checkpoint = checkedCheckpoint(proof.checkpoint, trusted);
    } else {
      checkpoint = await this.latestVerifiedCheckpoint(trusted);
      if (checkpoint.size <= entry.seq) {
        throw new ApiError(404, "not_found", `no signed checkpoint covers seq ${entry.seq} yet (latest size ${checkpoint.size})`);
      }
      proof = await this.inclusionProof(id, checkpoint.size);
    }
    verifyEntry(entry, proof, checkpoint);
    return { entry, checkpoint };
  }

  /** Fetches and checks a consistency proof between two verified checkpoints. */
  async verifyConsistencyBetween(older: VerifiedCheckpoint, newer: VerifiedCheckpoint): Promise<void> {
    const p = await this.consistencyProof(older.size, newer.size);
    verifyConsistency(older.size, newer.size, older.root, newer.root, p.proof.map((h, i) => decodeHash(h, `proof[${i}]`)));
  }

  /** POST /v1/tenants (platform key): a tenant and its first admin key (`api_key.secret`). */
  async createTenant(name: string): Promise<{ tenant_id: string; name: string; api_key: { secret: string; key: Record<string, unknown> } }> {
    return (await this.request<{ tenant_id: string; name: string; api_key: { secret: string; key: Record<string, unknown> } }>("POST", "/v1/tenants", { body: { name } })).body;
  }

  /** POST /v1/signing-keys (admin): registers a publisher's raw Ed25519 public key (base64). */
  async registerSigningKey(key: { key_id?: string; name: string; public_key: string }): Promise<Record<string, unknown>> {
    return (await this.request<Record<string, unknown>>("POST", "/v1/signing-keys", { body: key })).body;
  }

  /** PATCH /v1/settings (admin). */
  async updateSettings(settings: { require_signatures?: boolean }): Promise<{ require_signatures: boolean }> {
    return (await this.request<{ require_signatures: boolean }>("PATCH", "/v1/settings", { body: settings })).body;
  }

  /** POST /v1/exports (scope exports). */
  async createExport(request: ExportRequest = {}): Promise<ExportStatus> {
    return (await this.request<ExportStatus>("POST", "/v1/exports", { body: { format: "jsonl", gzip: false, filter: {}, ...request } })).body;
  }

  /** GET /v1/exports/{id}. */
  async getExport(id: string): Promise<ExportStatus> {
    return (await this.request<ExportStatus>("GET", `/v1/exports/${encodeURIComponent(id)}`)).body;
  }

  /** GET /v1/exports. */
  async listExports(): Promise<ExportStatus[]> {
    return (await this.request<{ exports: ExportStatus[] }>("GET", "/v1/exports")).body.exports;
  }

  /**
   * Polls an export until it is done (returned) or failed (an ApiError with code
   * `export_failed`), or until `timeoutMs` passes (code `timeout`).
   */
  async waitForExport(id: string, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<ExportStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    let interval = options.intervalMs ?? 1000;
    for (;;) {
      const status = await this.getExport(id);
      if (status.status === "done") return status;
      if (status.status === "failed") throw new ApiError(200, "export_failed", `export ${id} failed: ${status.error ?? "no reason given"}`);
      if (Date.now() + interval > deadline) throw new ApiError(0, "timeout", `export ${id} is still ${status.status} after the timeout`);
      await sleep(interval);
      interval = Math.min(interval * 1.5, 10_000);
    }
  }

  /** GET on a presigned URL: no Authorization header (S3 would refuse it, and the key must not leak). */
  private async download(url: string, what: string): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= this.maxAttempts;
      try {
        const response = await this.fetchImpl(url, { method: "GET" });
        if (response.ok && response.body !== null) return response;
        await response.body?.cancel();
        if ((response.status === 503 || response.status === 500 || response.status === 429) && !last) {
          await sleep(this.backoff(attempt, parseRetryAfter(response.headers.get("retry-after"))));
          continue;
        }
        throw new ApiError(response.status, "download_failed", `downloading the export's ${what} failed`);
      } catch (e) {
        if (e instanceof ApiError) throw e;
        if (last) throw new NetworkError(`downloading the export's ${what} failed: ${(e as Error).message}`, { cause: e });
        await sleep(this.backoff(attempt, undefined));
      }
    }
  }

  private downloads(status: ExportStatus): NonNullable<ExportStatus["download"]> {
    if (status.status !== "done" || status.download === null || status.download === undefined) {
      throw new ApiError(0, "export_not_done", `export ${status.id} is ${status.status}; wait for it first (waitForExport)`);
    }
    return status.download;
  }

  /**
   * Streams a finished export's three files from their presigned URLs straight into the offline
   * verifier (nothing is held in memory but one line of each file).
   */
  async verifyExportDownload(status: ExportStatus, trusted: CheckpointKey | CheckpointKey[]): Promise<ExportReport> {
    const d = this.downloads(status);
    const manifest = await (await this.download(d.manifest.url, "manifest")).text();
    const data = await this.download(d.data.url, "data");
    const proof = await this.download(d.proof.url, "proof");
    return verifyExport({ manifest, data: webStream(data), proof: webStream(proof) }, trusted);
  }

  /**
   * Saves a finished export's files into `folder` (manifest.json, proof.jsonl and the data file
   * under the last part of its key), streamed to disk; verify them with verifyExportFolder.
   */
  async downloadExport(status: ExportStatus, folder: string): Promise<{ manifest: string; data: string; proof: string }> {
    const d = this.downloads(status);
    await mkdir(folder, { recursive: true });
    const manifestText = await (await this.download(d.manifest.url, "manifest")).text();
    let dataName = `data.${status.format}${status.gzip ? ".gz" : ""}`;
    try {
      const key = (parseStrictJson(manifestText) as { data?: { key?: unknown } }).data?.key;
      if (typeof key === "string" && /^[A-Za-z0-9._-]+$/.test(key.slice(key.lastIndexOf("/") + 1))) {
        dataName = key.slice(key.lastIndexOf("/") + 1);
      }
    } catch {
      // keep the default name; verification reports the bad manifest
    }
    const paths = { manifest: join(folder, "manifest.json"), data: join(folder, dataName), proof: join(folder, "proof.jsonl") };
    await saveTo(paths.data, await this.download(d.data.url, "data"));
    await saveTo(paths.proof, await this.download(d.proof.url, "proof"));
    await saveTo(paths.manifest, new Response(manifestText));
    return paths;
  }
}

function webStream(r: Response): AsyncIterable<Uint8Array> {
  return Readable.fromWeb(r.body as unknown as WebReadableStream<Uint8Array>);
}

async function saveTo(path: string, r: Response): Promise<void> {
  const partial = `${path}.partial`;
  await pipeline(webStream(r), createWriteStream(partial));
  await rename(partial, path);
}

function checkedCheckpoint(c: { tree_size: number; root: string; note: string }, trusted: CheckpointKey | CheckpointKey[]): VerifiedCheckpoint {
  const checkpoint = verifyCheckpoint(c.note, trusted);
  if (checkpoint.size !== c.tree_size || checkpoint.rootHex !== c.root) {
    throw new VerificationError("checkpoint", "the response's tree_size or root differs from its signed note");
  }
  return checkpoint;
}

async function apiError(response: Response): Promise<ApiError> {
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  let text = "";
  try {
    text = await response.text();
  } catch {
    // the body could not be read; the status says enough
  }
  let code = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "throttled", 503: "unavailable" }[response.status] ?? `http_${response.status}`;
  let message = response.statusText || "request failed";
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown }; message?: unknown };
    if (body.error !== undefined && typeof body.error.code === "string") {
      code = body.error.code;
      message = typeof body.error.message === "string" ? body.error.message : message;
    } else if (typeof body.message === "string") {
      message = body.message; // API Gateway's own {"message": "..."}
    }
  } catch {
    if (text.length > 0) message = text.slice(0, 200);
  }
  return new ApiError(response.status, code, message, retryAfter);
}
