/**
 * @audit-log/client: send events to the audit log, query them, and verify everything it returns
 * offline: hashes, Merkle proofs, signed checkpoints, receipts and export bundles.
 */

export { ApiError, NetworkError, VerificationError } from "./errors.js";
export { jcs, jcsText } from "./jcs.js";
export { parseStrictJson, StrictJsonError, type StrictJsonFault } from "./strict-json.js";
export { decodeBase64Strict, decodeHash, isHash } from "./encoding.js";
export {
  canonicalEntry,
  chainLink,
  chainLinkHex,
  contentDigest,
  entryLeafHash,
  eventContentDigest,
  hashChildren,
  hashLeaf,
  sha256,
  ZERO_HASH,
  type EntryFields,
} from "./hash.js";
export { EMPTY_ROOT, merkleRoot, rootFromInclusionProof, RootBuilder, verifyConsistency, verifyInclusion } from "./merkle.js";
export {
  checkpointKey,
  ecdsaKeyId,
  parseCheckpointBody,
  parseVerifierKey,
  verifierKeyString,
  verifyCheckpoint,
  type Checkpoint,
  type CheckpointKey,
  type VerifiedCheckpoint,
} from "./checkpoint.js";
export {
  contentBytes,
  ed25519PrivateKey,
  ed25519PublicKey,
  ed25519RawPublicKey,
  eventContent,
  normalizeEvent,
  normalizeTimestamp,
  signEvent,
  signingBytes,
  type AuditEvent,
  type EventSignature,
  type Outcome,
  type Severity,
} from "./event.js";
export { receiptKeyId, receiptSigningBytes, verifyEventSignature, verifyReceipt, type Receipt } from "./receipt.js";
export { verifyEntry, verifyEntryHashes, type Entry, type InclusionProof } from "./entry.js";
export {
  CSV_COLUMNS,
  verifyExport,
  verifyExportFolder,
  type ExportBundle,
  type ExportFault,
  type ExportFaultCode,
  type ExportManifest,
  type ExportReport,
} from "./export.js";
export { fileSource, type ByteSource } from "./lines.js";
export {
  AuditLogClient,
  parseRetryAfter,
  type Appended,
  type AppendOptions,
  type BatchAppended,
  type CheckpointPublicKey,
  type CheckpointResponse,
  type ClientOptions,
  type ConsistencyProof,
  type EventFilter,
  type EventPage,
  type ExportRequest,
  type ExportStatus,
  type ListOptions,
  type RetryOptions,
} from "./client.js";
