//! The console's entry point: reads the deployment configuration, picks the screen by path
//! (`/console/` the app, `/console/embed` the embeddable view, `/console/callback` the identity
//! provider's redirect) and by credential (sign-in until there is one).

import "./styles.css";
import { h, replace } from "./dom";
import { Api, ApiError } from "./api";
import { completeOidc, refusalReason, saveCredential, savedCredential, signOut, startOidc, takeFragmentToken, type Credential, type SignInOptions } from "./auth";
import { loadConfig, type ConsoleConfig } from "./config";
import { eventsScreen } from "./events";
import type { WhoAmI } from "./types";

const root = document.getElementById("app") as HTMLElement;
const embed = location.pathname.replace(/\/$/, "").endsWith("/console/embed");

/** Who the credential is. An API without `GET /v1/whoami` (404) still lets an API key in. */
async function whoAmI(api: Api): Promise<WhoAmI> {
  try {
    return await api.get<WhoAmI>("/v1/whoami");
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405) && e.code !== "gateway_forbidden") {
      // Check the credential on a route every reader has, so a wrong key still fails here.
      await api.get("/v1/events", { limit: "1" });
      return { tenant_id: "", scopes: null, kind: "api_key" };
    }
    throw e;
  }
}

function fail(message: string): void {
  replace(root, h("main", { class: "center" }, h("div", { class: "card" }, h("h1", {}, "Audit log"), h("p", { class: "error", role: "alert" }, message))));
}

async function signedIn(config: ConsoleConfig, credential: Credential): Promise<boolean> {
  const api = new Api(config.api_base, credential.token);
  let who: WhoAmI;
  try {
    who = await whoAmI(api);
  } catch (e) {
    return Promise.reject(e);
  }
  document.title = embed ? "Audit log" : "Audit log console";
  eventsScreen(root, {
    api,
    config,
    token: credential.token,
    who,
    embed,
    onSignOut: () => {
      signOut();
      if (embed) fail("The viewer token is no longer valid. Ask the page you came from for a new one.");
      else signInScreen(config, "You were signed out.");
    },
  });
  return true;
}

/** The sign-in form; `notice` is said in passing, `problem` (why the last sign-in failed) as an alert. */
function signInScreen(config: ConsoleConfig, notice?: string, problem?: string): void {
  const tenant = new URLSearchParams(location.search).get("tenant") ?? "";
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" }, problem ?? "");
  const key = h("input", { id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true, placeholder: "alk_…", "aria-describedby": "key-help" });
  const submit = h("button", { type: "submit", class: "button" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("label", { for: "api-key" }, "API key or viewer token"),
    key,
    h("p", { id: "key-help", class: "muted small" }, "Kept in this tab only (sessionStorage) and sent only to this service."),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    const credential: Credential = { token: key.value.trim(), source: "key" };
    try {
      await signedIn(config, credential);
      saveCredential(credential);
    } catch (e) {
      error.textContent = `Sign-in failed: ${(e as Error).message}`;
      submit.disabled = false;
      key.focus();
    }
  });
  const idp = h("div", { class: "idp" });
  replace(
    root,
    h(
      "main",
      { class: "center" },
      h("div", { class: "card" }, h("h1", { id: "sign-in-title" }, "Sign in to the audit log"), notice ? h("p", { class: "muted" }, notice) : null, idp, form, error),
    ),
  );
  key.focus();
  if (tenant) {
    fetch(`${config.api_base.replace(/\/$/, "")}/v1/console/sign-in?${new URLSearchParams({ tenant })}`, { credentials: "omit" })
      .then((r) => (r.ok ? (r.json() as Promise<SignInOptions>) : null))
      .then((options) => {
        if (!options?.oidc) return;
        const button = h("button", { type: "button", class: "button", id: "oidc-sign-in" }, "Sign in with your identity provider");
        button.addEventListener("click", () => startOidc(options).catch((e: Error) => (error.textContent = e.message)));
        replace(idp, button, h("p", { class: "muted small or" }, "or use a key"));
      })
      .catch(() => undefined);
  }
}

async function boot(): Promise<void> {
  let config: ConsoleConfig;
  try {
    config = await loadConfig();
  } catch (e) {
    return fail((e as Error).message);
  }
  if (location.pathname.replace(/\/$/, "").endsWith("/console/callback")) {
    try {
      const { credential, tenant } = await completeOidc();
      saveCredential(credential);
      history.replaceState(null, "", `/console/${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ""}`);
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  const fragment = takeFragmentToken();
  if (embed) {
    // The embedded view uses only the token it was handed, and keeps it in memory.
    if (!fragment) return fail("This view needs a viewer token in its address (#token=…).");
    return signedIn(config, { token: fragment, source: "fragment" }).then(
      () => undefined,
      (e: Error) => fail(`The viewer token was not accepted: ${e.message}`),
    );
  }
  const credential: Credential | null = fragment ? { token: fragment, source: "fragment" } : savedCredential();
  if (!credential) return signInScreen(config);
  try {
    await signedIn(config, credential);
    saveCredential(credential);
  } catch (e) {
    signOut();
    signInScreen(config, undefined, refusalReason(credential, (e as Error).message));
  }
}

boot();
