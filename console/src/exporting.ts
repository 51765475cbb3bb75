//! Export of the current filter: `POST /v1/exports`, status polled with `GET /v1/exports/{id}`
//! until done, then the presigned download links (plain links: a navigation, not a fetch).

import { h, replace } from "./dom";
import type { Api } from "./api";
import type { Filter } from "./filters";
import type { ExportJob } from "./types";

export function exportPanel(api: Api, currentFilter: () => Filter): HTMLElement {
  const status = h("div", { class: "export-status", role: "status", "aria-live": "polite" });
  const format = h("select", { id: "export-format", "aria-label": "Export format" }, h("option", { value: "jsonl" }, "JSON Lines"), h("option", { value: "csv" }, "CSV"));
  const gzip = h("input", { type: "checkbox", id: "export-gzip" });
  const start = h("button", { type: "button", class: "button", id: "export-start" }, "Export current filter");
  start.addEventListener("click", async () => {
    start.disabled = true;
    replace(status, "Queuing the export…");
    try {
      const filter = currentFilter();
      let job = await api.post<ExportJob>("/v1/exports", { format: format.value, gzip: gzip.checked, filter });
      const begun = Date.now();
      while (job.status === "queued" || job.status === "running") {
        replace(status, `Export ${job.status}${job.rows ? ` (${job.rows} rows)` : ""}…`);
        await new Promise((r) => setTimeout(r, 1000));
        job = await api.get<ExportJob>(`/v1/exports/${job.id}`);
        if (Date.now() - begun > 15 * 60 * 1000) throw new Error("the export is taking longer than 15 minutes; see GET /v1/exports");
      }
      if (job.status === "failed") {
        replace(status, h("span", { class: "error" }, `Export failed: ${job.error?.message ?? "unknown reason"}`));
      } else {
        const links = Object.entries(job.download ?? {}).map(([part, d]) =>
          h("a", { href: d.url, class: "download", "data-part": part, rel: "noreferrer", target: "_blank", download: "" }, `Download ${part}`),
        );
        replace(status, h("span", { class: "ok-text" }, `Export done: ${job.rows ?? 0} rows. `), ...links, h("span", { class: "muted" }, " (links last 15 minutes; verify the bundle offline with auditlog verify-export)"));
      }
    } catch (e) {
      replace(status, h("span", { class: "error" }, `Export failed: ${(e as Error).message}`));
    } finally {
      start.disabled = false;
    }
  });
  return h(
    "details",
    { class: "menu export", id: "export-menu" },
    h("summary", { class: "button secondary" }, "Export"),
    h("div", { class: "menu-body" }, h("label", { for: "export-format" }, "Format "), format, h("label", { class: "inline" }, gzip, " gzip"), start, status),
  );
}
