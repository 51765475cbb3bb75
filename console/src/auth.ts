//! Credentials: an API key typed in (kept in sessionStorage only, so it goes when the tab
//! closes), a viewer token handed over in the address fragment (`#token=`; the fragment never
//! reaches a server or its logs), or an OIDC ID token from the tenant's identity provider,
//! obtained with the authorization code flow and PKCE (S256) in the browser and used as the
//! bearer.

const CREDENTIAL = "audit-console.credential";
const PENDING = "audit-console.oidc-pending";

export interface Credential {
  token: string;
  /** How it was obtained: typed, from the fragment, or from the identity provider. */
  source: "key" | "fragment" | "oidc";
}

export function savedCredential(): Credential | null {
  try {
    const raw = sessionStorage.getItem(CREDENTIAL);
    return raw ? (JSON.parse(raw) as Credential) : null;
  } catch {
    return null;
  }
}

export function saveCredential(credential: Credential): void {
  sessionStorage.setItem(CREDENTIAL, JSON.stringify(credential));
}

export function signOut(): void {
  sessionStorage.removeItem(CREDENTIAL);
}

/** The `token` of the address fragment, removed from the address once read. */
export function takeFragmentToken(): string | null {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token) history.replaceState(null, "", location.pathname + location.search);
  return token;
}

/** What `GET /v1/console/sign-in?tenant=` answers: the tenant's identity provider, if any. */
export interface SignInOptions {
  tenant_id: string;
  oidc: { issuer: string; client_id: string } | null;
}

interface Pending {
  verifier: string;
  state: string;
  nonce: string;
  issuer: string;
  client_id: string;
  token_endpoint: string;
  tenant: string;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

export async function pkceChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * The redirect URI to register at the identity provider: per tenant, so the callback page is
 * served with that tenant's policy (its `connect-src` admits the issuer's token endpoint).
 */
export function redirectUri(tenant: string): string {
  return `${location.origin}/console/callback?tenant=${encodeURIComponent(tenant)}`;
}

async function discovery(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string }> {
  const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  const response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer" });
  if (!response.ok) throw new Error(`the identity provider's configuration could not be read (HTTP ${response.status})`);
  return response.json();
}

/** Starts the authorization code flow: stores the PKCE verifier, state and nonce, then leaves. */
export async function startOidc(options: SignInOptions): Promise<void> {
  if (!options.oidc) throw new Error("this tenant has no identity provider");
  const { issuer, client_id } = options.oidc;
  const meta = await discovery(issuer);
  const pending: Pending = {
    verifier: randomString(),
    state: randomString(),
    nonce: randomString(),
    issuer,
    client_id,
    token_endpoint: meta.token_endpoint,
    tenant: options.tenant_id,
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const params = new URLSearchParams({
    response_type: "code",
    client_id,
    redirect_uri: redirectUri(options.tenant_id),
    scope: "openid profile email",
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await pkceChallenge(pending.verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${meta.authorization_endpoint}?${params}`);
}

function jwtPayload(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(decodeURIComponent(escape(json)));
}

/**
 * Why the service refused a credential, in words for the person holding it. For an ID token the
 * service answers only 403 (the authorizer gives no reason), so this reads the token's own claims
 * to say who the identity provider signed in and what an administrator can change.
 */
export function refusalReason(credential: Credential, message: string): string {
  if (credential.source !== "oidc") return `Please sign in again: ${message}`;
  let claims: Record<string, unknown> = {};
  try {
    claims = jwtPayload(credential.token);
  } catch {
    return `The identity provider's token was not accepted: ${message}`;
  }
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
    return "Your sign-in at the identity provider has expired. Sign in again.";
  }
  const who = [claims.email, claims.preferred_username, claims.sub].find((v) => typeof v === "string" && v !== "") as string | undefined;
  return (
    `Your identity provider signed you in${who ? ` as ${who}` : ""}, but this audit log gives that identity no access: ` +
    "its role claim maps to none of the roles admin, auditor or viewer, or the tenant's identity provider settings " +
    "(issuer, audience) do not match the token. A tenant admin can change the role mapping in the console settings."
  );
}

/** Completes the flow on `/console/callback`: checks state, redeems the code, checks the nonce. */
export async function completeOidc(): Promise<{ credential: Credential; tenant: string }> {
  const params = new URLSearchParams(location.search);
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (!raw) throw new Error("no sign-in was started in this tab");
  const pending = JSON.parse(raw) as Pending;
  if (params.get("error")) throw new Error(`the identity provider refused: ${params.get("error_description") ?? params.get("error")}`);
  if (params.get("state") !== pending.state) throw new Error("the sign-in answer does not match the request (state)");
  const code = params.get("code");
  if (!code) throw new Error("the identity provider sent no code");
  const response = await fetch(pending.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(pending.tenant),
      client_id: pending.client_id,
      code_verifier: pending.verifier,
    }),
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) throw new Error(`the identity provider did not issue a token (HTTP ${response.status})`);
  const tokens = (await response.json()) as { id_token?: string };
  if (!tokens.id_token) throw new Error("the identity provider sent no ID token");
  const claims = jwtPayload(tokens.id_token);
  if (claims.nonce !== pending.nonce) throw new Error("the ID token was not issued for this sign-in (nonce)");
  return { credential: { token: tokens.id_token, source: "oidc" }, tenant: pending.tenant };
}
