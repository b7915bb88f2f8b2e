package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
)

// Leaf is one stream's head as a seal records it: the stream, the version of its last event at
// or before the seal's position, and that event's hash.
type Leaf struct {
	Stream  string
	Version int64
	Hash    []byte
}

// leafTag and nodeTag separate leaf hashes from interior hashes (RFC 6962 §2.1), so no interior
// node can be passed off as a leaf.
const (
	leafTag = 0x00
	nodeTag = 0x01
)

// leafHash is sha256(0x00 || len(stream) || stream || version || len(hash) || hash), lengths and
// version as 8-byte big-endian integers.
func leafHash(l Leaf) []byte {
	h := sha256.New()
	b := make([]byte, 0, 1+8+len(l.Stream)+8+8+len(l.Hash))
	b = append(b, leafTag)
	b = binary.BigEndian.AppendUint64(b, uint64(len(l.Stream)))
	b = append(b, l.Stream...)
	b = binary.BigEndian.AppendUint64(b, uint64(l.Version))
	b = binary.BigEndian.AppendUint64(b, uint64(len(l.Hash)))
	b = append(b, l.Hash...)
	h.Write(b)
	return h.Sum(nil)
}

// sortLeaves orders leaves by stream ID, byte by byte: the order of the tree, independent of
// any database collation.
func sortLeaves(leaves []Leaf) {
	slices.SortFunc(leaves, func(a, b Leaf) int { return strings.Compare(a.Stream, b.Stream) })
}

// MerkleRoot is the RFC 6962 Merkle tree hash of leaves in stream order (sorted first, on a
// copy): sha256() for none, the leaf hash for one, otherwise sha256(0x01 || left || right)
// where the left subtree holds the largest power of two of leaves smaller than their number.
func MerkleRoot(leaves []Leaf) []byte {
	sorted := slices.Clone(leaves)
	sortLeaves(sorted)
	if len(sorted) == 0 {
		sum := sha256.Sum256(nil)
		return sum[:]
	}
	hashes := make([][]byte, len(sorted))
	for i, l := range sorted {
		hashes[i] = leafHash(l)
	}
	return treeHash(hashes)
}

func treeHash(hashes [][]byte) []byte {
	if len(hashes) == 1 {
		return hashes[0]
	}
	k := 1 << (bits.Len(uint(len(hashes)-1)) - 1) // largest power of two < len
	h := sha256.New()
	h.Write([]byte{nodeTag})
	h.Write(treeHash(hashes[:k]))
	h.Write(treeHash(hashes[k:]))
	return h.Sum(nil)
}
