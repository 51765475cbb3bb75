// Builds the console into dist/: the app bundle (src/main.ts) and its stylesheet with content
// hashes in their names, the HTML pages that name them, the API docs page (swagger-ui-dist's
// files copied under hashed names, and openapi.yaml), and a gzip and a brotli copy of every
// text file where compression helps. The console function embeds dist/ at compile time.
//
// The browser verifier (src/verifier.ts and its WebAssembly module, console/verifier) is built
// on its own branch; until it is present, src/verifier-unavailable.ts stands in for it so the
// rest of the console builds and runs with verification switched off.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const assets = join(dist, "assets");
rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
mkdirSync(join(dist, "docs"), { recursive: true });

const hasVerifier = existsSync(join(root, "src", "verifier.ts"));
const verifierStandIn = {
  name: "verifier-stand-in",
  setup(build) {
    build.onResolve({ filter: /^@console\/verifier$/ }, () => ({
      path: join(root, "src", hasVerifier ? "verifier.ts" : "verifier-unavailable.ts"),
    }));
  },
};

const result = await esbuild.build({
  entryPoints: { app: join(root, "src", "main.ts") },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  metafile: true,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  outdir: assets,
  loader: { ".wasm": "file" },
  plugins: [verifierStandIn],
  logLevel: "warning",
});

// The embeddable element keeps one stable address (/console/viewer.js) for host pages to name.
await esbuild.build({
  entryPoints: [join(root, "src", "viewer-element.ts")],
  bundle: true, format: "esm", target: "es2022", minify: true, outfile: join(dist, "viewer.js"), logLevel: "warning",
});

// The hashed names esbuild chose for each entry point and its stylesheet.
const outputs = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const name = "app";
  outputs[name] = "/console/" + relative(dist, join(root, file)).replaceAll("\\", "/");
  if (meta.cssBundle) outputs[name + "Css"] = "/console/" + relative(dist, join(root, meta.cssBundle)).replaceAll("\\", "/");
}

/** Copies a file into assets/ under a name carrying the first 10 hex digits of its SHA-256. */
function copyHashed(source, base, ext) {
  const bytes = readFileSync(source);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 10);
  const name = `${base}-${hash}.${ext}`;
  writeFileSync(join(assets, name), bytes);
  return `/console/assets/${name}`;
}

// The verifier's WebAssembly module, when its build (console/verifier/build.sh) has produced it.
const targetDir = process.env.CARGO_TARGET_DIR || join(root, "..", "target");
const wasmCandidates = [join(targetDir, "wasm32-unknown-unknown", "wasm", "console_verifier.opt.wasm")];
const wasm = wasmCandidates.find((p) => existsSync(p));
const wasmUrl = wasm && hasVerifier ? copyHashed(wasm, "verifier", "wasm") : "";
if (hasVerifier && !wasm) console.warn("console: the verifier's .wasm is not built (console/verifier/build.sh); verification is off");

const page = (title, body, scripts, styles, extraMeta = "") => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${extraMeta}<title>${title}</title>
${styles.map((href) => `<link rel="stylesheet" href="${href}">`).join("\n")}
${scripts.map((src) => `<script type="module" src="${src}"></script>`).join("\n")}
</head>
<body>
${body}
</body>
</html>
`;

const appMeta = wasmUrl ? `<meta name="audit-verifier-wasm" content="${wasmUrl}">\n` : "";
writeFileSync(
  join(dist, "index.html"),
  page("Audit log console", `<div id="app" class="app"><p class="loading">Loading the console…</p></div>`, [outputs.app], [outputs.appCss], appMeta),
);

// The API docs: swagger-ui-dist's bundle and stylesheet, with an initialiser of our own (no
// inline script), reading openapi.yaml from beside the page.
const swagger = join(root, "node_modules", "swagger-ui-dist");
const swaggerJs = copyHashed(join(swagger, "swagger-ui-bundle.js"), "swagger-ui-bundle", "js");
const swaggerCss = copyHashed(join(swagger, "swagger-ui.css"), "swagger-ui", "css");
const docsInit = await esbuild.build({
  entryPoints: { docs: join(root, "docs", "docs.ts") },
  bundle: true, format: "iife", minify: true, write: false, target: "es2022",
});
const docsJs = join(assets, "docs.js");
writeFileSync(docsJs, docsInit.outputFiles[0].contents);
const docsInitUrl = copyHashed(docsJs, "docs", "js");
rmSync(docsJs);
const docsCss = copyHashed(join(root, "docs", "docs.css"), "docs", "css");
writeFileSync(
  join(dist, "docs", "index.html"),
  page("Audit log API", `<div id="swagger-ui"></div>`, [], [swaggerCss, docsCss]).replace(
    "</body>",
    `<script src="${swaggerJs}"></script>\n<script src="${docsInitUrl}"></script>\n</body>`,
  ),
);
copyFileSync(join(root, "..", "openapi.yaml"), join(dist, "docs", "openapi.yaml"));

// Compressed copies, kept only where they save at least a tenth.
const compressible = /\.(html|js|css|json|yaml|wasm|svg|map|txt)$/;
function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
for (const file of walk(dist)) {
  if (!compressible.test(file)) continue;
  const bytes = readFileSync(file);
  const gz = gzipSync(bytes, { level: 9 });
  const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
  if (gz.length < bytes.length * 0.9) writeFileSync(file + ".gz", gz);
  if (br.length < bytes.length * 0.9) writeFileSync(file + ".br", br);
}
writeFileSync(join(dist, "manifest.json"), JSON.stringify({ ...outputs, wasm: wasmUrl, verifier: Boolean(wasmUrl), docs: { js: swaggerJs, css: swaggerCss } }, null, 2) + "\n");
console.log(`console: built dist/ (${hasVerifier ? "with" : "without"} the verifier)`);
