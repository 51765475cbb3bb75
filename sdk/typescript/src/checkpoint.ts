/**
 * Checkpoints: C2SP tlog-checkpoint bodies inside C2SP signed notes, signed with ECDSA P-256
 * (signed-note signature type 0x02, as in transparency-dev/witness).
 *
 * - key ID: the first 4 bytes of SHA-256 over the DER SubjectPublicKeyInfo;
 * - signature line: `— <key name> <base64(key ID || DER ECDSA signature)>`;
 * - the signature covers SHA-256 of the note body, including its final newline;
 * - signatures by other keys (witness cosignatures) are ignored, every signature by a trusted key
 *   must verify, and at least one must be present.
 *
 * Error codes (VerificationError.code): `malformed`, `no_signature`, `signature`, `public_key`.
 */

import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { decodeBase64Strict } from "./encoding.js";
import { VerificationError } from "./errors.js";
import { sha256 } from "./hash.js";

/** The signed-note signature type of ECDSA keys: the first byte of a verifier key's material. */
export const SIGNATURE_TYPE_ECDSA = 0x02;

/** signed-note asks verifiers to accept at least 16 signatures; like Go's note package, stop at 100. */
export const MAX_SIGNATURES = 100;

const SIGNATURE_PREFIX = "\u2014 ";
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
const TIMESTAMP_PREFIX = "timestamp ";

/** A trusted checkpoint key: its name and the DER SPKI of its P-256 public key. */
export interface CheckpointKey {
  keyName: string;
  /** DER SubjectPublicKeyInfo. */
  publicKey: Buffer;
  /** First 4 bytes of SHA-256 of `publicKey`. */
  keyId: Buffer;
  /** Node's key object, for crypto.verify. */
  keyObject: KeyObject;
}

/** The parsed body of a checkpoint. */
export interface Checkpoint {
  origin: string;
  /** Tree size. */
  size: number;
  /** The Merkle root, 32 bytes. */
  root: Buffer;
  /** The root as lowercase hex. */
  rootHex: string;
  /** Extension lines, without their newline. */
  extensions: string[];
  /** The `timestamp` extension (unix seconds), when present. */
  timestamp: number | undefined;
  /** The note body that the signature covers. */
  body: string;
}

/** The signed-note key ID of an ECDSA key: `SHA-256(DER SPKI)[0..4]`. */
export function ecdsaKeyId(spkiDer: Uint8Array): Buffer {
  return sha256(spkiDer).subarray(0, 4);
}

/** Checks a signed-note key name: non-empty, no whitespace, no `+`, no control character. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !CONTROL.test(name) && !name.includes("\n");
}

/**
 * Builds a trusted key from its name and its public key: DER SPKI bytes, base64 of them, or a PEM
 * `-----BEGIN PUBLIC KEY-----` block. Throws a VerificationError (`public_key`) unless it is P-256.
 */
export function checkpointKey(keyName: string, publicKey: Uint8Array | string): CheckpointKey {
  if (!isValidKeyName(keyName)) {
    throw new VerificationError("public_key", `key name ${JSON.stringify(keyName)} is empty or contains a space or '+'`);
  }
  let der: Buffer;
  if (typeof publicKey === "string" && publicKey.includes("-----BEGIN")) {
    const body = publicKey.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
    const decoded = decodeBase64Strict(body);
    if (decoded === null) throw new VerificationError("public_key", "the PEM public key is not valid base64");
    der = decoded;
  } else if (typeof publicKey === "string") {
    const decoded = decodeBase64Strict(publicKey);
    if (decoded === null) throw new VerificationError("public_key", "the public key is not standard base64 of a DER SPKI");
    der = decoded;
  } else {
    der = Buffer.from(publicKey);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: der, format: "der", type: "spki" });
  } catch {
    throw new VerificationError("public_key", "the public key is not a DER SubjectPublicKeyInfo");
  }
  if (keyObject.asymmetricKeyType !== "ec" || keyObject.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new VerificationError("public_key", "the public key is not an ECDSA P-256 key");
  }
  return { keyName, publicKey: der, keyId: ecdsaKeyId(der), keyObject };
}

/**
 * Parses a signed-note verifier key string, `<key name>+<key ID, 8 hex>+base64(0x02 || DER SPKI)`,
 * checking the type byte and that the key ID is the key's.
 */
export function parseVerifierKey(verifierKey: string): CheckpointKey {
  // The name and the key ID hold no '+'; the base64 key material may.
  const first = verifierKey.indexOf("+");
  const second = first < 0 ? -1 : verifierKey.indexOf("+", first + 1);
  if (second < 0) {
    throw new VerificationError("public_key", "a verifier key is <name>+<key id hex>+<base64 key>");
  }
  const name = verifierKey.slice(0, first);
  const idHex = verifierKey.slice(first + 1, second);
  const material = verifierKey.slice(second + 1);
  if (!/^[0-9a-f]{8}$/.test(idHex)) {
    throw new VerificationError("public_key", "the verifier key's key ID is not 8 lowercase hex digits");
  }
  const bytes = decodeBase64Strict(material);
  if (bytes === null || bytes.length < 2) {
    throw new VerificationError("public_key", "the verifier key's key material is not base64");
  }
  if (bytes[0] !== SIGNATURE_TYPE_ECDSA) {
    throw new VerificationError("public_key", `the verifier key has signature type 0x${bytes[0]!.toString(16).padStart(2, "0")}, not 0x02 (ECDSA)`);
  }
  const key = checkpointKey(name, bytes.subarray(1));
  if (key.keyId.toString("hex") !== idHex) {
    throw new VerificationError("public_key", `the verifier key's key ID ${idHex} is not its key's (${key.keyId.toString("hex")})`);
  }
  return key;
}

