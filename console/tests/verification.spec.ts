// Verification in the browser: "Verify all shown" (one POST /v1/proofs/inclusion per page, then
// the WebAssembly verifier) turns rows green, and an entry whose stored content was changed in
// PostgreSQL, as the database owner could, turns red with the reason while the others stay green.
// The console must be built with the verifier (console/verifier): a build without it fails here.
import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { ADMIN_RECORDS, SEEDED, newTenant, rows, signIn, waitForCheckpoint } from "./support";

const manifest = existsSync("dist/manifest.json") ? JSON.parse(readFileSync("dist/manifest.json", "utf8")) : {};

test("the console is built with the browser verifier", () => {
  expect(manifest.verifier, "console/dist/manifest.json names no verifier: run scripts/setup").toBeTruthy();
});

const total = ADMIN_RECORDS + SEEDED.length;

test("Verify all shown turns every row green", async ({ page, request }) => {
  const tenant = await newTenant(request, "console-verify");
  await waitForCheckpoint(request, tenant, total);
  await signIn(page, tenant);
  await page.getByRole("button", { name: "Verify all shown" }).click();
  await expect(page.locator('[data-verdict="ok"]')).toHaveCount(total);
  await expect(page.locator(".status")).toContainText(`All ${total} entries shown verified`);
});

test("an entry changed in the database turns red with the reason; the others stay green", async ({ page, request }) => {
  const owner = process.env.AUDIT_LOG_OWNER_DATABASE_URL;
  expect(owner, "AUDIT_LOG_OWNER_DATABASE_URL (the local run's ready file) is needed to change a stored row").toBeTruthy();
  const tenant = await newTenant(request, "console-tamper");
  await waitForCheckpoint(request, tenant, total);
  const seq = ADMIN_RECORDS + 2; // the seeded document.delete
  // The owner switches the append-only triggers off for its session and rewrites the content.
  execFileSync("psql", [
    owner!, "-v", "ON_ERROR_STOP=1", "-q", "-c",
    `SET session_replication_role = replica; UPDATE events SET content = replace(content, 'retention', 'by mistake') WHERE tenant_id = '${tenant.id}' AND seq = ${seq};`,
  ]);
  await signIn(page, tenant);
  await page.getByRole("button", { name: "Verify all shown" }).click();
  const bad = page.locator(`tr[data-seq="${seq}"] [data-verdict="bad"]`);
  await expect(bad).toBeVisible();
  await expect(bad).toContainText(/digest|content|leaf/i);
  await expect(page.locator('[data-verdict="ok"]')).toHaveCount(total - 1);
});
