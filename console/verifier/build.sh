#!/usr/bin/env bash
# Builds the console's WebAssembly verifier, shrinks it with binaryen's wasm-opt (-Oz; installed by
# scripts/setup) and prints the path of the result:
#   target/wasm32-unknown-unknown/wasm/console_verifier.opt.wasm
# Usage: console/verifier/build.sh [--sizes]   (--sizes also prints its size raw and gzipped)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
cargo build --quiet -p console-verifier --lib --target wasm32-unknown-unknown --profile wasm
built="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm/console_verifier.wasm"
out="${built%.wasm}.opt.wasm"
test -f "$built" || { echo "build.sh: $built was not written" >&2; exit 1; }
command -v wasm-opt >/dev/null || { echo "build.sh: wasm-opt is missing (binaryen; scripts/setup installs it)" >&2; exit 1; }
# The features rustc enables for wasm32-unknown-unknown, which wasm-opt must be told about.
if [[ ! -f "$out" || "$built" -nt "$out" ]]; then
  wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types "$built" -o "$out.part"
  mv "$out.part" "$out"
fi
if [[ "${1:-}" == "--sizes" ]]; then
  echo "raw $(wc -c <"$built") bytes, gzipped $(gzip -9 -c "$built" | wc -c) bytes as built;" \
    "after wasm-opt -Oz raw $(wc -c <"$out") bytes, gzipped $(gzip -9 -c "$out" | wc -c) bytes" >&2
fi
echo "$out"
