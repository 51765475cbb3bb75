//! The event detail view: a modal dialog with the plain-words sentence, every field of the
//! event, its position and hashes, its receipt when the entry carries one, its verification
//! verdict and the raw entry. Escape closes it (the dialog's own behaviour) and focus goes back
//! to the row that opened it.

import { h, replace } from "./dom";
import { describe, plainTime } from "./sentence";
import type { Entry } from "./types";
import type { Verdict } from "./verification";

let dialog: HTMLDialogElement | null = null;
let opener: HTMLElement | null = null;

function ensureDialog(): HTMLDialogElement {
  if (dialog) return dialog;
  dialog = h("dialog", { class: "detail", "aria-labelledby": "detail-title" });
  dialog.addEventListener("close", () => {
    opener?.focus();
    opener = null;
  });
  document.body.appendChild(dialog);
  return dialog;
}

function row(label: string, value: string | Node | undefined | null, mono = false) {
  if (value === undefined || value === null || value === "") return null;
  return h("div", { class: "kv" }, h("dt", {}, label), h("dd", { class: mono ? "mono" : "" }, value));
}

export function verdictBadge(verdict: Verdict | undefined): HTMLElement {
  const v = verdict ?? { state: "unverified" };
  const text = { unverified: "not verified", checking: "checking…", ok: "verified", bad: "failed" }[v.state];
  const badge = h("span", { class: `badge badge-${v.state}`, "data-verdict": v.state }, v.state === "ok" ? "✓ " : v.state === "bad" ? "✗ " : "", text);
  if (v.state === "bad") {
    badge.title = v.reason;
    badge.appendChild(h("span", { class: "reason" }, `: ${v.reason}`));
  }
  return badge;
}

export function openDetail(entry: Entry, verdict: Verdict | undefined, from: HTMLElement | null): void {
  const d = ensureDialog();
  opener = from;
  const e = entry.event;
  replace(
    d,
    h(
      "div",
      { class: "detail-head" },
      h("h2", { id: "detail-title" }, e?.action ?? "Erased entry", h("span", { class: "muted" }, ` · seq ${entry.seq}`)),
      h("button", { class: "button ghost", type: "button", "aria-label": "Close", onclick: () => d.close() }, "Close"),
    ),
    h("p", { class: "sentence", "data-testid": "sentence" }, describe(e, entry.received_at)),
    h("div", { class: "detail-verdict" }, "Verification: ", verdictBadge(verdict)),
    h(
      "section",
      {},
      h("h3", {}, "Event"),
      h(
        "dl",
        {},
        e && [
          row("Action", e.action),
          row("Actor", [e.actor.id, e.actor.type && `(${e.actor.type})`, e.actor.name && `“${e.actor.name}”`].filter(Boolean).join(" ")),
          row("Actor IP", e.actor.ip),
          row("User agent", e.actor.user_agent),
          row("Resource", e.resource && [e.resource.type, e.resource.id, e.resource.name && `“${e.resource.name}”`].filter(Boolean).join(" ")),
          row("Outcome", e.outcome),
          row("Severity", e.severity),
          row("Source", e.source),
          row("Occurred", e.occurred_at && `${plainTime(e.occurred_at)} (${e.occurred_at})`),
          row("Request id", e.request_id),
          row("Session id", e.session_id),
          row("Signed by", e.signature && `${e.signature.key_id} (${e.signature.alg})`),
        ],
      ),
      e?.metadata && Object.keys(e.metadata).length ? h("h4", {}, "Metadata") : null,
      e?.metadata && Object.keys(e.metadata).length ? h("pre", { class: "json" }, JSON.stringify(e.metadata, null, 2)) : null,
    ),
    h(
      "section",
      {},
      h("h3", {}, "In the log"),
      h(
        "dl",
        {},
        row("Seq", String(entry.seq), true),
        row("Event id", entry.id, true),
        row("Tenant", entry.tenant_id, true),
        row("Received", `${plainTime(entry.received_at)} (${entry.received_at})`),
        row("Content digest", entry.content_digest, true),
        row("Leaf hash", entry.leaf_hash, true),
        row("Chain hash", entry.chain_hash, true),
        row("Salt", entry.salt ?? "(erased)", true),
      ),
    ),
    h(
      "section",
      {},
      h("h3", {}, "Receipt"),
      entry.receipt
        ? h("pre", { class: "json" }, JSON.stringify(entry.receipt, null, 2))
        : h("p", { class: "muted" }, "The signed receipt was returned to the publisher when the event was appended; stored entries do not carry it. The hashes above are what the receipt signs."),
    ),
    h("details", {}, h("summary", {}, "The whole entry (JSON)"), h("pre", { class: "json", "data-testid": "raw" }, JSON.stringify(entry, null, 2))),
  );
  d.showModal();
}
