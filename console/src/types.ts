//! The shapes the console reads from the API, as openapi.yaml describes them.

export interface AuditEvent {
  action: string;
  actor: { id: string; type?: string; name?: string; ip?: string; user_agent?: string };
  resource?: { type: string; id?: string; name?: string };
  outcome?: string;
  occurred_at?: string;
  severity?: string;
  source?: string;
  request_id?: string;
  session_id?: string;
  metadata?: Record<string, unknown>;
  signature?: { key_id: string; alg: string; sig: string };
}

export interface Entry {
  id: string;
  tenant_id: string;
  seq: number;
  received_at: string;
  event: AuditEvent | null;
  erased?: boolean;
  salt: string | null;
  content_digest: string;
  leaf_hash: string;
  chain_hash: string;
  receipt?: Record<string, unknown>;
}

export interface EventPage {
  events: Entry[];
  next_cursor: string | null;
}

/** `GET /v1/whoami`, as the console contract describes it. */
export interface WhoAmI {
  tenant_id: string;
  key_id?: string;
  scopes: string[] | null;
  kind: "api_key" | "viewer_token" | "oidc";
  subject?: string;
  role?: string;
  filter?: Record<string, string>;
  expires_at?: string;
}

export interface ExportJob {
  id: string;
  status: "queued" | "running" | "done" | "failed";
  format: string;
  gzip: boolean;
  rows?: number;
  error?: { code: string; message: string } | null;
  download?: Record<string, { url: string; expires_at: string }> | null;
}
