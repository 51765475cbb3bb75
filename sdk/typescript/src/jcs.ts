/**
 * RFC 8785 JSON Canonicalization Scheme, through the `canonicalize` package (by one of the RFC's
 * authors). Everything this SDK hashes or signs goes through {@link jcs}.
 */

import canonicalize from "canonicalize";
import { VerificationError } from "./errors.js";

/** The JCS text of a JSON value. Throws on values JSON cannot hold (undefined, NaN, lone surrogates). */
export function jcsText(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (e) {
    throw new VerificationError("malformed", `the value has no canonical JSON form: ${(e as Error).message}`);
  }
  if (text === undefined) {
    throw new VerificationError("malformed", "the value has no JSON form");
  }
  return text;
}

/** The JCS bytes (UTF-8) of a JSON value. */
export function jcs(value: unknown): Buffer {
  return Buffer.from(jcsText(value), "utf8");
}
