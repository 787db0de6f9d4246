"""Offline receipt verification: the receipt file (``application/vnd.maestro.receipt.v1+json``),
its in-toto Statement, and the six checks of ``maestro verify-receipt`` (format, signature,
statement, predicate, checkpoint, inclusion), each passing, failing with what exactly failed,
or skipped. Mirrors ``src/attest/receipt.rs`` and ``check_integrity`` in
``src/domain/receipt.rs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal, Optional, Sequence, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from . import tlog
from .keys import PublicKey, SignatureError, verify_envelope

MEDIA_TYPE = "application/vnd.maestro.receipt.v1+json"
"""Media type of a receipt file."""
PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""DSSE payload type of in-toto statements."""
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://maestro.conductor/attestation/execution/v1"
CHECK_NAMES = ("format", "signature", "statement", "predicate", "checkpoint", "inclusion")

U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]

_DIGEST = re.compile(r"(?:sha256:)?[0-9a-fA-F]{64}")
_TENANT = re.compile(r"[a-z][a-z0-9-]{0,62}")
_ULID = r"[0-7][0-9a-hjkmnp-tv-z]{25}"
_EXECUTION_ID = re.compile("ex_" + _ULID)
_DECISION_ID = re.compile("dc_" + _ULID)


def _digest(v: str) -> str:
    if not _DIGEST.fullmatch(v):
        raise ValueError(f"digest {v!r} is invalid: must be sha256: and 64 hex digits")
    return "sha256:" + v.removeprefix("sha256:").lower()


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(v: str) -> str:
        if not pattern.fullmatch(v):
            raise ValueError(f"{what} {v!r} is invalid")
        return v

    return AfterValidator(check)


DigestStr = Annotated[str, AfterValidator(_digest)]
"""``sha256:`` and 64 hex digits, normalised to lowercase."""
TenantStr = Annotated[str, _matching(_TENANT, "tenant id")]
ExecutionIdStr = Annotated[str, _matching(_EXECUTION_ID, "execution id")]
DecisionIdStr = Annotated[str, _matching(_DECISION_ID, "decision id")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, populate_by_name=True)


class _Closed(_Strict):
    model_config = ConfigDict(strict=True, populate_by_name=True, extra="forbid")


# --- the receipt file -------------------------------------------------------------------


class EnvelopeSignature(_Closed):
    """One signature of a DSSE envelope."""

    keyid: str = ""
    sig: str


class Envelope(_Closed):
    """A DSSE envelope."""

    payload: str
    payload_type: str = Field(alias="payloadType")
    signatures: list[EnvelopeSignature]

    def payload_bytes(self) -> bytes:
        """The decoded payload; raises ValueError when it is not base64."""
        try:
            return base64.b64decode(self.payload, validate=True)
        except binascii.Error as e:
            raise ValueError(f"envelope payload is not base64: {e}") from e


class KeyHint(_Closed):
    """The key that signed a receipt (a hint: trust keys by other means)."""

    keyid: str
    algorithm: Literal["ed25519", "ecdsa-p256"]
    pem: str


class LogEntry(_Closed):
    """Where a receipt is in the transparency log, with a proof against a checkpoint."""

    origin: str
    log_index: U64 = Field(alias="logIndex")
    tree_size: U64 = Field(alias="treeSize")
    root_hash: str = Field(alias="rootHash")
    inclusion_proof: list[str] = Field(alias="inclusionProof")
    checkpoint: str


class ReceiptBundle(_Closed):
    """A receipt file: envelope, key hint and log entry."""

    media_type: str = Field(alias="mediaType")
    dsse_envelope: Envelope = Field(alias="dsseEnvelope")
    public_key: KeyHint = Field(alias="publicKey")
    log_entry: LogEntry = Field(alias="logEntry")


# --- the statement ----------------------------------------------------------------------

ExecutionStatus = Literal["queued", "running", "succeeded", "failed", "denied", "interrupted"]
TaskStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]


class Subject(_Strict):
    """An in-toto subject."""

    name: str
    digest: dict[str, str]


class ManifestRef(_Strict):
    """The manifest an execution ran."""

    name: str
    version: str
    digest: DigestStr


class TaskRecord(_Strict):
    """A task as recorded in a receipt."""

    id: str
    uses: str
    status: TaskStatus
    attempts: U32
    outputs_digest: Optional[DigestStr] = Field(default=None, alias="outputsDigest")
    error: Optional[str] = None


class ArtifactRecord(_Strict):
    """An artifact as recorded in a receipt."""

    task: str
    name: str
    digest: DigestStr
    size: U64
    media_type: str = Field(alias="mediaType")
    location: str
    region: str


class DecisionRecord(_Strict):
    """A policy decision as recorded in a receipt."""

    id: DecisionIdStr
    kind: str
    policy: str
    policy_digest: DigestStr = Field(alias="policyDigest")
    input_digest: DigestStr = Field(alias="inputDigest")
    allow: bool
    reasons: list[str] = Field(default_factory=list)


