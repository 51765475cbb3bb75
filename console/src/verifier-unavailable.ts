//! Stands in for `verifier.ts` (the WebAssembly build of the chain code) in a console built
//! without it: same exports, each failing with a message that says so. `build.mjs` resolves
//! `@console/verifier` here only when `src/verifier.ts` does not exist.

const MESSAGE = "the browser verifier is not part of this build (console/verifier)";

export async function loadVerifier(..._args: unknown[]): Promise<never> {
  throw new Error(MESSAGE);
}

export async function verifyPage(..._args: unknown[]): Promise<never> {
  throw new Error(MESSAGE);
}

export async function runVectors(..._args: unknown[]): Promise<never> {
  throw new Error(MESSAGE);
}
