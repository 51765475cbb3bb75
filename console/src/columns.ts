//! The events table's columns and the reader's choice of them, remembered in localStorage.

import type { Entry } from "./types";
import { plainTime, actorLabel, resourceLabel } from "./sentence";

export interface Column {
  key: string;
  label: string;
  value: (e: Entry) => string;
}

export const COLUMNS: Column[] = [
  { key: "seq", label: "Seq", value: (e) => String(e.seq) },
  { key: "time", label: "Time (UTC)", value: (e) => plainTime(e.event?.occurred_at ?? e.received_at).replace(/ UTC$/, "") },
  { key: "action", label: "Action", value: (e) => e.event?.action ?? "(erased)" },
  { key: "actor", label: "Actor", value: (e) => (e.event ? actorLabel(e.event) : "") },
  { key: "resource", label: "Resource", value: (e) => (e.event ? resourceLabel(e.event) : "") },
  { key: "outcome", label: "Outcome", value: (e) => e.event?.outcome ?? "" },
  { key: "severity", label: "Severity", value: (e) => e.event?.severity ?? "" },
  { key: "source", label: "Source", value: (e) => e.event?.source ?? "" },
  { key: "received", label: "Received", value: (e) => plainTime(e.received_at) },
  { key: "id", label: "Event id", value: (e) => e.id },
];

const DEFAULT = ["seq", "time", "action", "actor", "resource", "outcome"];
const KEY = "audit-console.columns";

export function chosenColumns(): string[] {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? "null") as string[] | null;
    if (Array.isArray(saved) && saved.every((k) => COLUMNS.some((c) => c.key === k))) return saved;
  } catch {
    /* a damaged value falls back to the default */
  }
  return DEFAULT;
}

export function saveColumns(keys: string[]): void {
  localStorage.setItem(KEY, JSON.stringify(keys));
}
