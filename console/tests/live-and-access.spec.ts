// The live tail, viewer tokens and OIDC sign-in in the browser, against the local run: events
// appended by another client appear in order and none is missing after a forced reconnect; a
// viewer token pinned to one actor sees nothing else in the table, the stream or the API, and an
// expired one is refused; a tenant's staff sign in through their identity provider (a real local
// issuer with real keys, authorization code + PKCE) and get exactly their role's controls.
import { test, expect, type APIRequestContext, type Page } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { BASE, SEEDED, ADMIN_RECORDS, newTenant, rows, signIn, type Tenant } from "./support";

async function append(request: APIRequestContext, tenant: Tenant, events: object[]): Promise<number[]> {
  const r = await request.post(`${BASE}/v1/events/batch`, { headers: { Authorization: `Bearer ${tenant.key}` }, data: { events } });
  expect(r.status()).toBe(201);
  return (await r.json()).events.map((e: { seq: number }) => e.seq);
}

const ev = (actor: string, n: number) => ({ action: "note.write", actor: { id: actor, type: "user" }, resource: { type: "note", id: `n-${n}` } });

/** Every WebSocket the page opens, so a test can drop one as a network failure would. */
async function trackSockets(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const sockets: WebSocket[] = [];
    (window as unknown as { __sockets: WebSocket[] }).__sockets = sockets;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    } as typeof WebSocket;
  });
}

async function seqsShown(page: Page): Promise<number[]> {
  return page.locator("table.events tbody tr[data-seq]").evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.seq)));
}

async function startTail(page: Page): Promise<void> {
  await page.locator("#tail-toggle").click();
  await expect(page.locator(".tail-state")).toHaveAttribute("data-state", "live");
}

test("live tail shows appended events in order, and none is missing or doubled after a forced reconnect", async ({ page, request }) => {
  const tenant = await newTenant(request, "console-tail");
  await trackSockets(page);
  await signIn(page, tenant);
  await startTail(page);
  const first = await append(request, tenant, [ev("ada", 1), ev("ada", 2), ev("ada", 3)]);
  await expect.poll(() => seqsShown(page)).toEqual(expect.arrayContaining(first));
  // Drop the connection, then append while it is down: the console reconnects with after_seq.
  await page.evaluate(() => (window as unknown as { __sockets: WebSocket[] }).__sockets.forEach((s) => s.close()));
  const during = await append(request, tenant, [ev("ada", 4), ev("ada", 5)]);
  const after = await append(request, tenant, [ev("ada", 6)]);
  const all = [...first, ...during, ...after];
  await expect.poll(() => seqsShown(page), { timeout: 30_000 }).toEqual(expect.arrayContaining(all));
  const shown = await seqsShown(page);
  expect(new Set(shown).size, "no seq is shown twice").toBe(shown.length);
  // Newest first, every seq from 0 (the tenant's creation) to the last appended, none missing.
  const total = ADMIN_RECORDS + SEEDED.length + all.length;
  expect(shown).toEqual(Array.from({ length: total }, (_, i) => total - 1 - i));
  expect(await page.evaluate(() => (window as unknown as { __sockets: WebSocket[] }).__sockets.length)).toBeGreaterThanOrEqual(2);
});

async function viewerToken(request: APIRequestContext, tenant: Tenant, body: object): Promise<string> {
  const r = await request.post(`${BASE}/v1/viewer-tokens`, { headers: { Authorization: `Bearer ${tenant.key}` }, data: body });
  expect(r.status(), await r.text()).toBe(201);
  return (await r.json()).token;
}

test("a viewer token pinned to one actor sees only that actor in the table, the stream and the API", async ({ page, request }) => {
  const tenant = await newTenant(request, "console-viewer");
  const token = await viewerToken(request, tenant, { subject: "customer-bob", filter: { actor_id: "bob" }, scopes: ["read"], expires_in: 600 });
  await page.goto(`/console/embed#token=${token}`);
  await expect(page.locator('.chip.pinned[data-filter="actor_id"]')).toBeVisible();
  await expect(rows(page)).toHaveCount(1); // the seeded events have one by bob
  await expect(page.locator("table.events tbody")).not.toContainText("ada");
  await expect(page.getByTestId("who")).toContainText("customer-bob");
  // The fragment is gone from the address once read.
  expect(new URL(page.url()).hash).toBe("");

  await startTail(page);
  const seqs = await append(request, tenant, [ev("ada", 1), ev("bob", 2), ev("ada", 3), ev("bob", 4)]);
  await expect.poll(() => seqsShown(page)).toEqual(expect.arrayContaining([seqs[1], seqs[3]]));
  // Give the others every chance to (wrongly) arrive: a later bob event arriving proves the
  // stream moved past them.
  const last = await append(request, tenant, [ev("ada", 5), ev("bob", 6)]);
  await expect.poll(() => seqsShown(page)).toContain(last[1]);
  const shown = await seqsShown(page);
  for (const seq of [seqs[0], seqs[2], last[0]]) expect(shown).not.toContain(seq);

  // The API with the same token: list, full-text search and another actor's event by id.
  const auth = { Authorization: `Bearer ${token}` };
  const listed = await (await request.get(`${BASE}/v1/events?limit=100`, { headers: auth })).json();
  expect(new Set(listed.events.map((e: { event: { actor: { id: string } } }) => e.event.actor.id))).toEqual(new Set(["bob"]));
  const adaList = await (await request.get(`${BASE}/v1/events?actor_id=ada`, { headers: auth })).json();
  expect(adaList.events).toEqual([]);
  const adminList = await (await request.get(`${BASE}/v1/events?actor_id=ada&limit=1`, { headers: { Authorization: `Bearer ${tenant.key}` } })).json();
  const adaId = adminList.events[0].id;
  expect((await request.get(`${BASE}/v1/events/${adaId}`, { headers: auth })).status()).toBe(404);
  // Read-only: it can neither write nor export.
  expect((await request.post(`${BASE}/v1/events`, { headers: auth, data: ev("bob", 9) })).status()).toBe(403);
  expect((await request.post(`${BASE}/v1/exports`, { headers: auth, data: { format: "jsonl" } })).status()).toBe(403);
});

