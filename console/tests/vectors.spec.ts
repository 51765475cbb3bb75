// The shared test vectors (test-vectors/v1) in a real browser: the console's own verifier glue
// (src/verifier.ts, bundled for the browser as the console bundles it) with the WebAssembly module
// the console function serves, on the console's origin and under its Content-Security-Policy.
import { test, expect } from "@playwright/test";
import { buildSync } from "esbuild";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const manifest = JSON.parse(readFileSync("dist/manifest.json", "utf8"));
const vectorsDir = join("..", "test-vectors", "v1");
const FILES = ["canonical.json", "strict-json.json", "events.json", "entries.json", "merkle.json", "checkpoints.json", "receipts.json"];

// The glue as a classic script that leaves `loadVerifier` on `window`: a test-only entry point,
// served from the console's origin so the page's `script-src 'self'` admits it.
const glue = buildSync({
  stdin: { contents: `import { loadVerifier } from "./src/verifier"; (window as any).__loadVerifier = loadVerifier;`, resolveDir: ".", loader: "ts" },
  bundle: true,
  format: "iife",
  platform: "browser",
  write: false,
}).outputFiles[0].text;

test("the shared test vectors pass in the browser", async ({ page }) => {
  const violations: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") violations.push(m.text()); });
  await page.route("**/console/__vectors-test.js", (route) => route.fulfill({ contentType: "text/javascript", body: glue }));
  await page.goto("/console/");
  await page.addScriptTag({ url: "/console/__vectors-test.js" });
  const files = Object.fromEntries(FILES.map((name) => [name, readFileSync(join(vectorsDir, name), "utf8")]));
  const report = await page.evaluate(async ({ wasm, files }) => {
    const v = await (window as any).__loadVerifier(wasm);
    return v.runVectors(files);
  }, { wasm: manifest.wasm, files });
  expect(report.cases.filter((c: { pass: boolean }) => !c.pass)).toEqual([]);
  expect(report.failed).toBe(0);
  expect(report.passed).toBeGreaterThan(500);
  expect([...report.files].sort()).toEqual([...FILES].sort());
  expect(violations).toEqual([]);
});

test("a changed vector fails in the browser", async ({ page }) => {
  await page.route("**/console/__vectors-test.js", (route) => route.fulfill({ contentType: "text/javascript", body: glue }));
  await page.goto("/console/");
  await page.addScriptTag({ url: "/console/__vectors-test.js" });
  const merkle = JSON.parse(readFileSync(join(vectorsDir, "merkle.json"), "utf8"));
  merkle.roots[3].root = "00".repeat(32);
  const report = await page.evaluate(async ({ wasm, merkle }) => {
    const v = await (window as any).__loadVerifier(wasm);
    return v.runVectors({ "merkle.json": merkle });
  }, { wasm: manifest.wasm, merkle });
  expect(report.failed).toBeGreaterThanOrEqual(1);
});