/** The verifier key string of a trusted key. */
export function verifierKeyString(key: CheckpointKey): string {
  return `${key.keyName}+${key.keyId.toString("hex")}+${Buffer.concat([Buffer.from([SIGNATURE_TYPE_ECDSA]), key.publicKey]).toString("base64")}`;
}

function parseDecimal(s: string): number | null {
  if (!/^(0|[1-9][0-9]*)$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

function malformed(message: string): never {
  throw new VerificationError("malformed", message);
}

/** Parses a checkpoint body strictly (origin, size, base64 root, extension lines; each ending in `\n`). */
export function parseCheckpointBody(body: string): Checkpoint {
  if (!body.endsWith("\n")) malformed("the checkpoint text does not end with a newline");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) malformed("a checkpoint needs an origin, a tree size and a root hash line");
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) malformed("the origin line is empty");
  if (CONTROL.test(body)) malformed("the checkpoint text contains a control character");
  const size = parseDecimal(sizeLine);
  if (size === null) malformed(`tree size ${JSON.stringify(sizeLine)} is not a decimal number without leading zeros`);
  const root = decodeBase64Strict(rootLine);
  if (root === null || root.length !== 32) malformed("the root hash line is not the padded base64 of 32 bytes");
  let timestamp: number | undefined;
  extensions.forEach((line, i) => {
    if (line.length === 0) malformed(`extension line ${i} is empty`);
    if (line.startsWith(TIMESTAMP_PREFIX)) {
      const t = parseDecimal(line.slice(TIMESTAMP_PREFIX.length));
      if (t === null) malformed(`extension line ${JSON.stringify(line)} is not \`timestamp <unix seconds>\``);
      if (timestamp !== undefined) malformed("more than one timestamp extension line");
      timestamp = t;
    }
  });
  return { origin, size, root, rootHex: root.toString("hex"), extensions, timestamp, body };
}

/** A checkpoint that verified, and the trusted key that signed it. */
export interface VerifiedCheckpoint extends Checkpoint {
  /** The note, byte for byte. */
  note: string;
  /** The trusted key (first of them, if several signed) whose signature verified. */
  signedBy: CheckpointKey;
  /** Every trusted key whose signature is on the note (all verified). */
  signers: CheckpointKey[];
}

/**
 * Verifies a signed note against one or more trusted keys and returns the checkpoint it carries.
 * Each signature line is matched to a trusted key by name and key ID; lines of other keys are
 * ignored. Throws a VerificationError: `malformed`, `no_signature` or `signature`.
 */
export function verifyCheckpoint(note: string, trusted: CheckpointKey | CheckpointKey[]): VerifiedCheckpoint {
  const keys = Array.isArray(trusted) ? trusted : [trusted];
  if (keys.length === 0) throw new VerificationError("public_key", "no trusted checkpoint key was given");
  if (CONTROL.test(note)) malformed("the note contains a control character");
  // The text ends at the last blank line; its own final newline stays with the text.
  const split = note.lastIndexOf("\n\n");
  if (split < 0) malformed("no blank line separates the note text from its signatures");
  const body = note.slice(0, split + 1);
  const signatures = note.slice(split + 2);
  if (!signatures.endsWith("\n")) malformed("the signature lines do not end with a newline");
  const lines = signatures.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) malformed(`the note has more than ${MAX_SIGNATURES} signatures`);

  const signers: CheckpointKey[] = [];
  lines.forEach((line, i) => {
    if (!line.startsWith(SIGNATURE_PREFIX)) malformed(`signature line ${i} does not start with an em dash and a space`);
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) malformed(`signature line ${i} has no signature after the key name`);
    const name = rest.slice(0, space);
    if (!isValidKeyName(name)) malformed(`signature line ${i} has an invalid key name`);
    const decoded = decodeBase64Strict(rest.slice(space + 1));
    if (decoded === null || decoded.length < 5) malformed(`signature line ${i} is not base64 of a key ID and a signature`);
    const id = decoded.subarray(0, 4);
    const key = keys.find((k) => k.keyName === name && k.keyId.equals(id));
    if (key === undefined) return; // someone else's signature, such as a witness cosignature
    let valid: boolean;
    try {
      valid = cryptoVerify("sha256", Buffer.from(body, "utf8"), { key: key.keyObject, dsaEncoding: "der" }, decoded.subarray(4));
    } catch {
      valid = false; // not a DER ECDSA signature at all
    }
    if (!valid) {
      throw new VerificationError("signature", `the signature by key ${name} (key ID ${id.toString("hex")}) does not verify`);
    }
    if (!signers.includes(key)) signers.push(key);
  });
  const signedBy = signers[0];
  if (signedBy === undefined) {
    const names = keys.map((k) => `${k.keyName} (key ID ${k.keyId.toString("hex")})`).join(", ");
    throw new VerificationError("no_signature", `the note has no signature by a trusted key: ${names}`);
  }
  return { ...parseCheckpointBody(body), note, signedBy, signers };
}
