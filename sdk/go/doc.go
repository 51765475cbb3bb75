// Package auditlog is the Go client of the tamper-evident audit log service, and an offline
// verifier of everything the service signs and hashes (docs/FORMATS.md of the repository).
//
// The package has two halves that share the format code:
//
//   - Offline verification, which needs no network: RFC 8785 canonical JSON ([Canonicalize]),
//     event content and content digests ([ContentBytes], [ContentDigest]), canonical entries,
//     leaf hashes and the hash chain ([EntryFields], [ChainLink]), RFC 9162 Merkle roots and
//     proofs ([VerifyInclusion], [VerifyConsistency]), signed-note checkpoints
//     ([VerifyCheckpoint]), receipts ([VerifyReceipt]), stored entries ([VerifyEntry]) and
//     export bundles ([VerifyExport], streaming, in O(log n) memory).
//   - A small HTTP client ([Client]) that sends events (signed with [SignEvent] when the tenant
//     requires publisher signatures), pages through queries, fetches proofs and checkpoints and
//     verifies them, and requests, downloads and verifies exports.
//
// Hashes are [Hash] values (32 bytes); on the wire they are lowercase hex. Every verification
// failure is an error; nothing is logged, and API keys never appear in errors.
package auditlog
