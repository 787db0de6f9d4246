// Package receipt verifies Maestro receipts offline. This file owns the transparency-log
// math and formats: RFC 6962/9162 hashes, inclusion and consistency proof verification, and
// C2SP checkpoints in signed notes (mirroring src/tlog/).
package receipt

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// MaxProofHashes is the longest proof accepted.
const MaxProofHashes = 128

// LeafHash is the RFC 6962 leaf hash: SHA-256(0x00 || data).
func LeafHash(data []byte) [32]byte {
	return sha256.Sum256(append([]byte{0}, data...))
}

// NodeHash is the RFC 6962 interior hash: SHA-256(0x01 || left || right).
func NodeHash(left, right [32]byte) [32]byte {
	b := make([]byte, 0, 65)
	b = append(b, 1)
	b = append(b, left[:]...)
	b = append(b, right[:]...)
	return sha256.Sum256(b)
}

// ParseHexHash parses a 64-digit hex hash.
func ParseHexHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("%q is not a 64-digit hex hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// RootFromInclusionProof computes the root an inclusion proof leads to (RFC 9162 2.1.3.2).
func RootFromInclusionProof(index, size uint64, leaf [32]byte, proof [][32]byte) ([32]byte, error) {
	if len(proof) > MaxProofHashes {
		return leaf, fmt.Errorf("%d hashes is too long", len(proof))
	}
	if index >= size {
		return leaf, fmt.Errorf("leaf index %d is not below tree size %d", index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return r, errors.New("inclusion proof is too long")
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
		return r, errors.New("inclusion proof is too short")
	}
	return r, nil
}

// VerifyInclusion checks that leaf (a leaf hash) is at index in the tree of size with root.
func VerifyInclusion(proof [][32]byte, size uint64, root [32]byte, index uint64, leaf [32]byte) error {
	got, err := RootFromInclusionProof(index, size, leaf, proof)
	if err != nil {
		return fmt.Errorf("invalid proof: %v", err)
	}
	if got != root {
		return fmt.Errorf("invalid proof: inclusion of leaf %d in tree of size %d: invalid transparency proof", index, size)
	}
	return nil
}

// VerifyConsistency checks that the tree of oldSize is a prefix of the tree of newSize
// (RFC 9162 2.1.4.2).
func VerifyConsistency(proof [][32]byte, oldSize uint64, oldRoot [32]byte, newSize uint64, newRoot [32]byte) error {
	if len(proof) > MaxProofHashes {
		return fmt.Errorf("%d hashes is too long", len(proof))
	}
	if oldSize == 0 || oldSize > newSize {
		return fmt.Errorf("sizes %d -> %d are not a valid pair", oldSize, newSize)
	}
	if oldSize == newSize {
		if len(proof) != 0 || oldRoot != newRoot {
			return errors.New("equal sizes need an empty proof and equal roots")
		}
		return nil
	}
	if len(proof) == 0 {
		return errors.New("empty consistency proof")
	}
	path := proof
	if oldSize&(oldSize-1) == 0 {
		path = append([][32]byte{oldRoot}, proof...)
	}
	fn, sn := oldSize-1, newSize-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return errors.New("consistency proof is too long")
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
		return errors.New("consistency proof is too short")
	}
	if fr != oldRoot || sr != newRoot {
		return fmt.Errorf("consistency %d -> %d: the proof leads to other roots", oldSize, newSize)
	}
	return nil
}

// Checkpoint is a log's origin, size and root hash.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
}

var errMalformedCheckpoint = errors.New("malformed checkpoint: expected origin, size and base64 root hash lines")

// ParseCheckpointBody parses a checkpoint body without checking any signature.
func ParseCheckpointBody(body string) (Checkpoint, error) {
	var cp Checkpoint
	if !strings.HasSuffix(body, "\n") {
		return cp, errMalformedCheckpoint
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) < 3 {
		return cp, errMalformedCheckpoint
	}
	for _, l := range lines {
		if l == "" {
			return cp, errMalformedCheckpoint
		}
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return cp, errMalformedCheckpoint
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return cp, errMalformedCheckpoint
	}
	cp.Origin, cp.Size = lines[0], size
	copy(cp.Root[:], root)
	return cp, nil
}

// NoteSignature is one signature line of a signed note.
type NoteSignature struct {
	Name      string
	KeyID     uint32
	Signature []byte
}

// SplitNote splits a C2SP signed note into its text (with its final newline) and
// signatures.
func SplitNote(text string) (string, []NoteSignature, error) {
	malformed := errors.New("malformed checkpoint: not a signed note")
	if len(text) > 1000000 {
		return "", nil, malformed
	}
	for _, r := range text {
		if r < 0x20 && r != '\n' {
			return "", nil, malformed
		}
	}
	cut := strings.LastIndex(text, "\n\n")
	if cut < 0 {
		return "", nil, malformed
	}
	body, sigsText := text[:cut+1], text[cut+2:]
	if !strings.HasSuffix(sigsText, "\n") {
		return "", nil, malformed
	}
	var sigs []NoteSignature
	for _, line := range strings.Split(strings.TrimSuffix(sigsText, "\n"), "\n") {
		rest := strings.TrimPrefix(line, "\u2014 ")
		if rest == line {
			return "", nil, malformed
		}
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			return "", nil, malformed
		}
		name, b64 := rest[:sp], rest[sp+1:]
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || b64 == "" || len(raw) < 5 || name == "" || strings.Contains(name, "+") || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
			return "", nil, malformed
		}
		sigs = append(sigs, NoteSignature{name, binary.BigEndian.Uint32(raw[:4]), raw[4:]})
		if len(sigs) > 100 {
			return "", nil, malformed
		}
	}
	return body, sigs, nil
}

// OpenCheckpoint verifies a signed checkpoint with one trusted key under a key name (the
// log origin) and parses it.
func OpenCheckpoint(text string, key *PublicKey, name string) (Checkpoint, error) {
	body, sigs, err := SplitNote(text)
	if err != nil {
		return Checkpoint{}, err
	}
	id := key.NoteKeyID(name)
	verified := false
	seen := false
	for _, s := range sigs {
		if s.Name != name || s.KeyID != id || seen {
			continue
		}
		seen = true
		if !key.Verify([]byte(body), s.Signature) {
			return Checkpoint{}, fmt.Errorf("checkpoint signature: invalid signature for key %s+%08x", name, id)
		}
		verified = true
	}
	if !verified {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: no signature by the trusted key %q (id %08x)", name, id)
	}
	return ParseCheckpointBody(body)
}

// Body is the checkpoint text that is signed.
func (c Checkpoint) Body() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}
