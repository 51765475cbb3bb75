// Takes the screenshots shown in the README and docs/CONSOLE.md (1280x800, and 375 px wide).
import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { ADMIN_RECORDS, SEEDED, newTenant, rows, signIn, waitForCheckpoint } from "../tests/support";

const out = (name: string) => `../docs/console/${name}.png`;
const manifest = existsSync("dist/manifest.json") ? JSON.parse(readFileSync("dist/manifest.json", "utf8")) : {};

test("screens", async ({ page, request }) => {
  const tenant = await newTenant(request, "Acme Corp", 30);
  await page.goto("/console/");
  await expect(page.getByLabel("API key or viewer token")).toBeVisible();
  await page.screenshot({ path: out("sign-in") });

  await signIn(page, tenant);
  await page.screenshot({ path: out("events") });

  if (manifest.verifier) {
    await waitForCheckpoint(request, tenant, ADMIN_RECORDS + SEEDED.length + 30);
    await page.getByRole("button", { name: "Verify all shown" }).click();
    await expect(page.locator('[data-verdict="checking"]')).toHaveCount(0);
  }
  await page.locator(`tr[data-seq="${ADMIN_RECORDS + 2}"]`).click();
  await expect(page.locator("dialog.detail")).toBeVisible();
  await page.screenshot({ path: out("detail") });
  await page.keyboard.press("Escape");

  const owner = process.env.AUDIT_LOG_OWNER_DATABASE_URL;
  if (manifest.verifier && owner) {
    execFileSync("psql", [owner, "-v", "ON_ERROR_STOP=1", "-q", "-c", `SET session_replication_role = replica; UPDATE events SET content = replace(content, 'retention', 'by mistake') WHERE tenant_id = '${tenant.id}' AND seq = ${ADMIN_RECORDS + 2};`]);
    // The page verifies the entries it holds: load them again to see the changed row.
    await page.reload();
    await expect(rows(page).first()).toBeVisible();
    await page.getByRole("button", { name: "Verify all shown" }).click();
    await expect(page.locator('[data-verdict="bad"]')).toHaveCount(1);
    await page.locator('[data-verdict="bad"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: out("tampered") });
  }

  await page.setViewportSize({ width: 375, height: 800 });
  await page.reload();
  await expect(rows(page).first()).toBeVisible();
  await page.screenshot({ path: out("narrow") });
});
