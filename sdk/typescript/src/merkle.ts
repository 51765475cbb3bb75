/**
 * RFC 9162 Merkle trees: the root over leaf hashes, and verification of inclusion proofs (section
 * 2.1.3.2) and consistency proofs (section 2.1.4.2). Sizes and indexes are handled as BigInt
 * internally, so no bit operation ever truncates them to 32 bits.
 */

import { VerificationError } from "./errors.js";
import { hashChildren, sha256 } from "./hash.js";

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = sha256();

type Bytes = Uint8Array;

function toIndex(n: number | bigint, what: string): bigint {
  if (typeof n === "bigint") {
    if (n < 0n) throw new VerificationError("malformed", `${what} must not be negative`);
    return n;
  }
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new VerificationError("malformed", `${what} must be a non-negative integer, not ${n}`);
  }
  return BigInt(n);
}

function equal(a: Bytes, b: Bytes): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/**
 * Accumulates leaf hashes (or aligned perfect subtrees) left to right and gives the RFC 9162 root
 * of everything pushed so far, in O(log n) memory: the stack holds one perfect subtree per set
 * bit of the size.
 */
export class RootBuilder {
  private readonly stack: { level: number; hash: Buffer }[] = [];
  private count = 0n;

  /** Number of leaves covered so far. */
  get size(): bigint {
    return this.count;
  }

  /** Appends one leaf hash. */
  pushLeaf(hash: Bytes): void {
    this.pushNode(0, hash);
  }

  /**
   * Appends the perfect subtree of 2^level leaves starting at the current size. Throws when the
   * current size is not a multiple of 2^level (the node would not be aligned).
   */
  pushNode(level: number, hash: Bytes): void {
    const width = 1n << BigInt(level);
    if (this.count % width !== 0n) {
      throw new VerificationError("malformed", `a node of level ${level} cannot start at leaf ${this.count}`);
    }
    let node: { level: number; hash: Buffer } = { level, hash: Buffer.from(hash) };
    this.count += width;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (top === undefined || top.level !== node.level) break;
      this.stack.pop();
      node = { level: node.level + 1, hash: hashChildren(top.hash, node.hash) };
    }
    if (this.stack.length > 0 && this.stack[this.stack.length - 1]!.level < node.level) {
      throw new VerificationError("malformed", `a node of level ${level} follows a smaller subtree`);
    }
    this.stack.push(node);
  }

  /** The RFC 9162 root of the leaves pushed so far. */
  root(): Buffer {
    let i = this.stack.length - 1;
    if (i < 0) return EMPTY_ROOT;
    let hash: Buffer = this.stack[i]!.hash;
    for (i -= 1; i >= 0; i--) {
      hash = hashChildren(this.stack[i]!.hash, hash);
    }
    return hash;
  }
}

/** The RFC 9162 root over `leaves` (leaf hashes, in order). */
export function merkleRoot(leaves: Iterable<Bytes>): Buffer {
  const b = new RootBuilder();
  for (const leaf of leaves) b.pushLeaf(leaf);
  return b.root();
}

/**
 * The root an inclusion proof leads to (RFC 9162 section 2.1.3.2), or throws a VerificationError
 * with code `inclusion` when the proof has the wrong shape for the index and size.
 */
export function rootFromInclusionProof(leafIndex: number | bigint, treeSize: number | bigint, leafHash: Bytes, path: Bytes[]): Buffer {
  const index = toIndex(leafIndex, "leaf index");
  const size = toIndex(treeSize, "tree size");
  if (index >= size) {
    throw new VerificationError("inclusion", `leaf index ${index} is not below tree size ${size}`);
  }
  let fn = index;
  let sn = size - 1n;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of path) {
    if (sn === 0n) {
      throw new VerificationError("inclusion", "the audit path is longer than the tree allows");
    }
    if ((fn & 1n) === 1n || fn === sn) {
      r = hashChildren(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = hashChildren(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) {
    throw new VerificationError("inclusion", "the audit path is shorter than the tree needs");
  }
  return r;
}

/** Checks an RFC 9162 inclusion proof; throws a VerificationError (code `inclusion`) when it fails. */
export function verifyInclusion(leafIndex: number | bigint, treeSize: number | bigint, leafHash: Bytes, path: Bytes[], root: Bytes): void {
  const computed = rootFromInclusionProof(leafIndex, treeSize, leafHash, path);
  if (!equal(computed, root)) {
    throw new VerificationError("inclusion", `the audit path of leaf ${leafIndex} does not lead to the root of tree size ${treeSize}`);
  }
}

/**
 * Checks an RFC 9162 consistency proof (section 2.1.4.2) that the tree of `oldSize` leaves with
 * `oldRoot` is a prefix of the tree of `newSize` leaves with `newRoot`; throws a VerificationError
 * (code `consistency`) when it fails.
 */
export function verifyConsistency(oldSize: number | bigint, newSize: number | bigint, oldRoot: Bytes, newRoot: Bytes, proof: Bytes[]): void {
  const fail = (why: string): never => {
    throw new VerificationError("consistency", `consistency proof from ${oldSize} to ${newSize}: ${why}`);
  };
  const first = toIndex(oldSize, "old size");
  const second = toIndex(newSize, "new size");
  if (first > second) fail("the old size is larger than the new size");
  if (first === second) {
    if (proof.length !== 0) fail("the proof between equal sizes must be empty");
    if (!equal(oldRoot, newRoot)) fail("the roots of equal sizes differ");
    return;
  }
  if (first === 0n) {
    // Every tree extends the empty tree; RFC 9162 proves nothing for it.
    if (proof.length !== 0) fail("the proof from the empty tree must be empty");
    if (!equal(oldRoot, EMPTY_ROOT)) fail("the old root is not the empty tree's root");
    return;
  }
  if (proof.length === 0) fail("the proof is empty");
  let path: Buffer[] = proof.map((p) => Buffer.from(p));
  if ((first & (first - 1n)) === 0n) {
    path = [Buffer.from(oldRoot), ...path];
  }
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr: Buffer = path[0]!;
  let sr: Buffer = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0n) fail("the proof is longer than the trees allow");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("the proof is shorter than the trees need");
  if (!equal(fr, oldRoot)) fail("it does not lead to the old root");
  if (!equal(sr, newRoot)) fail("it does not lead to the new root");
}
