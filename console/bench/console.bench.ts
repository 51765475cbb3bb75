// Time to first paint of the console on the local run, and verifying a page of 100 events in the
// browser: the time and the number of requests it takes.
import { test, expect } from "@playwright/test";
import { existsSync, readFileSync } from "node:fs";
import { newTenant, rows, signIn, waitForCheckpoint, ADMIN_RECORDS, SEEDED, BASE } from "../tests/support";

const manifest = existsSync("dist/manifest.json") ? JSON.parse(readFileSync("dist/manifest.json", "utf8")) : {};

test("first paint and verification of 100 events", async ({ page, request }) => {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const p = await page.context().newPage();
    await p.goto("/console/");
    await expect(p.getByLabel("API key or viewer token")).toBeVisible();
    const fcp = await p.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN);
    const fp = await p.evaluate(() => performance.getEntriesByName("first-paint")[0]?.startTime ?? NaN);
    runs.push(Number.isNaN(fcp) ? fp : fcp);
    await p.close();
  }
  runs.sort((a, b) => a - b);
  console.log(`first contentful paint of /console/ (sign-in, 5 loads, cold cache each): median ${runs[2].toFixed(0)} ms, min ${runs[0].toFixed(0)} ms, max ${runs[4].toFixed(0)} ms`);

  const tenant = await newTenant(request, "console-bench", 200);
  await signIn(page, tenant);
  await page.getByRole("button", { name: "Load more" }).click();
  await expect(rows(page)).toHaveCount(100);
  if (!manifest.verifier) {
    console.log("verification of 100 events: skipped (the console was built without the browser verifier)");
    return;
  }
  await waitForCheckpoint(request, tenant, ADMIN_RECORDS + SEEDED.length + 200);
  const requests: string[] = [];
  page.on("request", (r) => requests.push(`${r.method()} ${r.url().replace(BASE, "")}`));
  const started = Date.now();
  await page.getByRole("button", { name: "Verify all shown" }).click();
  await expect(page.locator('[data-verdict="ok"]')).toHaveCount(100, { timeout: 60_000 });
  const ms = Date.now() - started;
  console.log(`verifying 100 events in the browser: ${ms} ms, ${requests.length} request(s): ${[...new Set(requests)].join(", ")}`);
});

// Live tail latency: 1,000 single events at 50 events/s from another client; for each, the time
// from the API's 201 to its row in the browser's table, beside the append's own latency (request
// to 201) in the same run. Row arrivals are timestamped in the page with a MutationObserver on
// the same clock (the page's `performance.timeOrigin + now()`), so no polling adds to them.
test("live tail latency from the 201 to the row", async ({ page, request }) => {
  test.setTimeout(180_000);
  const count = Number(process.env.TAIL_BENCH_EVENTS ?? 1000);
  const rate = Number(process.env.TAIL_BENCH_RATE ?? 50);
  const tenant = await newTenant(request, "console-tail-bench");
  await signIn(page, tenant);
  await page.evaluate(() => {
    const seen: Record<string, number> = {};
    (window as unknown as { __seen: Record<string, number> }).__seen = seen;
    new MutationObserver((records) => {
      const at = performance.timeOrigin + performance.now();
      for (const r of records) for (const n of r.addedNodes) {
        const seq = (n as HTMLElement).dataset?.seq;
        if (seq && !(seq in seen)) seen[seq] = at;
      }
    }).observe(document.querySelector("table.events tbody")!, { childList: true });
  });
  await page.locator("#tail-toggle").click();
  await expect(page.locator(".tail-state")).toHaveAttribute("data-state", "live");
  const acked = new Map<number, number>();
  const appendMs: number[] = [];
  const started = Date.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sends.push((async () => {
      const t0 = Date.now();
      const r = await request.post(`${BASE}/v1/events`, { headers: { Authorization: `Bearer ${tenant.key}` }, data: { action: "bench.tail", actor: { id: "bench" }, resource: { type: "n", id: String(i) } } });
      const t1 = Date.now();
      expect(r.status()).toBe(201);
      acked.set((await r.json()).seq, t1);
      appendMs.push(t1 - t0);
    })());
  }
  await Promise.all(sends);
  await expect.poll(async () => page.evaluate(() => Object.keys((window as unknown as { __seen: object }).__seen).length), { timeout: 60_000 }).toBeGreaterThanOrEqual(count);
  const seen: Record<string, number> = await page.evaluate(() => (window as unknown as { __seen: Record<string, number> }).__seen);
  const tailMs = [...acked].map(([seq, at]) => seen[String(seq)] - at).sort((a, b) => a - b);
  appendMs.sort((a, b) => a - b);
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
  console.log(`live tail, ${count} events at ${rate}/s: 201 -> row in the browser p50 ${pct(tailMs, 50).toFixed(0)} ms, p99 ${pct(tailMs, 99).toFixed(0)} ms; append (request -> 201) p50 ${pct(appendMs, 50)} ms, p99 ${pct(appendMs, 99)} ms`);
});
