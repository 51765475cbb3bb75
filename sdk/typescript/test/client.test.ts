/** The HTTP client against a stub server on 127.0.0.1 started by each test. */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ApiError, AuditLogClient, NetworkError, StrictJsonError, verifyExportFolder, type Entry } from "../src/index.js";
import { buildBundle, proofNodes } from "./support.js";

const API_KEY = `alk_${"a1".repeat(12)}_${"b2".repeat(32)}`;

interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage["headers"];
  body: string;
}

type Handler = (req: Seen, res: ServerResponse, n: number) => void;

/** Starts a stub server; `handler` gets each request (with its 0-based number) and answers it. */
async function stub(handler: Handler): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s = { method: req.method!, url: new URL(req.url!, "http://stub"), headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(s);
      handler(s, res, seen.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

const appended = { id: "0190c1a4-0000-7000-8000-000000000002", seq: 0, leaf_hash: "11".repeat(32), chain_hash: "22".repeat(32), received_at: "2026-11-24T10:00:00.123456Z", receipt: {} };
const event = { action: "user.login", actor: { id: "u1" } };

function client(url: string, maxAttempts = 4): AuditLogClient {
  return new AuditLogClient({ baseUrl: url, apiKey: API_KEY, retry: { maxAttempts, baseDelayMs: 5, maxDelayMs: 2000 } });
}

describe("AuditLogClient", () => {
  it("retries a 503 after its Retry-After, reusing the Idempotency-Key, and sends the key as a bearer token", async () => {
    const s = await stub((req, res, n) => {
      if (n < 2) json(res, 503, { error: { code: "unavailable", message: "try again" } }, { "retry-after": "1" });
      else json(res, 201, appended);
    });
    try {
      const started = Date.now();
      const r = await client(s.url).appendEvent(event);
      const elapsed = Date.now() - started;
      assert.equal(r.seq, 0);
      assert.equal(r.replayed, false);
      assert.equal(s.seen.length, 3);
      assert.ok(elapsed >= 1900, `waited ${elapsed} ms; two Retry-After: 1 need at least 2 s`);
      const keys = s.seen.map((x) => x.headers["idempotency-key"]);
      assert.ok(typeof keys[0] === "string" && keys[0].length > 0);
      assert.deepEqual(keys, [keys[0], keys[0], keys[0]], "one key across the retries of one call");
      assert.equal(s.seen[0]!.headers.authorization, `Bearer ${API_KEY}`);
      assert.deepEqual(JSON.parse(s.seen[0]!.body), event);
      // A second call gets a key of its own.
      await client(s.url).appendEvent(event);
      assert.notEqual(s.seen[3]!.headers["idempotency-key"], keys[0]);
    } finally {
      await s.close();
    }
  });

  it("uses a given Idempotency-Key and reports a replay", async () => {
    const s = await stub((_req, res) => json(res, 201, { count: 1, tree_size: 1, events: [appended] }, { "idempotent-replayed": "true" }));
    try {
      const c = client(s.url);
      const single = await c.appendEvent(event, { idempotencyKey: "order-42" });
      assert.equal(single.replayed, true);
      assert.equal(s.seen[0]!.headers["idempotency-key"], "order-42");
      const batch = await c.appendBatch([event, event], { idempotencyKey: "batch-7" });
      assert.equal(batch.count, 1);
      assert.equal(s.seen[1]!.url.pathname, "/v1/events/batch");
      assert.deepEqual(JSON.parse(s.seen[1]!.body), { events: [event, event] });
      await assert.rejects(c.appendEvent(event, { idempotencyKey: "has space" }), TypeError);
      await assert.rejects(c.appendBatch([]), TypeError);
    } finally {
      await s.close();
    }
  });

  it("does not retry a 400 and raises its status, code and message", async () => {
    const s = await stub((_req, res) => json(res, 400, { error: { code: "invalid_request", message: "events[3].actor.id: must not be empty" } }));
    try {
      await assert.rejects(client(s.url).appendBatch([event]), (e: unknown) => {
        assert.ok(e instanceof ApiError);
        assert.equal(e.status, 400);
        assert.equal(e.code, "invalid_request");
        assert.match(e.message, /events\[3\]\.actor\.id/);
        assert.ok(!e.message.includes(API_KEY.slice(4)), "the API key is not in the error");
        return true;
      });
      assert.equal(s.seen.length, 1);
    } finally {
      await s.close();
    }
  });

  it("retries 429 with backoff but gives up after maxAttempts; maps API Gateway's bodies to codes", async () => {
    const s = await stub((req, res) => {
      if (req.url.pathname === "/v1/checkpoints/latest") json(res, 429, { message: "Too Many Requests" });
      else json(res, 403, { message: "Forbidden" });
    });
    try {
      await assert.rejects(client(s.url, 3).latestCheckpoint(), (e: unknown) => e instanceof ApiError && e.status === 429 && e.code === "throttled");
      assert.equal(s.seen.length, 3);
      await assert.rejects(client(s.url).getEvent("x"), (e: unknown) => e instanceof ApiError && e.status === 403 && e.code === "forbidden" && /Forbidden/.test(e.message));
      assert.equal(s.seen.length, 4, "403 is not retried");
    } finally {
      await s.close();
    }
  });

  it("retries a dropped connection, then raises a NetworkError when the server stays away", async () => {
    const s = await stub((_req, res, n) => {
      if (n === 0) res.socket?.destroy();
      else json(res, 200, { events: [], next_cursor: null });
    });
    try {
      const page = await client(s.url).listEvents({ action: "user.*" });
      assert.deepEqual(page.events, []);
      assert.equal(s.seen.length, 2);
      assert.equal(s.seen[1]!.url.searchParams.get("action"), "user.*");
    } finally {
      await s.close();
    }
    await assert.rejects(client(s.url, 2).latestCheckpoint(), NetworkError);
  });

  it("iterates every page of a query, passing next_cursor back with the same filters and order", async () => {
    const all = Array.from({ length: 7 }, (_, i) => ({ id: `e${i}`, seq: i }) as unknown as Entry);
    const s = await stub((req, res) => {
      const cursor = req.url.searchParams.get("cursor");
      const start = cursor === null ? 0 : Number(cursor.slice(1));
      const limit = Number(req.url.searchParams.get("limit"));
      const events = all.slice(start, start + limit);
      json(res, 200, { events, next_cursor: start + limit < all.length ? `c${start + limit}` : null });
    });
    try {
      const got: Entry[] = [];
      for await (const e of client(s.url).queryEvents({ actor_id: "u1", order: "asc", limit: 3 })) got.push(e);
      assert.deepEqual(got.map((e) => e.seq), [0, 1, 2, 3, 4, 5, 6]);
      assert.equal(s.seen.length, 3);
      assert.deepEqual(s.seen.map((x) => x.url.searchParams.get("cursor")), [null, "c3", "c6"]);
      for (const x of s.seen) {
        assert.equal(x.url.searchParams.get("order"), "asc");
        assert.equal(x.url.searchParams.get("actor_id"), "u1");
      }
    } finally {
      await s.close();
    }
  });

  it("verifies an event: entry, inclusion proof and the checkpoint it names", async () => {
    const b = buildBundle({ treeSize: 5 });
    const e = b.entries[3]!;
    const leaves = b.entries.map((x) => Buffer.from(x.leaf_hash, "hex"));
    // The audit path of leaf 3 of 5: leaf 2, node [0,2), leaf 4.
    const nodes = proofNodes(leaves, new Set([3]));
    const path = [nodes[1]!.hash, nodes[0]!.hash, nodes[2]!.hash];
    const checkpoint = { tree_size: 5, root: b.manifest.checkpoint.root, note: b.manifest.checkpoint.note, key_name: b.key.keyName, key_id: b.key.keyId.toString("hex"), signed_at: "2026-11-24T10:00:00Z" };
    const s = await stub((req, res) => {
      if (req.url.pathname.endsWith("/proof")) {
        json(res, 200, { event_id: e.id, leaf_index: 3, tree_size: 5, leaf_hash: e.leaf_hash, root: checkpoint.root, audit_path: path, checkpoint });
      } else {
        json(res, 200, { ...e, tenant_id: b.manifest.tenant_id, erased: false });
      }
    });
    try {
      const r = await client(s.url).verifyEvent(e.id, b.key);
      assert.equal(r.checkpoint.size, 5);
      assert.equal(r.entry.seq, 3);
    } finally {
      await s.close();
    }
  });

  it("refuses to verify an entry whose JSON text has a duplicate member", async () => {
    const b = buildBundle({ treeSize: 2 });
    const e = b.entries[1]!;
    const leaves = b.entries.map((x) => Buffer.from(x.leaf_hash, "hex"));
    const checkpoint = { tree_size: 2, root: b.manifest.checkpoint.root, note: b.manifest.checkpoint.note, key_name: b.key.keyName, key_id: b.key.keyId.toString("hex"), signed_at: "2026-11-24T10:00:00Z" };
    const proof = { event_id: e.id, leaf_index: 1, tree_size: 2, leaf_hash: e.leaf_hash, root: checkpoint.root, audit_path: [leaves[0]!.toString("hex")], checkpoint };
    // A forged "action" before the genuine one: JSON.parse (last wins) would verify this text,
    // while a reader keeping the first member shows the forged action.
    const genuine = JSON.stringify({ ...e, tenant_id: b.manifest.tenant_id, erased: false });
    const forged = genuine.replace('"event":{"action":"user.login",', '"event":{"action":"document.delete","action":"user.login",');
    assert.notEqual(forged, genuine);
    const s = await stub((req, res) => {
      if (req.url.pathname.endsWith("/proof")) {
        json(res, 200, proof);
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(forged);
      }
    });
    try {
      await assert.rejects(
        client(s.url).verifyEvent(e.id, b.key),
        (err: unknown) => err instanceof StrictJsonError && err.code === "duplicate_member" && err.path === "event.action",
      );
    } finally {
      await s.close();
    }
  });

  it("answers that are not JSON are an invalid_response ApiError", async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"tree_size": 2');
    });
    try {
      await assert.rejects(client(s.url).latestCheckpoint(), (err: unknown) => err instanceof ApiError && err.code === "invalid_response");
    } finally {
      await s.close();
    }
  });

  it("requests an export, polls it until done, and downloads and verifies it without the API key", async () => {
    const b = buildBundle({ treeSize: 9, format: "csv", gzip: true, include: (seq) => seq % 2 === 0 });
    let polls = 0;
    const s = await stub((req, res) => {
      const p = req.url.pathname;
      if (p === "/v1/exports" && req.method === "POST") return json(res, 202, { id: "x1", status: "queued" });
      if (p === "/v1/exports/x1") {
        polls += 1;
        const done = polls >= 3;
        const link = (name: string) => ({ url: `http://${req.headers.host}/bucket/${name}?X-Amz-Signature=abc`, expires_at: "2026-11-24T12:00:00Z" });
        return json(res, 200, {
          id: "x1", status: done ? "done" : polls === 1 ? "queued" : "running", format: "csv", gzip: true, filter: {}, rows: 5, tree_size: 9,
          created_at: "t", updated_at: "t", error: null,
          download: done ? { data: link("data.csv.gz"), manifest: link("manifest.json"), proof: link("proof.jsonl") } : null,
        });
      }
      const files: Record<string, Buffer> = { "/bucket/data.csv.gz": b.data, "/bucket/manifest.json": Buffer.from(JSON.stringify(b.manifest)), "/bucket/proof.jsonl": b.proof };
      const f = files[p];
      if (f === undefined) return json(res, 404, { error: { code: "not_found", message: p } });
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(f);
    });
    const dir = mkdtempSync(join(tmpdir(), "export-dl-"));
    try {
      const c = client(s.url);
      const created = await c.createExport({ format: "csv", gzip: true, filter: { action: "user.*" } });
      assert.deepEqual(JSON.parse(s.seen[0]!.body), { format: "csv", gzip: true, filter: { action: "user.*" } });
      const done = await c.waitForExport(created.id, { intervalMs: 10, timeoutMs: 5000 });
      assert.equal(done.status, "done");
      const report = await c.verifyExportDownload(done, b.key);
      assert.equal(report.fault, null);
      assert.equal(report.rows, 5);
      const paths = await c.downloadExport(done, dir);
      assert.equal(paths.data, join(dir, "data.csv.gz"));
      assert.ok(readFileSync(paths.data).equals(b.data));
      assert.equal((await verifyExportFolder(dir, b.key)).valid, true);
      const downloads = s.seen.filter((x) => x.url.pathname.startsWith("/bucket/"));
      assert.equal(downloads.length, 6);
      for (const d of downloads) assert.equal(d.headers.authorization, undefined, "no API key on presigned URLs");
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await s.close();
    }
  });

  it("stops waiting for an export that failed or outlives the timeout", async () => {
    const s = await stub((req, res) => json(res, 200, { id: req.url.pathname.slice(12), status: req.url.pathname.endsWith("bad") ? "failed" : "running", error: "disk full", download: null }));
    try {
      const c = client(s.url);
      await assert.rejects(c.waitForExport("bad", { intervalMs: 5 }), (e: unknown) => e instanceof ApiError && e.code === "export_failed" && /disk full/.test(e.message));
      await assert.rejects(c.waitForExport("slow", { intervalMs: 20, timeoutMs: 100 }), (e: unknown) => e instanceof ApiError && e.code === "timeout");
    } finally {
      await s.close();
    }
  });

  it("keeps the API key out of its JSON form", () => {
    assert.ok(!JSON.stringify(client("http://127.0.0.1:1")).includes(API_KEY));
    assert.throws(() => new AuditLogClient({ baseUrl: "127.0.0.1:3000", apiKey: API_KEY }), TypeError);
  });
});