class Timings(_Strict):
    """Timestamps of an execution."""

    model_config = ConfigDict(strict=False, populate_by_name=True)

    submitted_at: datetime = Field(alias="submittedAt")
    started_at: Optional[datetime] = Field(default=None, alias="startedAt")
    finished_at: datetime = Field(alias="finishedAt")


class ApplianceInfo(_Strict):
    """The appliance that produced a receipt."""

    version: str
    log_origin: str = Field(alias="logOrigin")


class Predicate(_Strict):
    """The execution record: the predicate of a receipt."""

    receipt_version: U32 = Field(alias="receiptVersion")
    tenant: TenantStr
    execution_id: ExecutionIdStr = Field(alias="executionId")
    sequence: U64
    previous_receipt: Optional[DigestStr] = Field(default=None, alias="previousReceipt")
    status: ExecutionStatus
    canary: bool
    region: str
    manifest: ManifestRef
    tasks: list[TaskRecord]
    artifacts: list[ArtifactRecord]
    decisions: list[DecisionRecord]
    timings: Timings
    error: Optional[str] = None
    submitted_by: str = Field(alias="submittedBy")
    appliance: ApplianceInfo


class Statement(_Strict):
    """An in-toto Statement v1 carrying an execution record."""

    statement_type: str = Field(alias="_type")
    subject: list[Subject]
    predicate_type: str = Field(alias="predicateType")
    predicate: Predicate


def check_integrity(s: Statement) -> list[str]:
    """Every internal inconsistency of a statement (``check_integrity`` in Rust)."""
    problems: list[str] = []
    if s.statement_type != STATEMENT_TYPE:
        problems.append(f'_type is "{s.statement_type}", expected "{STATEMENT_TYPE}"')
    if s.predicate_type != PREDICATE_TYPE:
        problems.append(f'predicateType is "{s.predicate_type}", expected "{PREDICATE_TYPE}"')
    p = s.predicate
    if p.receipt_version != 1:
        problems.append(f"receiptVersion {p.receipt_version} is not supported")
    if p.status in ("queued", "running"):
        problems.append(f'status "{p.status}" is not final')
    if p.sequence == 0:
        problems.append("sequence must start at 1")
    if (p.sequence == 1) != (p.previous_receipt is None):
        has = "has" if p.previous_receipt is not None else "lacks"
        problems.append(f"sequence {p.sequence} {has} a previous receipt")
    expected = [(f"manifest:{p.manifest.name}@{p.manifest.version}", p.manifest.digest[7:])]
    expected += [(f"artifact:{a.name}", a.digest[7:]) for a in p.artifacts]
    actual = [(sub.name, sub.digest.get("sha256", "")) for sub in s.subject]
    expected.sort()
    actual.sort()
    for e in expected:
        if e not in actual:
            problems.append(f"subject {e[0]} with sha256 {e[1]} is missing")
    for a in actual:
        if a not in expected:
            problems.append(f"subject {a[0]} (sha256 {a[1]}) is not in the predicate")
    if p.status == "succeeded":
        bad = next((t for t in p.tasks if t.status != "succeeded"), None)
        if bad is not None:
            problems.append(f'status is succeeded but task "{bad.id}" is {bad.status.capitalize()}')
    elif p.status == "denied":
        if not any(not d.allow for d in p.decisions):
            problems.append("status is denied but no decision denies")
        ran = next((t for t in p.tasks if t.attempts > 0), None)
        if ran is not None:
            problems.append(f'status is denied but task "{ran.id}" ran')
    if p.status != "denied" and any(not d.allow for d in p.decisions):
        problems.append("a decision denies but the execution was not denied")
    t = p.timings
    if t.started_at is not None:
        if t.started_at < t.submitted_at:
            problems.append("startedAt is before submittedAt")
        if t.finished_at < t.started_at:
            problems.append("finishedAt is before startedAt")
    return problems


# --- verification -----------------------------------------------------------------------

Outcome = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class Check:
    """One verification step: its name, outcome and what was checked or what failed."""

    name: str
    outcome: Outcome
    detail: str


