"""Public keys that verify receipts and checkpoints: Ed25519 or ECDSA P-256 (ASN.1 DER
signatures) from PEM, their securesystemslib key id, signed-note key ids, and DSSE
envelope verification. Mirrors ``src/attest/keys.rs`` and ``src/attest/dsse.rs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

from cryptography.exceptions import InvalidSignature

from .actions import rust_debug
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256"


class KeyError_(ValueError):
    """A key that cannot be used (not PEM, not a supported type)."""


class SignatureError(ValueError):
    """A signature did not verify, or an envelope is malformed."""


def _olpc_canonical(value: object) -> bytes:
    """OLPC canonical JSON (securesystemslib): sorted keys, no spaces, only ``"`` and ``\\``
    escaped."""

    def enc(v: object) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, dict):
            return "{" + ",".join(enc(k) + ":" + enc(v[k]) for k in sorted(v)) + "}"
        if isinstance(v, list):
            return "[" + ",".join(enc(x) for x in v) + "]"
        return json.dumps(v)

    return enc(value).encode("utf-8")


def _pem_block(pem: str) -> bytes:
    begin = pem.find("-----BEGIN ")
    if begin < 0:
        raise KeyError_("no PEM block (expected -----BEGIN PUBLIC KEY-----)")
    rest = pem[begin:]
    header_end = rest.find("-----\n")
    if header_end < 0:
        header_end = rest.find("-----\r\n")
    if header_end < 0:
        raise KeyError_("malformed PEM header")
    label = rest[len("-----BEGIN ") : header_end]
    if label != "PUBLIC KEY":
        raise KeyError_(f"expected a PUBLIC KEY PEM block, found {rust_debug(label)}")
    end = rest.find("-----END ")
    if end < 0:
        raise KeyError_("PEM block has no END line")
    body = "".join(rest[header_end + 5 : end].split())
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as e:
        raise KeyError_(f"PEM body is not base64: {e}") from e


def _to_pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


@dataclass(frozen=True)
class PublicKey:
    """A public key with what verifiers need to refer to it."""

    algorithm: str
    spki_der: bytes
    pem: str
    keyid: str

    @staticmethod
    def from_pem(pem: str) -> "PublicKey":
        """Parses a ``PUBLIC KEY`` PEM block (Ed25519 or ECDSA P-256)."""
        return PublicKey.from_der(_pem_block(pem))

    @staticmethod
    def from_der(der: bytes) -> "PublicKey":
        """Parses a DER SubjectPublicKeyInfo."""
        try:
            key = serialization.load_der_public_key(der)
        except ValueError as e:
            raise KeyError_(f"not a supported public key: {e}") from e
        if isinstance(key, ed25519.Ed25519PublicKey):
            algorithm = ED25519
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            keyval = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw.hex()}}
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            algorithm = ECDSA_P256
            keyval = None
        else:
            raise KeyError_("unsupported key type: use ed25519 or ecdsa-p256")
        pem = _to_pem(der)
        if keyval is None:
            keyval = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pem}}
        keyid = hashlib.sha256(_olpc_canonical(keyval)).hexdigest()
        return PublicKey(algorithm, der, pem, keyid)

    def _key(self) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
        key = serialization.load_der_public_key(self.spki_der)
        assert isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey))
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``message``."""
        key = self._key()
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            else:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def ed25519_raw(self) -> bytes | None:
        """The raw 32-byte key of an Ed25519 key."""
        if self.algorithm != ED25519:
            return None
        return self.spki_der[-32:]

    def note_key_id(self, name: str) -> int:
        """The C2SP signed-note key id of this key under a key name (the log origin)."""
        raw = self.ed25519_raw()
        if raw is not None:
            h = hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw).digest()
        else:
            h = hashlib.sha256(self.spki_der).digest()
        return int.from_bytes(h[:4], "big")

    def note_verifier_key(self, name: str) -> str | None:
        """``name+hexid+base64(0x01 || key)`` for Ed25519 keys (what note tools accept)."""
        raw = self.ed25519_raw()
        if raw is None:
            return None
        encoded = base64.b64encode(b"\x01" + raw).decode()
        return f"{name}+{self.note_key_id(name):08x}+{encoded}"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def verify_envelope(
    envelope_payload: str,
    payload_type: str,
    signatures: Sequence[tuple[str, str]],
    expected_type: str,
    trusted: Sequence[PublicKey],
) -> str:
    """Verifies a DSSE envelope (payload base64, type, ``(keyid, sig)`` pairs) against trusted
    keys; returns the key id that verified, raises :class:`SignatureError` otherwise."""
    if payload_type != expected_type:
        raise SignatureError(f"format: payloadType is {rust_debug(payload_type)}, expected {rust_debug(expected_type)}")
    try:
        payload = base64.b64decode(envelope_payload, validate=True)
    except binascii.Error as e:
        raise SignatureError(f"format: envelope payload is not base64: {e}") from e
    if not signatures:
        raise SignatureError("signature: the envelope has no signatures")
    message = pae(payload_type, payload)
    tried: list[str] = []
    for keyid, sig in signatures:
        try:
            raw = base64.b64decode(sig, validate=True)
        except binascii.Error:
            tried.append(f"signature with keyid {rust_debug(keyid)} is not base64")
            continue
        matched = False
        for key in trusted:
            if keyid and keyid != key.keyid:
                continue
            matched = True
            if key.verify(message, raw):
                return key.keyid
            tried.append(f"signature by {key.keyid} does not verify")
        if not matched:
            tried.append(f"keyid {rust_debug(keyid)} is not a trusted key")
    raise SignatureError("signature: " + "; ".join(tried))
