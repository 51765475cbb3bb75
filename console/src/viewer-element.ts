//! `<audit-log-viewer token="alv_..." tenant="...">`: the embeddable viewer as a custom element,
//! for a tenant's own pages. It wraps the console's `/console/embed` view in an iframe, with the
//! token in the address fragment (never sent to a server, never in logs), so the host page needs
//! no CORS and only `frame-src` for the console's origin; the tenant lists the host page's origin
//! in its console settings (`frame_ancestors`). Attributes: `token` (required), `tenant` (the
//! tenant id, so the console can allow the host as a frame ancestor), `src` (the console's
//! address; default: where this script was loaded from), `height` (CSS length, default 640px).

const here = new URL(".", import.meta.url);

export class AuditLogViewer extends HTMLElement {
  static observedAttributes = ["token", "tenant", "src", "height"];
  private frame: HTMLIFrameElement;

  constructor() {
    super();
    const shadow = this.attachShadow({ mode: "closed" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(":host{display:block}iframe{border:0;width:100%;display:block}");
    shadow.adoptedStyleSheets = [sheet];
    this.frame = document.createElement("iframe");
    this.frame.title = "Audit log";
    this.frame.referrerPolicy = "no-referrer";
    shadow.appendChild(this.frame);
  }

  connectedCallback(): void {
    this.update();
  }

  attributeChangedCallback(): void {
    this.update();
  }

  private update(): void {
    const token = this.getAttribute("token");
    const base = new URL(this.getAttribute("src") ?? here.href, location.href);
    const url = new URL("embed", base.href.endsWith("/") ? base : new URL(base.href + "/"));
    const tenant = this.getAttribute("tenant");
    if (tenant) url.searchParams.set("tenant", tenant);
    url.hash = token ? `token=${encodeURIComponent(token)}` : "";
    this.frame.style.height = this.getAttribute("height") ?? "640px";
    if (this.frame.src !== url.href) this.frame.src = url.href;
  }
}

if (!customElements.get("audit-log-viewer")) customElements.define("audit-log-viewer", AuditLogViewer);
