//! The API client the console uses: `fetch` with the signed-in credential as the bearer, JSON
//! in and out, and the service's error body (`{"error":{"code","message"}}`) or API Gateway's
//! (`{"message"}`) turned into an `ApiError` whose message a person can read.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  /** The credential is missing, unknown, revoked or expired (API Gateway's 401/403). */
  get signedOut(): boolean {
    return this.status === 401 || (this.status === 403 && this.code === "gateway_forbidden");
  }
}

export type Query = Record<string, string | undefined>;

export class Api {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  url(path: string, query: Query = {}): string {
    const base = this.base.endsWith("/") ? this.base.slice(0, -1) : this.base;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") params.set(k, v);
    const qs = params.toString();
    return `${base}${path}${qs ? `?${qs}` : ""}`;
  }

  get<T>(path: string, query: Query = {}): Promise<T> {
    return this.request<T>("GET", this.url(path, query));
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", this.url(path), body);
  }

  private async request<T>(method: string, url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (e) {
      throw new ApiError(0, "network", `the API could not be reached (${(e as Error).message})`);
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      const err = (json as { error?: { code?: string; message?: string }; message?: string } | null) ?? {};
      if (err.error) throw new ApiError(response.status, err.error.code ?? "error", err.error.message ?? text);
      const code = response.status === 403 ? "gateway_forbidden" : response.status === 401 ? "unauthorized" : "http";
      const message =
        response.status === 401
          ? "no credential was sent"
          : response.status === 403
            ? "the credential is not valid (unknown, revoked or expired)"
            : (err.message ?? `HTTP ${response.status}`);
      throw new ApiError(response.status, code, message);
    }
    return json as T;
  }
}
