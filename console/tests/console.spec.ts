// The console in a real browser against the local run: sign-in, filters and search, the detail
// view, keyboard use, export, the narrow layout, the page's security policy and the API docs.
import { test, expect } from "@playwright/test";
import { ADMIN_RECORDS, BASE, SEEDED, newTenant, rows, signIn, waitForCheckpoint, watchPolicy, type Tenant } from "./support";

let tenant: Tenant;
/** The seq of the seeded document.delete (after the tenant's own records). */
const DELETE_SEQ = ADMIN_RECORDS + 2;

test.beforeAll(async ({ request }) => {
  tenant = await newTenant(request, "console-ui");
});

test("signs in with an API key and lists the events newest first", async ({ page }) => {
  await signIn(page, tenant);
  // The tenant's own records (its creation and its first key's) come first in its chain.
  await expect(rows(page)).toHaveCount(ADMIN_RECORDS + SEEDED.length);
  await expect(rows(page).first()).toHaveAttribute("data-seq", String(ADMIN_RECORDS + SEEDED.length - 1));
  await expect(rows(page).last()).toHaveAttribute("data-seq", "0");
  await expect(page.getByTestId("who")).toContainText("API key");
  // The key lives in this tab's sessionStorage only.
  expect(await page.evaluate(() => JSON.stringify(localStorage).includes("alk_"))).toBe(false);
  expect(await page.evaluate(() => sessionStorage.getItem("audit-console.credential"))).toContain(tenant.key);
});

test("a wrong key is refused with a readable reason", async ({ page }) => {
  await page.goto("/console/");
  await page.getByLabel("API key or viewer token").fill("alk_000000000000000000000000_nope");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.locator("#sign-in-error")).toContainText("not valid");
});

test("filters and full-text search find the right events", async ({ page }) => {
  await signIn(page, tenant);
  await page.locator("#f-action").fill("document.");
  await page.locator("#f-action-prefix").check();
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(rows(page)).toHaveCount(2);
  await expect(page.locator('.chip[data-filter="action"]')).toContainText("document.*");
  expect(page.url()).toContain("action=document.*");

  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator("#f-outcome").selectOption("denied");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(rows(page)).toHaveCount(1);
  await expect(rows(page).first().locator(".col-actor")).toContainText("bob");

  // Removing the chip removes the filter.
  await page.getByRole("button", { name: "Remove filter Outcome" }).click();
  await expect(rows(page)).toHaveCount(ADMIN_RECORDS + SEEDED.length);

  await page.locator("#f-actor_id").fill("ada");
  await page.locator("#f-resource_type").fill("document");
  await page.locator("#f-resource_id").fill("d-17");
  await page.locator("#f-severity").selectOption("high");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(rows(page)).toHaveCount(1);
  await expect(rows(page).first()).toHaveAttribute("data-seq", String(DELETE_SEQ));

  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator("#f-source").fill("mobile");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(rows(page)).toHaveCount(1);

  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator("#f-from").fill("2026-12-01T09:10");
  await page.locator("#f-to").fill("2026-12-01T09:25");
  // The inputs are local time; the test browser runs in UTC.
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(rows(page)).toHaveCount(2);

  // Full text: indexed a moment after the append, so retry until the index has it.
  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator("#f-q").fill("aurora");
  await expect(async () => {
    await page.getByRole("button", { name: "Apply" }).click();
    await expect(rows(page)).toHaveCount(1, { timeout: 2000 });
  }).toPass({ timeout: 30_000 });
  await expect(rows(page).first().locator(".col-action")).toHaveText("invoice.pay");
});

test("loads more pages with the cursor", async ({ page, request }) => {
  const big = await newTenant(request, "console-paging", 120);
  await signIn(page, big);
  await expect(rows(page)).toHaveCount(50);
  await page.getByRole("button", { name: "Load more" }).click();
  await expect(rows(page)).toHaveCount(100);
  await page.getByRole("button", { name: "Load more" }).click();
  await expect(rows(page)).toHaveCount(127);
  await expect(page.getByRole("button", { name: "Load more" })).toBeHidden();
  const seqs = await rows(page).evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.seq)));
  expect(new Set(seqs).size).toBe(127);
  expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
});

test("opens an event and shows its details in plain words", async ({ page }) => {
  await signIn(page, tenant);
  await page.locator(`tr[data-seq="${DELETE_SEQ}"]`).click();
  const dialog = page.locator("dialog.detail");
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId("sentence")).toHaveText("ada (user) deleted document d-17 — success, 1 Dec 2026 09:12 UTC");
  await expect(dialog).toContainText("Leaf hash");
  await expect(dialog).toContainText("Chain hash");
  await expect(dialog).toContainText("retention");
  const raw = JSON.parse((await dialog.getByTestId("raw").textContent()) ?? "{}");
  expect(raw.seq).toBe(DELETE_SEQ);
  expect(raw.leaf_hash).toMatch(/^[0-9a-f]{64}$/);
  await dialog.getByRole("button", { name: "Close" }).click();
  await expect(dialog).toBeHidden();
});

test("works from the keyboard: focusable rows, Enter opens, Escape closes", async ({ page }) => {
  await signIn(page, tenant);
  await rows(page).first().focus();
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await expect(page.locator(`tr[data-seq="${DELETE_SEQ}"]`)).toBeFocused();
  // The focused row is visibly outlined.
  const outline = await page.locator(`tr[data-seq="${DELETE_SEQ}"]`).evaluate((tr) => getComputedStyle(tr).outlineStyle);
  expect(outline).not.toBe("none");
  await page.keyboard.press("Enter");
  await expect(page.locator("dialog.detail")).toBeVisible();
  await expect(page.getByTestId("sentence")).toContainText("deleted document d-17");
  await page.keyboard.press("Escape");
  await expect(page.locator("dialog.detail")).toBeHidden();
  await expect(page.locator(`tr[data-seq="${DELETE_SEQ}"]`)).toBeFocused();
  // Tab reaches the rows from the controls.
  await page.keyboard.press("ArrowUp");
  await expect(page.locator(`tr[data-seq="${DELETE_SEQ + 1}"]`)).toBeFocused();
});