@dataclass
class Report:
    """The result of verifying a receipt: every check in order."""

    valid: bool = False
    digest: Optional[str] = None
    execution_id: Optional[str] = None
    tenant: Optional[str] = None
    status: Optional[str] = None
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Names of the checks that failed, in order."""
        return [c.name for c in self.checks if c.outcome == "fail"]

    def first_failure(self) -> Optional[Check]:
        """The first failed check."""
        return next((c for c in self.checks if c.outcome == "fail"), None)


@dataclass(frozen=True)
class Trust:
    """What verification trusts: keys allowed to sign receipts and checkpoints, and the log
    origin when it is pinned."""

    keys: Sequence[PublicKey]
    origin: Optional[str] = None


def _check_checkpoint(entry: LogEntry, trust: Trust) -> tlog.Checkpoint:
    if trust.origin is not None and trust.origin != entry.origin:
        raise tlog.CheckpointError(f'log origin is "{entry.origin}", expected "{trust.origin}"')
    if not trust.keys:
        raise tlog.CheckpointError("no trusted key was given")
    errors = []
    for key in trust.keys:
        try:
            cp = tlog.open_checkpoint(entry.checkpoint, key, entry.origin)
        except tlog.CheckpointError as e:
            errors.append(str(e))
            continue
        if cp.origin != entry.origin:
            raise tlog.CheckpointError(
                f'checkpoint origin "{cp.origin}" differs from the entry\'s "{entry.origin}"'
            )
        if cp.size != entry.tree_size:
            raise tlog.CheckpointError(
                f"checkpoint is for size {cp.size}, the proof for size {entry.tree_size}"
            )
        if cp.root.hex() != entry.root_hash.lower():
            raise tlog.CheckpointError("checkpoint root hash differs from the entry's rootHash")
        return cp
    raise tlog.CheckpointError("; ".join(errors))


def _check_inclusion(entry: LogEntry, cp: tlog.Checkpoint, payload: bytes) -> None:
    if len(entry.inclusion_proof) > tlog.MAX_PROOF_HASHES:
        raise tlog.ProofError(f"inclusion proof has {len(entry.inclusion_proof)} hashes")
    try:
        proof = [tlog.parse_hex_hash(h) for h in entry.inclusion_proof]
    except tlog.ProofError as e:
        raise tlog.ProofError(f"inclusion proof: {e}") from e
    tlog.verify_inclusion(proof, cp.size, cp.root, entry.log_index, tlog.leaf_hash(payload))


def verify_receipt(data: Union[bytes, str], trust: Trust) -> Report:
    """Verifies a receipt file offline and reports every check, as ``maestro
    verify-receipt`` does."""
    report = Report()
    checks = report.checks

    def add(name: str, outcome: Outcome, detail: str) -> None:
        checks.append(Check(name, outcome, detail))

    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        bundle = ReceiptBundle.model_validate_json(raw)
    except ValidationError as e:
        add("format", "fail", f"not a receipt file: {e.errors()[0]['msg'] if e.errors() else e}")
        for name in CHECK_NAMES[1:]:
            add(name, "skipped", "skipped: the file did not parse")
        return report
    if bundle.media_type == MEDIA_TYPE:
        add("format", "pass", f"{MEDIA_TYPE} receipt")
    else:
        add("format", "fail", f'mediaType is "{bundle.media_type}", expected "{MEDIA_TYPE}"')

    env = bundle.dsse_envelope
    payload: Optional[bytes]
    try:
        payload = env.payload_bytes()
        report.digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    except ValueError:
        payload = None
    if not trust.keys:
        add("signature", "fail", "no trusted key was given")
    else:
        try:
            keyid = verify_envelope(
                env.payload,
                env.payload_type,
                [(s.keyid, s.sig) for s in env.signatures],
                PAYLOAD_TYPE,
                trust.keys,
            )
            add("signature", "pass", f"DSSE signature by trusted key {keyid}")
        except SignatureError as e:
            add("signature", "fail", str(e))

    statement: Optional[Statement] = None
    if payload is None:
        add("statement", "fail", "envelope payload is not base64")
    else:
        try:
            statement = Statement.model_validate_json(payload)
            add("statement", "pass", f"in-toto Statement with predicate {statement.predicate_type}")
        except ValidationError as e:
            add("statement", "fail", f"payload is not an execution receipt statement: {e}")
    if statement is not None:
        p = statement.predicate
        report.execution_id, report.tenant, report.status = p.execution_id, p.tenant, p.status
        problems = check_integrity(statement)
        if problems:
            add("predicate", "fail", "; ".join(problems))
        else:
            add(
                "predicate",
                "pass",
                f"{len(statement.subject)} subjects match the execution record; sequence {p.sequence}",
            )
    else:
        add("predicate", "skipped", "skipped: the statement did not parse")

    entry = bundle.log_entry
    cp: Optional[tlog.Checkpoint] = None
    try:
        cp = _check_checkpoint(entry, trust)
        add("checkpoint", "pass", f"checkpoint of {cp.origin} at size {cp.size} signed by a trusted key")
    except tlog.CheckpointError as e:
        add("checkpoint", "fail", str(e))
    if payload is None:
        add("inclusion", "skipped", "skipped: the payload did not decode")
    elif cp is None:
        add("inclusion", "skipped", "skipped: the checkpoint did not verify")
    else:
        try:
            _check_inclusion(entry, cp, payload)
            add("inclusion", "pass", f"leaf {entry.log_index} is in the log of size {cp.size}")
        except tlog.ProofError as e:
            add("inclusion", "fail", str(e))
    report.valid = all(c.outcome == "pass" for c in checks)
    return report


def verify_receipt_file(path: str, keys: Sequence[PublicKey], origin: Optional[str] = None) -> Report:
    """Reads and verifies a receipt file."""
    with open(path, "rb") as f:
        return verify_receipt(f.read(), Trust(list(keys), origin))
