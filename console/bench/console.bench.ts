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
