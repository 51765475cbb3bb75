//! The one-line, plain-words reading of an event shown in its detail view, e.g.
//! "ada (user) deleted document d-17 — success, 3 Dec 2026 09:12 UTC".

import type { AuditEvent } from "./types";

const IRREGULAR: Record<string, string> = {
  login: "logged in",
  logon: "logged on",
  signin: "signed in",
  "sign_in": "signed in",
  logout: "logged out",
  signout: "signed out",
  "sign_out": "signed out",
  read: "read",
  get: "read",
  view: "viewed",
  send: "sent",
  run: "ran",
  write: "wrote",
  set: "set",
  reset: "reset",
  put: "put",
  upload: "uploaded",
  download: "downloaded",
  grant: "granted",
  revoke: "revoked",
  begin: "began",
  make: "made",
  "2fa": "used two-factor authentication",
};

/** The past tense of an action's verb (its last dotted segment): "delete" -> "deleted". */
export function pastTense(verb: string): string {
  const v = verb.toLowerCase();
  if (IRREGULAR[v]) return IRREGULAR[v];
  if (/(ed|en)$/.test(v)) return v;
  if (v.endsWith("e")) return `${v}d`;
  if (/[^aeiou]y$/.test(v)) return `${v.slice(0, -1)}ied`;
  if (/^[a-z]+$/.test(v)) return `${v}ed`;
  return `did ${v}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "3 Dec 2026 09:12 UTC" for an RFC 3339 time. */
export function plainTime(rfc3339: string | undefined): string {
  if (!rfc3339) return "at an unknown time";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`;
}

export function actorLabel(event: AuditEvent): string {
  const name = event.actor.name || event.actor.id;
  return event.actor.type ? `${name} (${event.actor.type})` : name;
}

export function resourceLabel(event: AuditEvent): string {
  if (!event.resource) return "";
  return [event.resource.type, event.resource.name || event.resource.id].filter(Boolean).join(" ");
}

/** The whole sentence; an erased entry says so instead. */
export function describe(event: AuditEvent | null, receivedAt?: string): string {
  if (!event) return `This entry's content was erased; its hashes still verify (received ${plainTime(receivedAt)}).`;
  const segments = event.action.split(".");
  const verb = segments.length > 1 ? segments[segments.length - 1] : segments[0];
  const intransitive = /^(log|sign)_?(in|on|out)$/.test(verb.toLowerCase());
  const object = resourceLabel(event) || (segments.length > 1 && !intransitive ? segments.slice(0, -1).join(" ") : "");
  const did = segments.length > 1 || IRREGULAR[verb.toLowerCase()] ? pastTense(verb) : `performed ${event.action}`;
  const outcome = event.outcome ?? "success";
  const what = [actorLabel(event), did, object].filter(Boolean).join(" ");
  return `${what} — ${outcome}, ${plainTime(event.occurred_at ?? receivedAt)}`;
}
