/**
 * Receipts: the service's Ed25519-signed acknowledgement of an accepted event. The signature
 * covers the JCS of the receipt without its `sig` member; `key_id` is the hex of the first 8
 * bytes of SHA-256 of the raw 32-byte public key.
 */

import { verify as cryptoVerify } from "node:crypto";
import { bytesFrom, decodeBase64Strict } from "./encoding.js";
import { ed25519PublicKey } from "./event.js";
import { VerificationError } from "./errors.js";
import { sha256 } from "./hash.js";
import { jcs } from "./jcs.js";

/** A signed receipt as the API returns it. */
export interface Receipt {
  tenant_id: string;
  event_id: string;
  seq: number;
  leaf_hash: string;
  chain_hash: string;
  received_at: string;
  key_id: string;
  sig: string;
}

/** A receipt key's id: hex of the first 8 bytes of SHA-256 of the raw public key. */
export function receiptKeyId(rawPublicKey: Uint8Array | string): string {
  return sha256(bytesFrom(rawPublicKey, "receipt public key")).subarray(0, 8).toString("hex");
}

/** The bytes a receipt's signature covers: JCS of every member but `sig`. */
export function receiptSigningBytes(receipt: Receipt): Buffer {
  return jcs({
    tenant_id: receipt.tenant_id,
    event_id: receipt.event_id,
    seq: receipt.seq,
    leaf_hash: receipt.leaf_hash,
    chain_hash: receipt.chain_hash,
    received_at: receipt.received_at,
    key_id: receipt.key_id,
  });
}

/**
 * Verifies a receipt with the receipt key its `key_id` names among `publicKeys` (raw 32-byte
 * keys, or their base64, as GET /v1/receipts/public-key lists them). Throws a VerificationError:
 * `unknown_key`, `malformed` or `signature`.
 */
export function verifyReceipt(receipt: Receipt, publicKeys: (Uint8Array | string)[] | Uint8Array | string): void {
  const keys = Array.isArray(publicKeys) ? publicKeys : [publicKeys];
  const raw = keys.map((k) => bytesFrom(k, "receipt public key")).find((k) => receiptKeyId(k) === receipt.key_id);
  if (raw === undefined) {
    throw new VerificationError("unknown_key", `the receipt names key ${receipt.key_id}, which is not among the trusted receipt keys`);
  }
  const sig = typeof receipt.sig === "string" ? decodeBase64Strict(receipt.sig) : null;
  if (sig === null || sig.length !== 64) {
    throw new VerificationError("malformed", "the receipt signature is not base64 of 64 bytes");
  }
  if (!cryptoVerify(null, receiptSigningBytes(receipt), ed25519PublicKey(raw), sig)) {
    throw new VerificationError("signature", `the receipt of event ${receipt.event_id} (seq ${receipt.seq}) does not match its signature`);
  }
}

/** Verifies a publisher's Ed25519 signature over an event's signing bytes with a raw public key. */
export function verifyEventSignature(signingBytes: Uint8Array, signatureBase64: string, rawPublicKey: Uint8Array | string): boolean {
  const sig = decodeBase64Strict(signatureBase64);
  if (sig === null || sig.length !== 64) return false;
  return cryptoVerify(null, signingBytes, ed25519PublicKey(rawPublicKey), sig);
}