test("remembers the chosen columns", async ({ page }) => {
  await signIn(page, tenant);
  await page.getByText("Columns", { exact: true }).click();
  await page.getByRole("checkbox", { name: "Source", exact: true }).check();
  await page.getByRole("checkbox", { name: "Outcome", exact: true }).uncheck();
  await expect(page.getByRole("columnheader", { name: "Source", exact: true })).toBeVisible();
  await page.reload();
  await expect(rows(page).first()).toBeVisible();
  await expect(page.getByRole("columnheader", { name: "Source", exact: true })).toBeVisible();
  await expect(page.locator("table.events th", { hasText: /^Outcome$/ })).toHaveCount(0);
  await page.evaluate(() => localStorage.removeItem("audit-console.columns"));
});

test("exports the current filter and downloads the bundle", async ({ page, request }) => {
  await waitForCheckpoint(request, tenant, SEEDED.length);
  await signIn(page, tenant, "?action=document.*");
  await expect(rows(page)).toHaveCount(2);
  await page.locator("#export-menu summary").click();
  await page.locator("#export-start").click();
  const data = page.locator('a.download[data-part="data"]');
  await expect(data).toBeVisible({ timeout: 60_000 });
  await expect(page.locator(".export-status")).toContainText("2 rows");
  for (const part of ["data", "proof", "manifest"]) {
    const href = await page.locator(`a.download[data-part="${part}"]`).getAttribute("href");
    const got = await request.get(href!);
    expect(got.ok(), part).toBe(true);
    if (part === "data") {
      const lines = (await got.text()).trim().split("\n").map((l) => JSON.parse(l));
      expect(lines.map((l) => l.event.action).sort()).toEqual(["document.create", "document.delete"]);
    }
    if (part === "manifest") expect(JSON.parse(await got.text()).checkpoint).toBeTruthy();
  }
  // The link is a plain download link to the presigned URL.
  const download = page.waitForEvent("download", { timeout: 15_000 }).catch(() => null);
  await data.click();
  const d = await download;
  if (d) expect(await d.failure()).toBeNull();
});

test("has no horizontal scroll at 375 px", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await signIn(page, tenant);
  await page.locator(".filter-box > summary").click();
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  expect(widths.scroll).toBeLessThanOrEqual(widths.client);
  await page.locator(`tr[data-seq="${DELETE_SEQ}"]`).click();
  await expect(page.locator("dialog.detail")).toBeVisible();
  const dialogFits = await page.locator("dialog.detail").evaluate((d) => d.getBoundingClientRect().right <= window.innerWidth);
  expect(dialogFits).toBe(true);
});

test("is served with a strict policy and runs under it without violations", async ({ page, request }) => {
  const response = await request.get(`${BASE}/console/`);
  const h = response.headers();
  expect(h["content-security-policy"]).toContain("default-src 'none'");
  expect(h["content-security-policy"]).toContain("script-src 'self' 'wasm-unsafe-eval'");
  expect(h["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(h["content-security-policy"]).not.toContain("unsafe-inline");
  expect(h["x-content-type-options"]).toBe("nosniff");
  expect(h["referrer-policy"]).toBe("no-referrer");
  expect(h["cache-control"]).toBe("no-cache");
  const html = await response.text();
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  expect(html).not.toMatch(/<style|style=/);
  const asset = html.match(/\/console\/assets\/app-[A-Z0-9]+\.js/)![0];
  const js = await request.get(`${BASE}${asset}`, { headers: { "accept-encoding": "br" } });
  expect(js.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
  expect(js.headers()["content-type"]).toContain("text/javascript");

  const watch = await watchPolicy(page);
  const outside: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith("data:")) outside.push(r.url());
  });
  await signIn(page, tenant);
  await page.locator(`tr[data-seq="${DELETE_SEQ}"]`).click();
  await expect(page.locator("dialog.detail")).toBeVisible();
  await page.keyboard.press("Escape");
  await page.getByText("Columns", { exact: true }).click();
  expect(await watch.violations()).toEqual([]);
  expect(watch.errors.filter((e) => /Content Security Policy|Refused/.test(e))).toEqual([]);
  expect(outside).toEqual([]);
});

test("serves interactive API docs for openapi.yaml with nothing from outside", async ({ page }) => {
  const outside: string[] = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(BASE) || url.startsWith("data:")) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const watch = await watchPolicy(page);
  await page.goto("/console/docs/");
  await expect(page.locator(".swagger-ui .info .title")).toContainText("Audit Log API");
  await expect(page.locator(".opblock-summary-path", { hasText: "/v1/events/{id}/proof" }).first()).toBeVisible();
  await page.locator(".opblock-summary", { hasText: "List events with filters" }).first().click();
  await expect(page.getByText("actor_id").first()).toBeVisible();
  expect(outside).toEqual([]);
  expect((await watch.violations()).filter((v) => !v.startsWith("img-src data"))).toEqual([]);
});

test("a function built without the console still answers its config", async ({ request }) => {
  const config = await (await request.get(`${BASE}/console/config.json`)).json();
  expect(config.api_base).toBe("/");
  expect(config.checkpoint_keys.length).toBeGreaterThan(0);
  expect(config.checkpoint_keys[0]).toMatch(/^[^+]+\+[0-9a-f]{8}\+/);
  expect(config.tail_url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v1\/tail$/);
});
