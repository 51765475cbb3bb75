//! Verification of the rows shown, in the browser: one `POST /v1/proofs/inclusion` per page of
//! at most 100 entries, then the WebAssembly verifier (the project's own chain code) checks each
//! entry's content digest, leaf hash and audit path against the checkpoint, and the checkpoint's
//! signature against the keys pinned in the console's configuration (never keys the API sends).

// `@console/verifier` is src/verifier.ts, or its stand-in in a build without it (tsconfig paths, build.mjs).
import * as verifier from "@console/verifier";
import type { Api } from "./api";
import type { ConsoleConfig } from "./config";
import type { Entry } from "./types";

export type Verdict = { state: "unverified" } | { state: "checking" } | { state: "ok" } | { state: "bad"; reason: string };

export const PAGE = 100;

let loaded: Promise<verifier.Verifier> | undefined;

function wasmUrl(): string | undefined {
  return document.querySelector<HTMLMetaElement>('meta[name="audit-verifier-wasm"]')?.content || undefined;
}

/** Loads the verifier once; rejects with a readable reason when it is not available. */
export function ensureVerifier(): Promise<verifier.Verifier> {
  const url = wasmUrl();
  loaded ??= url ? verifier.loadVerifier(url) : Promise.reject(new Error("the browser verifier is not part of this build"));
  return loaded;
}

/** The verdict of each entry, by seq. A request failure marks the whole page with its reason. */
export async function verifyEntries(api: Api, config: ConsoleConfig, entries: Entry[]): Promise<Map<number, Verdict>> {
  const v = await ensureVerifier();
  const verdicts = new Map<number, Verdict>();
  for (let i = 0; i < entries.length; i += PAGE) {
    const page = entries.slice(i, i + PAGE);
    try {
      const batch = await api.post<verifier.BatchProof>("/v1/proofs/inclusion", { ids: page.map((e) => e.id) });
      const result = v.verifyPage({
        entries: page as unknown as verifier.Entry[],
        batch,
        trusted: { checkpoint_keys: config.checkpoint_keys, global_log_keys: config.global_log_keys },
      });
      for (const [seq, verdict] of readVerdicts(result, page)) verdicts.set(seq, verdict);
    } catch (e) {
      for (const entry of page) verdicts.set(entry.seq, { state: "bad", reason: (e as Error).message });
    }
  }
  return verdicts;
}

/** The verifier's result as verdicts, one per entry of the page. */
function readVerdicts(result: unknown, page: Entry[]): Map<number, Verdict> {
  const out = new Map<number, Verdict>();
  const r = result as { entries?: unknown[]; results?: unknown[]; error?: string; reason?: string; ok?: boolean };
  const items = (Array.isArray(result) ? result : (r.entries ?? r.results ?? [])) as Record<string, unknown>[];
  const bySeq = new Map<number, Record<string, unknown>>();
  for (const item of items) {
    const seq = typeof item.seq === "number" ? item.seq : page.find((e) => e.id === item.id)?.seq;
    if (seq !== undefined) bySeq.set(seq, item);
  }
  const pageReason = r.ok === false ? (r.error ?? r.reason ?? "the page did not verify") : undefined;
  for (const entry of page) {
    const item = bySeq.get(entry.seq);
    if (!item) {
      out.set(entry.seq, { state: "bad", reason: pageReason ?? "the verifier returned no result for this entry" });
      continue;
    }
    const ok = item.ok ?? item.valid ?? item.verified;
    const reason = (item.reason ?? item.error ?? item.message) as string | undefined;
    const steps = item.steps as { inclusion?: string } | undefined;
    if (ok !== true && steps?.inclusion === "pending") {
      // Newer than the latest signed checkpoint: nothing failed, it cannot be proved yet.
      out.set(entry.seq, { state: "unverified" });
      continue;
    }
    out.set(entry.seq, ok === true && !pageReason ? { state: "ok" } : { state: "bad", reason: reason ?? pageReason ?? "did not verify" });
  }
  return out;
}

/** Runs the shared test vectors through the verifier (for the console's own tests). */
export async function runSharedVectors(vectors: unknown): Promise<unknown> {
  const v = await ensureVerifier();
  return v.runVectors(vectors as Record<string, string>);
}
