//! Starts Swagger UI on the console's copy of openapi.yaml (no inline script: the page's CSP
//! allows scripts from the console's own origin only).

declare const SwaggerUIBundle: ((options: Record<string, unknown>) => unknown) & { presets: { apis: unknown } };

window.addEventListener("DOMContentLoaded", () => {
  SwaggerUIBundle({
    url: new URL("openapi.yaml", location.href).href,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
