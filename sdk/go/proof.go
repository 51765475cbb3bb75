package auditlog

import (
	"fmt"
)

// InclusionProof is GET /v1/events/{id}/proof.
type InclusionProof struct {
	EventID    string      `json:"event_id"`
	LeafIndex  uint64      `json:"leaf_index"`
	TreeSize   uint64      `json:"tree_size"`
	LeafHash   Hash        `json:"leaf_hash"`
	Root       Hash        `json:"root"`
	AuditPath  []Hash      `json:"audit_path"`
	Checkpoint *SignedNote `json:"checkpoint"`
}

// ConsistencyProof is GET /v1/proofs/consistency.
type ConsistencyProof struct {
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	FromRoot Hash   `json:"from_root"`
	ToRoot   Hash   `json:"to_root"`
	Proof    []Hash `json:"proof"`
}

// SignedNote is a checkpoint as the API returns it. Only Note is trusted, after
// [VerifyCheckpoint]; the other members are conveniences.
type SignedNote struct {
	TreeSize uint64 `json:"tree_size"`
	Root     Hash   `json:"root"`
	Note     string `json:"note"`
	KeyName  string `json:"key_name"`
	KeyID    string `json:"key_id"`
	SignedAt string `json:"signed_at"`
}

// VerifyEntryInclusion checks a stored entry end to end: its own hashes ([VerifyEntry]), and
// that its leaf is at index seq of the tree a verified checkpoint signs, by the audit path of
// proof. The tree size and root come from the checkpoint, never from the proof response.
func VerifyEntryInclusion(e StoredEntry, proof InclusionProof, checkpoint *VerifiedCheckpoint) error {
	if checkpoint == nil {
		return fmt.Errorf("entry %d: no verified checkpoint to check the proof against", e.Seq)
	}
	if err := VerifyEntry(e); err != nil {
		return err
	}
	if proof.LeafIndex != e.Seq {
		return fmt.Errorf("entry %d: %w: the proof is for leaf index %d", e.Seq, ErrProofInvalid, proof.LeafIndex)
	}
	if proof.LeafHash != e.LeafHash {
		return fmt.Errorf("entry %d: %w: the proof is for leaf hash %s", e.Seq, ErrProofInvalid, proof.LeafHash)
	}
	if proof.TreeSize != checkpoint.Size {
		return fmt.Errorf("entry %d: %w: the proof is for tree size %d, the checkpoint signs %d", e.Seq, ErrProofInvalid, proof.TreeSize, checkpoint.Size)
	}
	if err := VerifyInclusion(e.Seq, checkpoint.Size, e.LeafHash, proof.AuditPath, checkpoint.Root); err != nil {
		return fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	return nil
}
