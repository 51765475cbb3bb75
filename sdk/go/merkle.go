package auditlog

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrProofInvalid is wrapped by every inclusion or consistency proof failure.
var ErrProofInvalid = errors.New("proof invalid")

// MerkleRoot computes the RFC 9162 Merkle tree hash of the given leaf hashes, in O(log n)
// memory beyond the slice. The empty tree's root is [EmptyRoot].
func MerkleRoot(leaves []Hash) Hash {
	var r RangeHasher
	for _, leaf := range leaves {
		_ = r.Append(0, leaf)
	}
	return r.Root()
}

// RangeHasher rebuilds a Merkle root from perfect subtrees given left to right, starting at
// leaf 0, keeping only the O(log n) subtrees of the range so far (a compact range). It is how
// an export's rows and proof nodes are merged into the checkpoint's root.
type RangeHasher struct {
	size  uint64
	stack []rangeNode
}

type rangeNode struct {
	level uint
	hash  Hash
}

// Size is the number of leaves covered so far.
func (r *RangeHasher) Size() uint64 { return r.size }

// Append adds the perfect subtree of 2^level leaves starting at leaf Size(). The subtree must be
// aligned: Size() must be a multiple of 2^level.
func (r *RangeHasher) Append(level uint, hash Hash) error {
	if level > 62 {
		return fmt.Errorf("node level %d is too large", level)
	}
	width := uint64(1) << level
	if r.size%width != 0 {
		return fmt.Errorf("a node of level %d cannot start at leaf %d (not aligned)", level, r.size)
	}
	if r.size+width < r.size {
		return errors.New("the tree size overflows")
	}
	// Size() is a multiple of 2^level, so every subtree on the stack is at least as big; merge
	// equal neighbours like a binary carry.
	node := rangeNode{level, hash}
	for len(r.stack) > 0 && r.stack[len(r.stack)-1].level == node.level {
		left := r.stack[len(r.stack)-1]
		r.stack = r.stack[:len(r.stack)-1]
		node = rangeNode{node.level + 1, NodeHash(left.hash, node.hash)}
	}
	r.stack = append(r.stack, node)
	r.size += width
	return nil
}

// Root returns the Merkle tree hash of the leaves so far.
func (r *RangeHasher) Root() Hash {
	if len(r.stack) == 0 {
		return EmptyRoot
	}
	root := r.stack[len(r.stack)-1].hash
	for i := len(r.stack) - 2; i >= 0; i-- {
		root = NodeHash(r.stack[i].hash, root)
	}
	return root
}

// RootFromInclusionProof computes the root implied by an RFC 9162 audit path (section 2.1.3.2).
func RootFromInclusionProof(index, size uint64, leaf Hash, path []Hash) (Hash, error) {
	if index >= size {
		return Hash{}, fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrProofInvalid, index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range path {
		if sn == 0 {
			return Hash{}, fmt.Errorf("%w: the audit path is longer than the tree is deep", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, fmt.Errorf("%w: the audit path is too short", ErrProofInvalid)
	}
	return r, nil
}

// VerifyInclusion checks an RFC 9162 inclusion proof: the leaf at index is in the tree of the
// given size with this root. Take size and root from a verified checkpoint.
func VerifyInclusion(index, size uint64, leaf Hash, path []Hash, root Hash) error {
	got, err := RootFromInclusionProof(index, size, leaf, path)
	if err != nil {
		return err
	}
	if got != root {
		return fmt.Errorf("%w: the audit path leads to root %s, not %s", ErrProofInvalid, got, root)
	}
	return nil
}

// VerifyConsistency checks an RFC 9162 consistency proof (section 2.1.4.2): the tree of oldSize
// leaves with oldRoot is a prefix of the tree of newSize leaves with newRoot.
func VerifyConsistency(oldSize, newSize uint64, oldRoot, newRoot Hash, proof []Hash) error {
	switch {
	case oldSize > newSize:
		return fmt.Errorf("%w: old size %d is larger than new size %d", ErrProofInvalid, oldSize, newSize)
	case oldSize == newSize:
		if len(proof) != 0 {
			return fmt.Errorf("%w: a proof between equal sizes must be empty", ErrProofInvalid)
		}
		if oldRoot != newRoot {
			return fmt.Errorf("%w: equal sizes with different roots", ErrProofInvalid)
		}
		return nil
	case oldSize == 0:
		// The empty tree is a prefix of every tree.
		if len(proof) != 0 {
			return fmt.Errorf("%w: a proof from the empty tree must be empty", ErrProofInvalid)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: the proof is empty", ErrProofInvalid)
	}
	path := proof
	if bits.OnesCount64(oldSize) == 1 {
		path = append([]Hash{oldRoot}, proof...)
	}
	fn, sn := oldSize-1, newSize-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: the proof is too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: the proof is too short", ErrProofInvalid)
	}
	if fr != oldRoot {
		return fmt.Errorf("%w: the proof does not lead to the old root", ErrProofInvalid)
	}
	if sr != newRoot {
		return fmt.Errorf("%w: the proof does not lead to the new root", ErrProofInvalid)
	}
	return nil
}
