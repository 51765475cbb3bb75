//! The events screen: who is signed in, the filter form (every filter of `GET /v1/events`, a
//! pinned filter shown as chips that cannot be removed), the table (newest first, cursor paging
//! with "Load more", the reader's columns), the verification badges and "Verify all shown", the
//! live tail, and export. Rows are focusable: arrow keys move between them, Enter opens the
//! detail view, Escape closes it.

import { h, replace } from "./dom";
import { Api, ApiError } from "./api";
import type { ConsoleConfig } from "./config";
import { COLUMNS, chosenColumns, saveColumns } from "./columns";
import { openDetail, verdictBadge } from "./detail";
import { exportPanel } from "./exporting";
import { FIELD_LABELS, FILTER_FIELDS, OUTCOMES, SEVERITIES, clean, fromSearch, localToUtc, toSearch, utcToLocal, withPin, type Filter, type FilterField } from "./filters";
import { LiveTail, type TailState } from "./tail";
import type { Entry, EventPage, WhoAmI } from "./types";
import { ensureVerifier, verifyEntries, type Verdict } from "./verification";

export interface ScreenOptions {
  api: Api;
  config: ConsoleConfig;
  token: string;
  who: WhoAmI;
  embed: boolean;
  onSignOut: () => void;
}

const PAGE_SIZE = 50;

export function can(who: WhoAmI, scope: string): boolean {
  // Without whoami's scopes (an older API) every control is offered and the API decides.
  return who.scopes === null || who.scopes.includes(scope) || who.scopes.includes("admin");
}

