//! Stands in for `verifier.ts` (the WebAssembly build of the chain code) in a console built
//! without it: the same `loadVerifier`, failing with a message that says so. `build.mjs` resolves
//! `@console/verifier` here only when `src/verifier.ts` does not exist.

export type Entry = Record<string, unknown>;
export type BatchProof = Record<string, unknown>;
export interface Verifier {
  verifyPage(input: unknown): unknown;
  runVectors(files: Record<string, string | unknown>): unknown;
}

export async function loadVerifier(..._args: unknown[]): Promise<Verifier> {
  throw new Error("the browser verifier is not part of this build (console/verifier)");
}
