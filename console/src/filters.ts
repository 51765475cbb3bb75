//! The events filter: every query parameter of `GET /v1/events`, its form fields, its chips, and
//! its place in the page's address (so a filtered view can be bookmarked or shared). The action
//! prefix is the API's `action=prefix.*`.

export const FILTER_FIELDS = [
  "action",
  "actor_id",
  "resource_type",
  "resource_id",
  "outcome",
  "severity",
  "source",
  "from",
  "to",
  "q",
] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];
export type Filter = Partial<Record<FilterField, string>>;

export const FIELD_LABELS: Record<FilterField, string> = {
  action: "Action",
  actor_id: "Actor",
  resource_type: "Resource type",
  resource_id: "Resource id",
  outcome: "Outcome",
  severity: "Severity",
  source: "Source",
  from: "From",
  to: "Until",
  q: "Search",
};

export const OUTCOMES = ["success", "failure", "denied", "error"];
export const SEVERITIES = ["low", "medium", "high", "critical"];

/** The filter without empty values. */
export function clean(filter: Filter): Filter {
  const out: Filter = {};
  for (const k of FILTER_FIELDS) {
    const v = filter[k]?.trim();
    if (v) out[k] = v;
  }
  return out;
}

/** A pinned filter (a viewer token's) wins over what the form says for the same field. */
export function withPin(filter: Filter, pin: Record<string, string> | undefined): Filter {
  const merged: Filter = { ...clean(filter) };
  for (const [k, v] of Object.entries(pin ?? {})) {
    if (k === "action_prefix") merged.action = v.endsWith("*") ? v : `${v}*`;
    else if ((FILTER_FIELDS as readonly string[]).includes(k)) merged[k as FilterField] = v;
  }
  return merged;
}

export function fromSearch(search: string): Filter {
  const params = new URLSearchParams(search);
  const out: Filter = {};
  for (const k of FILTER_FIELDS) {
    const v = params.get(k);
    if (v) out[k] = v;
  }
  return out;
}

/** The page's query string for `filter`, keeping parameters that are not filters (`tenant`). */
export function toSearch(filter: Filter, current: string): string {
  const params = new URLSearchParams(current);
  for (const k of FILTER_FIELDS) params.delete(k);
  for (const [k, v] of Object.entries(clean(filter))) params.set(k, v);
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** A value of a `datetime-local` input (the reader's local time) as RFC 3339 UTC. */
export function localToUtc(value: string): string {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

/** RFC 3339 as a `datetime-local` input value in the reader's local time. */
export function utcToLocal(value: string | undefined): string {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
