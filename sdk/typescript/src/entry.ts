/**
 * Verifying an entry returned by the API: its content digest (from event and salt), its leaf
 * hash, and its inclusion proof against a checkpoint that has already been verified.
 */

import { decodeBase64, decodeHash, isHash } from "./encoding.js";
import { VerificationError } from "./errors.js";
import { entryLeafHash, eventContentDigest } from "./hash.js";
import { verifyInclusion } from "./merkle.js";
import type { VerifiedCheckpoint } from "./checkpoint.js";

/** A stored entry, as GET /v1/events and GET /v1/events/{id} return it. */
export interface Entry {
  id: string;
  tenant_id: string;
  seq: number;
  received_at: string;
  /** The normalised event as stored; null once erased. */
  event: Record<string, unknown> | null;
  erased: boolean;
  /** Base64 of the 32-byte salt; null once erased. */
  salt: string | null;
  content_digest: string;
  leaf_hash: string;
  chain_hash: string;
}

/** An inclusion proof, as GET /v1/events/{id}/proof returns it. */
export interface InclusionProof {
  event_id: string;
  leaf_index: number;
  tree_size: number;
  leaf_hash: string;
  root: string;
  audit_path: string[];
  checkpoint: { tree_size: number; root: string; note: string; key_name: string; key_id: string; signed_at: string } | null;
}

/**
 * Checks an entry's own hashes: the content digest recomputed from `event` and `salt` (unless
 * erased, when the digest is taken as given) and the leaf hash of its canonical entry. Throws a
 * VerificationError: `malformed`, `content_digest` or `leaf_hash`.
 */
export function verifyEntryHashes(entry: Entry): void {
  if (!isHash(entry.content_digest) || !isHash(entry.leaf_hash)) {
    throw new VerificationError("malformed", `entry ${entry.id}: its hashes are not lowercase hex of 32 bytes`);
  }
  if (entry.erased) {
    if (entry.event !== null || entry.salt !== null) {
      throw new VerificationError("malformed", `entry ${entry.id} is marked erased but carries content`);
    }
  } else {
    if (entry.event === null || typeof entry.event !== "object" || typeof entry.salt !== "string") {
      throw new VerificationError("malformed", `entry ${entry.id} is not erased but lacks its event or salt`);
    }
    const digest = eventContentDigest(decodeBase64(entry.salt, "salt"), entry.event).toString("hex");
    if (digest !== entry.content_digest) {
      throw new VerificationError("content_digest", `entry ${entry.id} (seq ${entry.seq}): the event and salt do not hash to its content digest`);
    }
  }
  const leaf = entryLeafHash(entry).toString("hex");
  if (leaf !== entry.leaf_hash) {
    throw new VerificationError("leaf_hash", `entry ${entry.id} (seq ${entry.seq}): its fields do not hash to its leaf hash`);
  }
}

/**
 * Verifies an entry end to end against a verified checkpoint: its own hashes, then that `proof`
 * is for this entry (same id, leaf index = seq, same leaf hash) at the checkpoint's size, and
 * that its audit path leads to the checkpoint's signed root. The size and root are taken from
 * the checkpoint, never from the proof response. Throws a VerificationError.
 */
export function verifyEntry(entry: Entry, proof: InclusionProof, checkpoint: VerifiedCheckpoint): void {
  verifyEntryHashes(entry);
  if (proof.event_id !== entry.id || proof.leaf_index !== entry.seq || proof.leaf_hash !== entry.leaf_hash) {
    throw new VerificationError("inclusion", `the proof is not for entry ${entry.id} at seq ${entry.seq}`);
  }
  if (proof.tree_size !== checkpoint.size) {
    throw new VerificationError("inclusion", `the proof is for tree size ${proof.tree_size}, the checkpoint for ${checkpoint.size}`);
  }
  if (!Array.isArray(proof.audit_path)) {
    throw new VerificationError("malformed", "the proof has no audit_path array");
  }
  const path = proof.audit_path.map((h, i) => decodeHash(h, `audit_path[${i}]`));
  verifyInclusion(entry.seq, checkpoint.size, decodeHash(entry.leaf_hash, "leaf_hash"), path, checkpoint.root);
}
