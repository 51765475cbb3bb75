/**
 * The log's hashes (docs/FORMATS.md): content digest, canonical entry, leaf hash, chain link, and
 * the Merkle tree's interior node. All SHA-256.
 */

import { createHash } from "node:crypto";
import { decodeHash } from "./encoding.js";
import { jcs } from "./jcs.js";

/** SHA-256 over the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(p);
  }
  return h.digest();
}

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** The chain hash before seq 0: 32 zero bytes. */
export const ZERO_HASH: Buffer = Buffer.alloc(32);

/** `SHA-256(salt || content)`, content being the canonical (JCS) bytes of the event. */
export function contentDigest(salt: Uint8Array, content: Uint8Array): Buffer {
  return sha256(salt, content);
}

/** The content digest of an event object: `SHA-256(salt || JCS(event))`. */
export function eventContentDigest(salt: Uint8Array, event: unknown): Buffer {
  return sha256(salt, jcs(event));
}

/** The server-assigned fields of an entry that its leaf commits to. */
export interface EntryFields {
  tenant_id: string;
  seq: number;
  id: string;
  received_at: string;
  /** Lowercase hex. */
  content_digest: string;
}

/** The canonical entry: JCS of the server-assigned fields, the digest and `"v":1`. */
export function canonicalEntry(e: EntryFields): Buffer {
  return jcs({
    content_digest: e.content_digest,
    id: e.id,
    received_at: e.received_at,
    seq: e.seq,
    tenant_id: e.tenant_id,
    v: 1,
  });
}

/** `SHA-256(0x00 || data)`: an RFC 9162 leaf hash. */
export function hashLeaf(data: Uint8Array): Buffer {
  return sha256(LEAF_PREFIX, data);
}

/** `SHA-256(0x01 || left || right)`: an RFC 9162 interior node. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(NODE_PREFIX, left, right);
}

/** The leaf hash of an entry: `SHA-256(0x00 || canonical entry)`. */
export function entryLeafHash(e: EntryFields): Buffer {
  return hashLeaf(canonicalEntry(e));
}

/** `SHA-256(previous chain hash || leaf hash)`. */
export function chainLink(previous: Uint8Array, leafHash: Uint8Array): Buffer {
  return sha256(previous, leafHash);
}

/** The chain hash from a hex previous chain hash and a hex leaf hash, as hex. */
export function chainLinkHex(previousHex: string, leafHashHex: string): string {
  return chainLink(decodeHash(previousHex, "previous chain hash"), decodeHash(leafHashHex, "leaf hash")).toString("hex");
}
