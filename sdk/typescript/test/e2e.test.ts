/**
 * End to end against a real local run of the service (scripts/local). Enabled when AUDIT_LOG_URL
 * (e.g. http://127.0.0.1:3000) and AUDIT_LOG_PLATFORM_KEY are set; skipped with the reason
 * otherwise. Creates its own tenant, so it can run against a shared local run.
 */

import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  ApiError,
  AuditLogClient,
  ed25519RawPublicKey,
  signEvent,
  verifyEntryHashes,
  verifyReceipt,
  type CheckpointKey,
  type Entry,
  type VerifiedCheckpoint,
} from "../src/index.js";

const url = process.env.AUDIT_LOG_URL;
const platformKey = process.env.AUDIT_LOG_PLATFORM_KEY;
const skip = url && platformKey ? false : "set AUDIT_LOG_URL and AUDIT_LOG_PLATFORM_KEY to run the end-to-end test against a local run";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("end to end against the local run", { skip }, () => {
  it("sends signed events, queries them back, verifies a proof against a signed checkpoint and an export offline", { timeout: 300_000 }, async () => {
    const platform = new AuditLogClient({ baseUrl: url!, apiKey: platformKey! });
    const run = randomBytes(4).toString("hex");
    const tenant = await platform.createTenant(`sdk-typescript-e2e-${run}`);
    assert.match(tenant.api_key.secret, /^alk_[0-9a-f]{24}_[0-9a-f]{64}$/);
    const api = new AuditLogClient({ baseUrl: url!, apiKey: tenant.api_key.secret });

    // A publisher key, registered, and signatures required from now on.
    const { privateKey } = generateKeyPairSync("ed25519");
    const keyId = `ts-e2e-${run}`;
    await api.registerSigningKey({ key_id: keyId, name: "typescript sdk e2e", public_key: ed25519RawPublicKey(privateKey).toString("base64") });
    await api.updateSettings({ require_signatures: true });
    await assert.rejects(
      api.appendEvent({ action: "user.login", actor: { id: "unsigned" } }),
      (e: unknown) => e instanceof ApiError && e.status >= 400 && e.status < 500,
      "an unsigned event is refused once signatures are required",
    );

    const actor = `actor-${run}`;
    const make = (i: number) =>
      signEvent({ action: "user.login", actor: { id: actor, type: "user" }, resource: { type: "session", id: `s-${i}` }, metadata: { i } }, keyId, privateKey);

    const receiptKeys = (await api.receiptPublicKeys()).keys.map((k) => k.public_key);
    const one = await api.appendEvent(make(0));
    verifyReceipt(one.receipt, receiptKeys);
    const batch = await api.appendBatch([1, 2, 3, 4].map(make));
    assert.equal(batch.count, 4);
    for (const e of batch.events) verifyReceipt(e.receipt, receiptKeys);
    const lastSeq = batch.events[batch.events.length - 1]!.seq;

    // Query back across pages of 2.
    const found: Entry[] = [];
    for await (const e of api.queryEvents({ actor_id: actor, order: "asc", limit: 2 })) found.push(e);
    assert.deepEqual(found.map((e) => e.id), [one.id, ...batch.events.map((e) => e.id)]);
    for (const e of found) verifyEntryHashes(e);
    assert.deepEqual((found[2]!.event as { metadata: unknown }).metadata, { i: 2 });

    // The local run signs a checkpoint every 5 s: wait (30 s at most) for one covering every event.
    // Trusting the published keys is trust on first use; a real verifier pins them out of band.
    const keys: CheckpointKey[] = await api.fetchCheckpointKeys();
    let checkpoint: VerifiedCheckpoint | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(1000)) {
      try {
        const c = await api.latestVerifiedCheckpoint(keys);
        if (c.size > lastSeq) {
          checkpoint = c;
          break;
        }
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
      }
    }
    assert.ok(checkpoint, `no signed checkpoint covered seq ${lastSeq} within 30 s`);
    assert.equal(checkpoint.origin, `${checkpoint.signedBy.keyName}/${tenant.tenant_id}`);
    const verified = await api.verifyEvent(batch.events[2]!.id, keys);
    assert.ok(verified.checkpoint.size > batch.events[2]!.seq);

    // Exports: JSON Lines, and gzip'd CSV, each downloaded and verified offline.
    for (const request of [{ format: "jsonl" as const, gzip: false }, { format: "csv" as const, gzip: true }]) {
      const created = await api.createExport({ ...request, filter: { actor_id: actor } });
      const done = await api.waitForExport(created.id, { timeoutMs: 120_000, intervalMs: 1000 });
      const report = await api.verifyExportDownload(done, keys);
      assert.equal(report.fault, null, `${request.format} export: ${JSON.stringify(report.fault)}`);
      assert.equal(report.rows, 5);
      assert.equal(report.manifest?.tenant_id, tenant.tenant_id);
    }
  });
});
