// Page weight of the console (without the API docs): every file the console page loads, raw and
// gzip'd (level 9, as the build stores it; brotli beside it), and the total.
import { readFileSync, existsSync } from "node:fs";
import { gzipSync, brotliCompressSync } from "node:zlib";

const manifest = JSON.parse(readFileSync("dist/manifest.json", "utf8"));
const files = ["index.html", manifest.app, manifest.appCss, manifest.wasm].filter(Boolean).map((p) => p.replace(/^\/console\//, ""));
let raw = 0, gz = 0, br = 0;
console.log("console page weight (without /console/docs/):");
for (const f of files) {
  const path = `dist/${f}`;
  if (!existsSync(path)) continue;
  const bytes = readFileSync(path);
  const g = gzipSync(bytes, { level: 9 }).length;
  const b = brotliCompressSync(bytes).length;
  raw += bytes.length; gz += g; br += b;
  console.log(`  ${f.padEnd(40)} ${String(bytes.length).padStart(9)} B raw  ${String(g).padStart(8)} B gzip  ${String(b).padStart(8)} B br`);
}
console.log(`  ${"total".padEnd(40)} ${String(raw).padStart(9)} B raw  ${String(gz).padStart(8)} B gzip  ${String(br).padStart(8)} B br   (target < 300 KB compressed)`);
console.log("  (plus /console/config.json, a few hundred bytes)");
