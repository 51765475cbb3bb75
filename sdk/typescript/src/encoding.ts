/**
 * Strict hex and base64 decoding. Every hash in the log's formats is lowercase hex and every key,
 * salt and signature standard padded base64; Node's Buffer decoders silently skip bad characters,
 * so these checks make each value have exactly one accepted spelling.
 */

import { VerificationError } from "./errors.js";

const HEX_32 = /^[0-9a-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** True when `s` is the lowercase hex of 32 bytes. */
export function isHash(s: unknown): s is string {
  return typeof s === "string" && HEX_32.test(s);
}

/** Decodes lowercase hex of 32 bytes, or throws a `malformed` VerificationError naming `what`. */
export function decodeHash(s: unknown, what: string): Buffer {
  if (!isHash(s)) {
    throw new VerificationError("malformed", `${what} is not the lowercase hex of 32 bytes`);
  }
  return Buffer.from(s, "hex");
}

/** Decodes standard padded base64 (RFC 4648 section 4) with zero trailing bits, or returns null. */
export function decodeBase64Strict(s: string): Buffer | null {
  if (!BASE64.test(s)) {
    return null;
  }
  const bytes = Buffer.from(s, "base64");
  // Non-zero trailing bits decode to the same bytes but are another spelling: refuse them.
  return bytes.toString("base64") === s ? bytes : null;
}

/** Decodes standard base64 or throws a `malformed` VerificationError naming `what`. */
export function decodeBase64(s: unknown, what: string): Buffer {
  const bytes = typeof s === "string" ? decodeBase64Strict(s) : null;
  if (bytes === null) {
    throw new VerificationError("malformed", `${what} is not standard padded base64`);
  }
  return bytes;
}

/** Bytes from a Uint8Array, a Buffer, or a base64 string. */
export function bytesFrom(input: Uint8Array | string, what: string): Buffer {
  return typeof input === "string" ? decodeBase64(input, what) : Buffer.from(input);
}