export function eventsScreen(root: HTMLElement, o: ScreenOptions): void {
  const pin = o.who.filter ?? {};
  let filter: Filter = withPin(fromSearch(location.search), pin);
  let entries: Entry[] = [];
  const bySeq = new Map<number, Entry>();
  const verdicts = new Map<number, Verdict>();
  let cursor: string | null = null;
  let loading = false;
  let columns = chosenColumns();
  let tail: LiveTail | null = null;

  // --- header: who is signed in ---
  const who = h(
    "div",
    { class: "who", "data-testid": "who" },
    h("span", { class: "who-kind" }, { api_key: "API key", viewer_token: "Viewer", oidc: "Signed in" }[o.who.kind] ?? o.who.kind),
    " ",
    h("strong", {}, o.who.subject ?? o.who.key_id ?? ""),
    o.who.role ? h("span", { class: "muted" }, ` · ${o.who.role}`) : null,
    o.who.expires_at ? h("span", { class: "muted" }, ` · until ${new Date(o.who.expires_at).toUTCString()}`) : null,
  );
  const signOutButton = o.embed ? null : h("button", { type: "button", class: "button ghost", onclick: o.onSignOut }, "Sign out");
  const header = h(
    "header",
    { class: "top" },
    h("h1", {}, "Audit log"),
    h("div", { class: "top-right" }, who, o.embed ? null : h("a", { href: "/console/docs/", class: "link" }, "API docs"), signOutButton),
  );

  // --- filters ---
  const inputs = {} as Record<FilterField, HTMLInputElement | HTMLSelectElement>;
  const prefix = h("input", { type: "checkbox", id: "f-action-prefix" });
  const field = (k: FilterField) => {
    let input: HTMLInputElement | HTMLSelectElement;
    if (k === "outcome" || k === "severity") {
      input = h("select", { id: `f-${k}`, name: k }, h("option", { value: "" }, "any"), ...(k === "outcome" ? OUTCOMES : SEVERITIES).map((v) => h("option", { value: v }, v)));
    } else {
      input = h("input", { id: `f-${k}`, name: k, type: k === "from" || k === "to" ? "datetime-local" : k === "q" ? "search" : "text", autocomplete: "off", spellcheck: "false" });
    }
    if (k in pin || (k === "action" && "action_prefix" in pin)) input.disabled = true;
    inputs[k] = input;
    const label = h("label", { for: `f-${k}` }, FIELD_LABELS[k]);
    if (k === "action") return h("div", { class: "field" }, label, input, h("label", { class: "inline small" }, prefix, " starts with"));
    return h("div", { class: `field field-${k}` }, label, input);
  };
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter events" }, ...FILTER_FIELDS.map(field));
  const apply = h("button", { type: "submit", class: "button" }, "Apply");
  const clear = h("button", { type: "button", class: "button ghost" }, "Clear");
  form.appendChild(h("div", { class: "field actions" }, apply, clear));
  const chips = h("div", { class: "chips", "aria-label": "Active filters" });

  function fillForm(): void {
    for (const k of FILTER_FIELDS) {
      let v = filter[k] ?? "";
      if (k === "action") {
        prefix.checked = v.endsWith("*");
        v = v.replace(/\*$/, "");
      }
      inputs[k].value = k === "from" || k === "to" ? utcToLocal(v) : v;
    }
    prefix.disabled = inputs.action.disabled;
  }
  function readForm(): Filter {
    const f: Filter = {};
    for (const k of FILTER_FIELDS) {
      let v = inputs[k].value.trim();
      if (k === "from" || k === "to") v = localToUtc(v);
      if (k === "action" && v && prefix.checked) v = `${v}*`;
      if (v) f[k] = v;
    }
    return withPin(f, pin);
  }
  function drawChips(): void {
    replace(
      chips,
      Object.entries(clean(filter)).map(([k, v]) => {
        const pinned = k in pin || (k === "action" && "action_prefix" in pin);
        const chip = h("span", { class: `chip${pinned ? " pinned" : ""}`, "data-filter": k }, `${FIELD_LABELS[k as FilterField]}: ${v}`);
        if (pinned) {
          chip.appendChild(h("span", { class: "chip-note" }, " (pinned)"));
          chip.title = "This filter is part of your credential and cannot be removed";
        } else {
          chip.appendChild(
            h("button", { type: "button", class: "chip-x", "aria-label": `Remove filter ${FIELD_LABELS[k as FilterField]}`, onclick: () => setFilter({ ...filter, [k]: undefined }) }, "×"),
          );
        }
        return chip;
      }),
    );
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setFilter(readForm());
  });
  clear.addEventListener("click", () => setFilter(withPin({}, pin)));

  // --- toolbar ---
  const status = h("div", { class: "status", role: "status", "aria-live": "polite" });
  const verifyAll = h("button", { type: "button", class: "button secondary", id: "verify-all" }, "Verify all shown");
  ensureVerifier().catch((e: Error) => {
    verifyAll.disabled = true;
    verifyAll.title = e.message;
  });
  verifyAll.addEventListener("click", async () => {
    verifyAll.disabled = true;
    for (const e of entries) verdicts.set(e.seq, { state: "checking" });
    drawBadges();
    const started = performance.now();
    try {
      const result = await verifyEntries(o.api, o.config, entries);
      for (const [seq, v] of result) verdicts.set(seq, v);
      const bad = [...result.values()].filter((v) => v.state === "bad").length;
      replace(status, bad ? h("span", { class: "error" }, `${bad} of ${result.size} entries failed verification`) : `All ${result.size} entries shown verified in ${Math.round(performance.now() - started)} ms`);
    } catch (e) {
      for (const en of entries) verdicts.set(en.seq, { state: "bad", reason: (e as Error).message });
      replace(status, h("span", { class: "error" }, (e as Error).message));
    } finally {
      drawBadges();
      verifyAll.disabled = false;
    }
  });

  const tailState = h("span", { class: "tail-state", "data-state": "off", "aria-live": "polite" }, "live tail off");
  const tailToggle = h("button", { type: "button", class: "button secondary", "aria-pressed": "false", id: "tail-toggle" }, "Live tail");
  const tailPause = h("button", { type: "button", class: "button ghost", id: "tail-pause", hidden: true }, "Pause");
  function showTailState(state: TailState, detail?: string): void {
    tailState.dataset.state = state;
    tailState.textContent = { off: "live tail off", connecting: "connecting…", live: "● live", paused: "paused", reconnecting: "reconnecting…", failed: "live tail failed" }[state] + (detail ? ` (${detail})` : "");
    tailPause.hidden = state === "off" || state === "failed";
    tailPause.textContent = state === "paused" ? "Resume" : "Pause";
    tailToggle.setAttribute("aria-pressed", String(state !== "off" && state !== "failed"));
  }
  function startTail(): void {
    if (!o.config.tail_url) return;
    tail = new LiveTail({
      url: o.config.tail_url,
      token: o.token,
      filter,
      highestSeq: () => (entries.length ? Math.max(...entries.map((e) => e.seq)) : null),
      onEntries: (arrived) => addLive(arrived),
      onRef: (id) => {
        o.api.get<Entry>(`/v1/events/${id}`).then((e) => addLive([e]), () => undefined);
      },
      onState: showTailState,
    });
    tail.start();
  }
  function stopTail(): void {
    tail?.stop();
    tail = null;
  }
  tailToggle.addEventListener("click", () => (tail ? stopTail() : startTail()));
  tailPause.addEventListener("click", () => {
    if (!tail) return;
    if (tailState.dataset.state === "paused") tail.resume();
    else tail.pause();
  });
  const tailControls = o.config.tail_url && can(o.who, "events:read") ? h("div", { class: "tail" }, tailToggle, tailPause, tailState) : null;

  const columnMenu = h(
    "details",
    { class: "menu columns" },
    h("summary", { class: "button ghost" }, "Columns"),
    h(
      "fieldset",
      { class: "menu-body" },
      h("legend", {}, "Columns shown"),
      ...COLUMNS.map((c) => {
        const box = h("input", { type: "checkbox", value: c.key, checked: columns.includes(c.key) });
        box.addEventListener("change", () => {
          columns = COLUMNS.map((x) => x.key).filter((k) => (k === c.key ? box.checked : columns.includes(k)));
          saveColumns(columns);
          drawTable();
        });
        return h("label", { class: "inline" }, box, ` ${c.label}`);
      }),
    ),
  );
  const toolbar = h("div", { class: "toolbar" }, verifyAll, tailControls, can(o.who, "exports") ? exportPanel(o.api, () => clean(filter)) : null, columnMenu);

  // --- table ---
  const table = h("table", { class: "events", "aria-label": "Events, newest first" });
  const tbody = h("tbody", {});
  const more = h("button", { type: "button", class: "button secondary", id: "load-more" }, "Load more");
  more.addEventListener("click", () => load(false));
  const empty = h("p", { class: "empty muted", hidden: true }, "No events match this filter.");

  function drawTable(): void {
    const shown = COLUMNS.filter((c) => columns.includes(c.key));
    replace(table, h("thead", {}, h("tr", {}, ...shown.map((c) => h("th", { scope: "col" }, c.label)), h("th", { scope: "col" }, "Verified"))), tbody);
    replace(tbody, entries.map((e) => rowOf(e, shown)));
    empty.hidden = entries.length > 0 || loading;
    more.hidden = cursor === null;
  }
  function rowOf(e: Entry, shown = COLUMNS.filter((c) => columns.includes(c.key))): HTMLTableRowElement {
    const tr = h("tr", { tabindex: "0", "data-seq": e.seq, "aria-label": `seq ${e.seq}: ${e.event?.action ?? "erased"}` });
    for (const c of shown) tr.appendChild(h("td", { "data-label": c.label, class: `col-${c.key}` }, c.value(e)));
    tr.appendChild(h("td", { "data-label": "Verified", class: "col-verdict" }, verdictBadge(verdicts.get(e.seq))));
    return tr;
  }
  function drawBadges(): void {
    for (const tr of tbody.querySelectorAll<HTMLTableRowElement>("tr")) {
      const cell = tr.querySelector(".col-verdict");
      if (cell) replace(cell, verdictBadge(verdicts.get(Number(tr.dataset.seq))));
    }
  }
  function open(tr: HTMLTableRowElement): void {
    const entry = bySeq.get(Number(tr.dataset.seq));
    if (entry) openDetail(entry, verdicts.get(entry.seq), tr);
  }
  tbody.addEventListener("click", (ev) => {
    const tr = (ev.target as HTMLElement).closest("tr");
    if (tr) open(tr as HTMLTableRowElement);
  });
  tbody.addEventListener("keydown", (ev) => {
    const tr = (ev.target as HTMLElement).closest("tr") as HTMLTableRowElement | null;
    if (!tr) return;
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      open(tr);
    } else if (ev.key === "ArrowDown" || ev.key === "j") {
      ev.preventDefault();
      (tr.nextElementSibling as HTMLElement | null)?.focus();
    } else if (ev.key === "ArrowUp" || ev.key === "k") {
      ev.preventDefault();
      (tr.previousElementSibling as HTMLElement | null)?.focus();
    } else if (ev.key === "Home") {
      ev.preventDefault();
      (tbody.firstElementChild as HTMLElement | null)?.focus();
    } else if (ev.key === "End") {
      ev.preventDefault();
      (tbody.lastElementChild as HTMLElement | null)?.focus();
    }
  });

  /** Entries from the live tail: new seqs go on top (newest first); held seqs are dropped. */
  function addLive(arrived: Entry[]): void {
    const fresh = arrived.filter((e) => !bySeq.has(e.seq));
    if (!fresh.length) return;
    for (const e of fresh) bySeq.set(e.seq, e);
    entries = [...fresh.sort((a, b) => b.seq - a.seq), ...entries].sort((a, b) => b.seq - a.seq);
    drawTable();
    replace(status, `${fresh.length} new event${fresh.length === 1 ? "" : "s"} from the live tail`);
  }

  async function load(first: boolean): Promise<void> {
    if (loading) return;
    loading = true;
    more.disabled = true;
    if (first) {
      entries = [];
      bySeq.clear();
      verdicts.clear();
      cursor = null;
      drawTable();
      replace(status, "Loading…");
    }
    try {
      const page = await o.api.get<EventPage>("/v1/events", { ...clean(filter), limit: String(PAGE_SIZE), order: "desc", cursor: first ? undefined : (cursor ?? undefined) });
      for (const e of page.events) {
        if (bySeq.has(e.seq)) continue;
        bySeq.set(e.seq, e);
        entries.push(e);
      }
      cursor = page.next_cursor;
      replace(status, `${entries.length} event${entries.length === 1 ? "" : "s"} shown${cursor ? "; more available" : ""}`);
    } catch (e) {
      if (e instanceof ApiError && e.signedOut) return o.onSignOut();
      replace(status, h("span", { class: "error" }, `Could not load events: ${(e as Error).message}`));
    } finally {
      loading = false;
      more.disabled = false;
      drawTable();
    }
  }

  function setFilter(next: Filter): void {
    filter = withPin(next, pin);
    if (!o.embed) history.replaceState(null, "", location.pathname + toSearch(filter, location.search));
    fillForm();
    drawChips();
    tailToggle.disabled = Boolean(filter.q);
    tailToggle.title = filter.q ? "The live tail follows filters but not a text search" : "";
    if (tail) {
      stopTail();
      load(true).then(() => !filter.q && startTail());
    } else {
      load(true);
    }
  }

  replace(
    root,
    header,
    h("main", { class: "main" }, h("details", { class: "filter-box", open: !window.matchMedia("(max-width: 640px)").matches }, h("summary", {}, "Filters"), form), chips, toolbar, status, h("div", { class: "table-wrap" }, table), empty, h("div", { class: "more" }, more)),
  );
  setFilter(filter);
}
