#!/usr/bin/env bash
# Builds the console's WebAssembly verifier and prints the path of the .wasm file:
#   target/wasm32-unknown-unknown/wasm/console_verifier.wasm
# Usage: console/verifier/build.sh [--sizes]   (--sizes also prints its size raw and gzipped)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
cargo build --quiet -p console-verifier --lib --target wasm32-unknown-unknown --profile wasm
out="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm/console_verifier.wasm"
test -f "$out" || { echo "build.sh: $out was not written" >&2; exit 1; }
if [[ "${1:-}" == "--sizes" ]]; then
  echo "raw $(wc -c <"$out") bytes, gzipped $(gzip -9 -c "$out" | wc -c) bytes" >&2
fi
echo "$out"
