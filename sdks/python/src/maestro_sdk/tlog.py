"""Transparency-log math and formats, offline: RFC 6962/9162 leaf and node hashes, inclusion
and consistency proof verification, and C2SP checkpoints in signed notes (parsing and
signature checking with a :class:`~maestro_sdk.keys.PublicKey`). Mirrors ``src/tlog/``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .actions import rust_debug

if TYPE_CHECKING:
    from .keys import PublicKey

MAX_PROOF_HASHES = 128
"""Longest proof accepted."""
MAX_NOTE_SIZE = 1_000_000
MAX_NOTE_SIGNATURES = 100


class ProofError(ValueError):
    """A proof did not verify or is malformed."""


class CheckpointError(ValueError):
    """A checkpoint is malformed or its signature does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def parse_hex_hash(text: str) -> bytes:
    """A 64-digit hex hash (either case)."""
    if len(text) != 64:
        raise ProofError(f"{text!r} is not a 64-digit hex hash")
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise ProofError(f"{text!r} is not a 64-digit hex hash") from e


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 section 2.1.3.2)."""
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError(f"{len(proof)} hashes is too long")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(proof: Sequence[bytes], size: int, root: bytes, index: int, leaf: bytes) -> None:
    """Checks that ``leaf`` (a leaf hash) is at ``index`` in the tree of ``size`` with ``root``."""
    try:
        got = root_from_inclusion_proof(index, size, leaf, proof)
    except ProofError as e:
        raise ProofError(f"invalid proof: {e}") from e
    if got != root:
        raise ProofError(f"invalid proof: inclusion of leaf {index} in tree of size {size}: invalid transparency proof")


def verify_consistency(
    proof: Sequence[bytes], old_size: int, old_root: bytes, new_size: int, new_root: bytes
) -> None:
    """Checks that the tree of ``old_size`` is a prefix of the tree of ``new_size``
    (RFC 9162 section 2.1.4.2)."""
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError(f"{len(proof)} hashes is too long")
    if old_size == 0 or old_size > new_size:
        raise ProofError(f"sizes {old_size} -> {new_size} are not a valid pair")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root or sr != new_root:
        raise ProofError(f"consistency {old_size} -> {new_size}: the proof leads to other roots")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint: the log's origin, size and root hash."""

    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        """The checkpoint text (the signed body of the note)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()


def parse_checkpoint_body(body: str) -> Checkpoint:
    """Parses a checkpoint body (origin, size, base64 root, extension lines) without checking
    any signature."""
    malformed = CheckpointError("malformed checkpoint: expected origin, size and base64 root hash lines")
    if not body.endswith("\n"):
        raise malformed
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise malformed
    origin, size_text, hash_text = lines[0], lines[1], lines[2]
    if not size_text.isascii() or not size_text.isdigit() or str(int(size_text)) != size_text:
        raise malformed
    size = int(size_text)
    if size > 2**64 - 1:
        raise malformed
    try:
        root = base64.b64decode(hash_text, validate=True)
    except binascii.Error as e:
        raise malformed from e
    if len(root) != 32:
        raise malformed
    return Checkpoint(origin, size, root)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note."""

    name: str
    key_id: int
    signature: bytes


def split_note(text: str) -> tuple[str, list[NoteSignature]]:
    """Splits a C2SP signed note into its text (with its final newline) and signatures."""
    malformed = CheckpointError("malformed checkpoint: not a signed note")
    if len(text.encode("utf-8")) > MAX_NOTE_SIZE:
        raise malformed
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise malformed
    cut = text.rfind("\n\n")
    if cut < 0:
        raise malformed
    body = text[: cut + 1]
    sigs_text = text[cut + 2 :]
    if not sigs_text.endswith("\n"):
        raise malformed
    sigs: list[NoteSignature] = []
    for line in sigs_text[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise malformed
        name, sep, b64 = line[2:].partition(" ")
        if not sep or not b64:
            raise malformed
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error as e:
            raise malformed from e
        if len(raw) < 5 or not name or "+" in name or any(c.isspace() for c in name):
            raise malformed
        sigs.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
        if len(sigs) > MAX_NOTE_SIGNATURES:
            raise malformed
    return body, sigs


def open_checkpoint(text: str, key: "PublicKey", name: str) -> Checkpoint:
    """Verifies a signed checkpoint with one trusted key under a key name (the log origin)
    and parses it; raises :class:`CheckpointError`."""
    body, sigs = split_note(text)
    key_id = key.note_key_id(name)
    verified = False
    seen: set[tuple[str, int]] = set()
    for sig in sigs:
        if sig.name != name or sig.key_id != key_id:
            continue
        if (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        if not key.verify(body.encode("utf-8"), sig.signature):
            raise CheckpointError(f"checkpoint signature: invalid signature for key {name}+{key_id:08x}")
        verified = True
    if not verified:
        raise CheckpointError(
            f"checkpoint signature: no signature by the trusted key {rust_debug(name)} (id {key_id:08x})"
        )
    return parse_checkpoint_body(body)
