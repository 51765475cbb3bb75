// Test support: a fresh tenant with known events for each test file, signed in through the UI,
// and a recorder of Content-Security-Policy violations and console errors.
import { expect, type Page, type APIRequestContext } from "@playwright/test";

export const BASE = process.env.AUDIT_LOG_URL ?? "http://127.0.0.1:3000";
const PLATFORM = process.env.AUDIT_LOG_PLATFORM_KEY ?? "";

export interface Tenant {
  id: string;
  key: string;
}

export function requireLocalRun(): void {
  if (!PLATFORM) throw new Error("AUDIT_LOG_URL and AUDIT_LOG_PLATFORM_KEY must name a local run (scripts/test sets them)");
}

/** The records a new tenant's chain starts with: its creation and its first key's. */
export const ADMIN_RECORDS = 2;

/** The events every test tenant starts with, oldest first. */
export const SEEDED = [
  { action: "user.login", actor: { id: "ada", type: "user" }, resource: { type: "session", id: "s-1" }, occurred_at: "2026-12-01T09:00:00Z", source: "web" },
  { action: "document.create", actor: { id: "ada", type: "user" }, resource: { type: "document", id: "d-17" }, occurred_at: "2026-12-01T09:05:00Z", severity: "low" },
  { action: "document.delete", actor: { id: "ada", type: "user" }, resource: { type: "document", id: "d-17" }, occurred_at: "2026-12-01T09:12:00Z", severity: "high", metadata: { reason: "retention" } },
  { action: "user.login", actor: { id: "bob", type: "user" }, resource: { type: "session", id: "s-2" }, outcome: "denied", occurred_at: "2026-12-01T09:20:00Z", source: "mobile" },
  { action: "invoice.pay", actor: { id: "carol", type: "service" }, resource: { type: "invoice", id: "inv-9" }, occurred_at: "2026-12-01T09:30:00Z", metadata: { note: "quarterly aurora payment" } },
];

export async function newTenant(request: APIRequestContext, name: string, extra = 0): Promise<Tenant> {
  requireLocalRun();
  const created = await request.post(`${BASE}/v1/tenants`, {
    headers: { Authorization: `Bearer ${PLATFORM}`, "Idempotency-Key": `console-test-${name.replace(/[^A-Za-z0-9-]/g, "-")}-${Date.now()}-${Math.random().toString(36).slice(2)}` },
    data: { name },
  });
  expect(created.status()).toBe(201);
  const body = await created.json();
  const tenant = { id: body.tenant_id, key: body.api_key.secret };
  const events = [...SEEDED];
  for (let i = 0; i < extra; i++) {
    events.push({ action: "record.read", actor: { id: `reader-${i % 7}`, type: "user" }, resource: { type: "record", id: `r-${i}` }, occurred_at: "2026-12-01T10:00:00Z", source: "batch" } as never);
  }
  for (let i = 0; i < events.length; i += 500) {
    const sent = await request.post(`${BASE}/v1/events/batch`, {
      headers: { Authorization: `Bearer ${tenant.key}`, "Idempotency-Key": `seed-${i}` },
      data: { events: events.slice(i, i + 500) },
    });
    expect(sent.status()).toBe(201);
  }
  return tenant;
}

/** Waits until the tenant has a signed checkpoint covering `size` entries (signed every 5 s). */
export async function waitForCheckpoint(request: APIRequestContext, tenant: Tenant, size: number): Promise<void> {
  await expect
    .poll(async () => {
      const r = await request.get(`${BASE}/v1/checkpoints/latest`, { headers: { Authorization: `Bearer ${tenant.key}` } });
      return r.ok() ? (await r.json()).tree_size : 0;
    }, { timeout: 30_000 })
    .toBeGreaterThanOrEqual(size);
}

/** Records CSP violations and console errors of the page, from before its first script. */
export async function watchPolicy(page: Page): Promise<{ violations: () => Promise<string[]>; errors: string[] }> {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.addInitScript(() => {
    (window as unknown as { __csp: string[] }).__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      (window as unknown as { __csp: string[] }).__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return { violations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp), errors };
}

export async function signIn(page: Page, tenant: Tenant, query = ""): Promise<void> {
  await page.goto(`/console/${query}`);
  await page.getByLabel("API key or viewer token").fill(tenant.key);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.locator("table.events tbody tr").first()).toBeVisible();
}

export function rows(page: Page) {
  return page.locator("table.events tbody tr");
}