test("an expired viewer token is refused, in the console and by the API", async ({ page, request }) => {
  test.setTimeout(150_000);
  const tenant = await newTenant(request, "console-expiry");
  const token = await viewerToken(request, tenant, { subject: "short", scopes: ["read"], expires_in: 60 });
  expect((await request.get(`${BASE}/v1/events`, { headers: { Authorization: `Bearer ${token}` } })).status()).toBe(200);
  // The shortest lifetime is a minute; wait it out (and the authorizer's 5 s decision cache).
  await page.waitForTimeout(67_000);
  expect((await request.get(`${BASE}/v1/events`, { headers: { Authorization: `Bearer ${token}` } })).status()).toBe(403);
  await page.goto(`/console/embed#token=${token}`);
  await expect(page.getByRole("alert")).toContainText(/refused|expired|sign in/i);
  await expect(rows(page)).toHaveCount(0);
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

test.describe("OIDC sign-in", () => {
  let issuer: ChildProcess | undefined;
  let issuerUrl = "";
  // One tenant registers the issuer: an (issuer, client_id) pair belongs to one tenant only.
  let tenant: Tenant;
  const binary = "../target/debug/oidc-issuer";

  test.beforeAll(async ({ request }) => {
    expect(existsSync(binary), `${binary} is built by cargo (scripts/test builds the workspace first)`).toBeTruthy();
    const port = await freePort();
    issuerUrl = `http://127.0.0.1:${port}`;
    issuer = spawn(binary, ["--port", String(port), "--origin", BASE, "--user", "ada=audit-admins", "--user", "bob=auditors", "--user", "cy=staff", "--user", "dan=nobody"], { stdio: "ignore" });
    await expect.poll(async () => {
      try {
        return (await fetch(`${issuerUrl}/.well-known/openid-configuration`)).status;
      } catch {
        return 0;
      }
    }, { timeout: 20_000 }).toBe(200);
    tenant = await newTenant(request, "console-oidc");
    await register(request, tenant);
  });
  test.afterAll(() => {
    issuer?.kill();
  });

  async function register(request: APIRequestContext, tenant: Tenant): Promise<void> {
    const r = await request.put(`${BASE}/v1/console/settings`, {
      headers: { Authorization: `Bearer ${tenant.key}`, "Idempotency-Key": `oidc-${tenant.id}` },
      data: { frame_ancestors: [], oidc: { issuer: issuerUrl, client_id: "audit-console", role_claim: "roles", roles: { "audit-admins": "admin", auditors: "auditor", staff: "viewer" } } },
    });
    expect(r.status(), await r.text()).toBe(200);
  }

  async function signInAs(page: Page, tenant: Tenant, login: string): Promise<void> {
    // The local issuer approves the user `login_hint` names at once (it has no login page).
    await page.route(`${issuerUrl}/authorize**`, (route) => route.continue({ url: `${route.request().url()}&login_hint=${login}` }));
    await page.goto(`/console/?tenant=${tenant.id}`);
    await page.locator("#oidc-sign-in").click();
  }

  for (const [login, role, admin] of [["ada", "admin", true], ["bob", "auditor", false], ["cy", "viewer", false]] as const) {
    test(`a ${role} signs in through the identity provider`, async ({ page }) => {
      await signInAs(page, tenant, login);
      await expect(rows(page).first()).toBeVisible();
      await expect(page.getByTestId("who")).toContainText(role);
      // Export is offered to the roles that carry the exports scope only.
      await expect(page.locator("#export-start")).toHaveCount(role === "viewer" ? 0 : 1);
      // The ID token is the bearer: whoami through the page's own session says the same.
      const who = await page.evaluate(async () => {
        const token = Object.values(sessionStorage).map((v) => { try { return JSON.parse(v).token; } catch { return undefined; } }).find(Boolean);
        return (await fetch("/v1/whoami", { headers: { Authorization: `Bearer ${token}` } })).json();
      });
      expect(who.kind).toBe("oidc");
      expect(who.role).toBe(role);
      expect(who.scopes.includes("admin")).toBe(admin);
    });
  }

  test("a user whose claim maps to no role is refused", async ({ page }) => {
    await signInAs(page, tenant, "dan");
    // Back on the sign-in form, told who the identity provider signed in and why there is no access.
    await expect(page.getByRole("alert")).toContainText("signed you in as dan");
    await expect(page.getByRole("alert")).toContainText("maps to none of the roles");
    await expect(page.getByLabel("API key or viewer token")).toBeVisible();
    await expect(rows(page)).toHaveCount(0);
  });
});
