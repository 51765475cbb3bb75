/**
 * Events: the normalised content the service stores and digests (docs/FORMATS.md "Event
 * content"), the bytes a publisher signs, and client-side Ed25519 signing.
 *
 * Normalisation: `occurred_at` rewritten as UTC with exactly six fractional digits
 * (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, sub-microsecond digits truncated), `outcome` always present
 * (default `success`), absent (or null) optional members omitted, `metadata` omitted when empty.
 */

import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from "node:crypto";
import { bytesFrom } from "./encoding.js";
import { VerificationError } from "./errors.js";
import { jcs } from "./jcs.js";

export type Outcome = "success" | "failure" | "denied" | "error";
export type Severity = "low" | "medium" | "high" | "critical";

/** A publisher signature over the event's signing bytes. */
export interface EventSignature {
  key_id: string;
  alg: "ed25519";
  /** Standard base64 of the 64-byte Ed25519 signature. */
  sig: string;
}

/** An audit event as a client sends it. */
export interface AuditEvent {
  action: string;
  actor: { id: string; type?: string; name?: string; ip?: string; user_agent?: string };
  resource?: { type: string; id?: string; name?: string };
  outcome?: Outcome;
  /** RFC 3339 with an offset, or a Date. Default: the time the service receives the event. */
  occurred_at?: string | Date;
  severity?: Severity;
  source?: string;
  request_id?: string;
  session_id?: string;
  metadata?: Record<string, unknown>;
  signature?: EventSignature;
}

const EVENT_MEMBERS = ["action", "actor", "resource", "outcome", "occurred_at", "severity", "source", "request_id", "session_id", "metadata", "signature"];
const ACTOR_MEMBERS = ["id", "type", "name", "ip", "user_agent"];
const RESOURCE_MEMBERS = ["type", "id", "name"];
const OUTCOMES = ["success", "failure", "denied", "error"];
const SEVERITIES = ["low", "medium", "high", "critical"];

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

function invalid(field: string, message: string): never {
  throw new VerificationError("invalid_event", `${field}: ${message}`);
}

/** Microseconds since the Unix epoch of an RFC 3339 timestamp with offset (sub-microsecond digits truncated). */
export function parseTimestampMicros(s: string): bigint {
  const m = RFC3339.exec(s);
  if (m === null) {
    throw new VerificationError("invalid_event", `${JSON.stringify(s)} is not an RFC 3339 timestamp with offset, e.g. 2026-01-31T12:00:00Z`);
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const maxDay = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  if (month < 1 || month > 12 || day < 1 || day > maxDay || hour > 23 || minute > 59 || second > 59) {
    throw new VerificationError("invalid_event", `${JSON.stringify(s)} is not a valid date and time`);
  }
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  const fraction = (m[7] ?? "").slice(0, 6).padEnd(6, "0");
  let micros = BigInt(d.getTime()) * 1000n + BigInt(fraction);
  if (m[9] !== undefined) {
    const offHours = Number(m[10]);
    const offMinutes = Number(m[11]);
    if (offHours > 23 || offMinutes > 59) {
      throw new VerificationError("invalid_event", `${JSON.stringify(s)} has an invalid offset`);
    }
    const offset = BigInt((offHours * 60 + offMinutes) * 60) * 1_000_000n;
    micros += m[9] === "+" ? -offset : offset;
  }
  return micros;
}

/** Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export function formatTimestampMicros(micros: bigint): string {
  let frac = micros % 1_000_000n;
  let seconds = micros / 1_000_000n;
  if (frac < 0n) {
    frac += 1_000_000n;
    seconds -= 1n;
  }
  const d = new Date(Number(seconds) * 1000);
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) {
    throw new VerificationError("invalid_event", `year ${year} is outside 0000-9999`);
  }
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(year, 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${frac.toString().padStart(6, "0")}Z`;
}

/** The one textual form of a time inside hashed bytes: UTC with exactly six fractional digits. */
export function normalizeTimestamp(t: string | Date): string {
  if (t instanceof Date) {
    if (Number.isNaN(t.getTime())) throw new VerificationError("invalid_event", "occurred_at is an invalid Date");
    return formatTimestampMicros(BigInt(t.getTime()) * 1000n);
  }
  return formatTimestampMicros(parseTimestampMicros(t));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optionalString(obj: Record<string, unknown>, key: string, field: string, out: Record<string, unknown>): void {
  const v = obj[key];
  if (v === undefined || v === null) return;
  if (typeof v !== "string") invalid(field, "must be a string");
  out[key] = v;
}

function checkMembers(obj: Record<string, unknown>, allowed: string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) invalid(path === "" ? key : `${path}.${key}`, "unknown member");
  }
}

/**
 * The normalised content of an event as a JSON object, without its signature: what a publisher
 * signs. `receivedAt` supplies `occurred_at` when the event has none (default: now).
 */
export function normalizeEvent(event: AuditEvent | Record<string, unknown>, receivedAt?: string | Date): Record<string, unknown> {
  const e = event as Record<string, unknown>;
  if (!isObject(e)) invalid("$", "an event must be a JSON object");
  checkMembers(e, EVENT_MEMBERS, "");
  if (typeof e.action !== "string" || e.action.length === 0) invalid("action", "required, a non-empty string");
  if (!isObject(e.actor)) invalid("actor", "required, an object with an id");
  checkMembers(e.actor, ACTOR_MEMBERS, "actor");
  if (typeof e.actor.id !== "string" || e.actor.id.length === 0) invalid("actor.id", "required, a non-empty string");

  const out: Record<string, unknown> = { action: e.action };
  const actor: Record<string, unknown> = { id: e.actor.id };
  for (const k of ACTOR_MEMBERS.slice(1)) optionalString(e.actor, k, `actor.${k}`, actor);
  out.actor = actor;

  if (e.resource !== undefined && e.resource !== null) {
    if (!isObject(e.resource)) invalid("resource", "must be an object");
    checkMembers(e.resource, RESOURCE_MEMBERS, "resource");
    if (typeof e.resource.type !== "string") invalid("resource.type", "required when resource is present");
    const resource: Record<string, unknown> = { type: e.resource.type };
    optionalString(e.resource, "id", "resource.id", resource);
    optionalString(e.resource, "name", "resource.name", resource);
    out.resource = resource;
  }

  const outcome = e.outcome ?? "success";
  if (typeof outcome !== "string" || !OUTCOMES.includes(outcome)) invalid("outcome", `must be one of ${OUTCOMES.join(", ")}`);
  out.outcome = outcome;

  const occurred = e.occurred_at ?? receivedAt ?? new Date();
  if (typeof occurred !== "string" && !(occurred instanceof Date)) invalid("occurred_at", "must be an RFC 3339 string or a Date");
  try {
    out.occurred_at = normalizeTimestamp(occurred);
  } catch (err) {
    invalid("occurred_at", (err as Error).message);
  }

  if (e.severity !== undefined && e.severity !== null) {
    if (typeof e.severity !== "string" || !SEVERITIES.includes(e.severity)) invalid("severity", `must be one of ${SEVERITIES.join(", ")}`);
    out.severity = e.severity;
  }
  optionalString(e, "source", "source", out);
  optionalString(e, "request_id", "request_id", out);
  optionalString(e, "session_id", "session_id", out);
  if (e.metadata !== undefined && e.metadata !== null) {
    if (!isObject(e.metadata)) invalid("metadata", "must be an object");
    if (Object.keys(e.metadata).length > 0) out.metadata = e.metadata;
  }
  return out;
}

/** The stored content of an event: its normalised form with its signature (if any). */
export function eventContent(event: AuditEvent | Record<string, unknown>, receivedAt?: string | Date): Record<string, unknown> {
  const out = normalizeEvent(event, receivedAt);
  const sig = (event as Record<string, unknown>).signature;
  if (sig !== undefined && sig !== null) out.signature = sig;
  return out;
}

/** The canonical (JCS) bytes of an event's stored content. */
export function contentBytes(event: AuditEvent | Record<string, unknown>, receivedAt?: string | Date): Buffer {
  return jcs(eventContent(event, receivedAt));
}

/**
 * The bytes a publisher signs: the JCS of the normalised event without `signature`. The event
 * must carry `occurred_at` (a signed event is refused without it).
 */
export function signingBytes(event: AuditEvent | Record<string, unknown>): Buffer {
  if ((event as Record<string, unknown>).occurred_at === undefined) {
    invalid("occurred_at", "required when the event is signed (signEvent fills it in)");
  }
  return jcs(normalizeEvent(event));
}

// DER prefixes of RFC 8410 structures around a raw 32-byte Ed25519 key (key encoding, not crypto).
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** An Ed25519 private key from its 32-byte seed (bytes or base64), or a KeyObject as is. */
export function ed25519PrivateKey(seed: Uint8Array | string | KeyObject): KeyObject {
  if (typeof seed === "object" && "asymmetricKeyType" in seed) {
    if (seed.asymmetricKeyType !== "ed25519" || seed.type !== "private") {
      throw new VerificationError("public_key", "the signing key is not an Ed25519 private key");
    }
    return seed;
  }
  const raw = bytesFrom(seed as Uint8Array | string, "Ed25519 seed");
  if (raw.length !== 32) throw new VerificationError("public_key", `an Ed25519 seed is 32 bytes, not ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
}

/** An Ed25519 public key from its raw 32 bytes (bytes or base64). */
export function ed25519PublicKey(raw: Uint8Array | string): KeyObject {
  const bytes = bytesFrom(raw, "Ed25519 public key");
  if (bytes.length !== 32) throw new VerificationError("public_key", `an Ed25519 public key is 32 bytes, not ${bytes.length}`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, bytes]), format: "der", type: "spki" });
}

/** The raw 32-byte public key of an Ed25519 private key (what POST /v1/signing-keys takes, base64). */
export function ed25519RawPublicKey(privateKey: Uint8Array | string | KeyObject): Buffer {
  const spki = createPublicKey(ed25519PrivateKey(privateKey)).export({ format: "der", type: "spki" });
  return spki.subarray(ED25519_SPKI_PREFIX.length);
}

/**
 * Signs an event as a publisher: fills in `occurred_at` (now) and `outcome` (`success`) when
 * missing, normalises `occurred_at`, and returns a copy of the event with its `signature`
 * (Ed25519 over {@link signingBytes}). The input is not modified.
 */
export function signEvent(event: AuditEvent, keyId: string, privateKey: Uint8Array | string | KeyObject, now?: Date): AuditEvent {
  if (typeof keyId !== "string" || keyId.length === 0) invalid("signature.key_id", "required, a non-empty string");
  const { signature: _previous, ...rest } = event;
  const filled: AuditEvent = {
    ...rest,
    outcome: event.outcome ?? "success",
    occurred_at: normalizeTimestamp(event.occurred_at ?? now ?? new Date()),
  };
  const sig = cryptoSign(null, signingBytes(filled), ed25519PrivateKey(privateKey));
  return { ...filled, signature: { key_id: keyId, alg: "ed25519", sig: sig.toString("base64") } };
}
