"""Pydantic v2 models: Manifest v1 (matching ``docs/schema/manifest-v1.json``; the task field
``with`` is ``with_`` in Python through an alias) and the HTTP API's responses (executions,
proofs, checkpoints, keys, search results, errors).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .document import JSONValue

DURATION_PATTERN = r"^([0-9]{1,9}(ms|s|m|h))+$"

# --- Manifest v1 ------------------------------------------------------------------------


class _ManifestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class Retry(_ManifestModel):
    """How a failed task is retried."""

    max_attempts: Annotated[int, Field(ge=1, le=10)]
    """Total attempts including the first (1-10)."""
    backoff: Optional[Annotated[str, Field(pattern=DURATION_PATTERN)]] = None
    """Delay before the second attempt, e.g. ``"100ms"``."""
    multiplier: Optional[Annotated[float, Field(ge=1.0, le=10.0)]] = None
    """Factor applied to the delay after each attempt (1-10, default 2)."""


class Task(_ManifestModel):
    """One step of a workflow."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
    uses: Annotated[
        str, Field(pattern=r"^(builtin/[a-z0-9-]+|pkg:[a-z0-9][a-z0-9._/-]*@[0-9A-Za-z.+-]+)$")
    ]
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    """Inputs of the action (``with`` in the document)."""
    needs: Annotated[list[str], Field(max_length=256)] = Field(default_factory=list)
    retry: Optional[Retry] = None
    timeout: Optional[Annotated[str, Field(pattern=DURATION_PATTERN)]] = None


class Manifest(_ManifestModel):
    """A workflow: named, versioned, bound to a region, made of tasks."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    version: Annotated[str, Field(min_length=5, max_length=64)]
    region: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
    description: Optional[Annotated[str, Field(max_length=4096)]] = None
    timeout: Optional[Annotated[str, Field(pattern=DURATION_PATTERN)]] = None
    tasks: Annotated[list[Task], Field(min_length=1, max_length=1024)]

    def to_document(self) -> dict[str, JSONValue]:
        """The manifest as the appliance serializes it (``with`` spelled ``with``; empty
        ``with``/``needs`` and absent optionals left out)."""
        doc: dict[str, JSONValue] = self.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        for task in doc["tasks"]:  # type: ignore[union-attr]
            assert isinstance(task, dict)
            if not task.get("with"):
                task.pop("with", None)
            if not task.get("needs"):
                task.pop("needs", None)
        return doc

    @staticmethod
    def from_text(text: str) -> "Manifest":
        """Parses and validates YAML or JSON text with the appliance's rules, then builds
        the model; raises :class:`maestro_sdk.validate.ManifestInvalid`."""
        from .validate import load

        return Manifest.model_validate(load(text).document)


# --- API responses ----------------------------------------------------------------------

ExecutionStatus = Literal["queued", "running", "succeeded", "failed", "denied", "interrupted"]
TaskStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Attempt(_Response):
    """One attempt of a task."""

    number: int
    started_at: datetime
    finished_at: datetime
    ok: bool
    error: Optional[str] = None


class TaskRun(_Response):
    """A task of an execution."""

    id: str
    uses: str
    status: TaskStatus
    attempts: list[Attempt] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)


class Artifact(_Response):
    """An artifact an execution wrote."""

    task: str
    name: str
    digest: str
    size: int
    media_type: str
    location: str
    region: str


class DenyReason(_Response):
    """Why a policy denied."""

    code: str
    message: str


class Decision(_Response):
    """A recorded policy decision."""

    id: str
    tenant: str
    execution: Optional[str] = None
    kind: str
    policy: str
    policy_digest: str
    input_digest: str
    input: Any = None
    allow: bool
    reasons: list[DenyReason] = Field(default_factory=list)
    decided_at: datetime


class ReceiptRef(_Response):
    """Where an execution's receipt is."""

    digest: str
    log_index: int


class Execution(_Response):
    """An execution with its tasks, artifacts, decisions and receipt reference."""

    id: str
    tenant: str
    status: ExecutionStatus
    manifest: dict[str, Any]
    manifest_digest: str
    region: str
    canary: bool = False
    submitted_by: str
    submitted_at: datetime
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    tasks: list[TaskRun]
    artifacts: list[Artifact] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    error: Optional[str] = None
    receipt: Optional[ReceiptRef] = None

    @property
    def is_final(self) -> bool:
        """Whether the execution is over (and has a receipt)."""
        return self.status not in ("queued", "running")


class ExecutionSummary(_Response):
    """One row of the executions list."""

    id: str
    tenant: str
    status: ExecutionStatus
    name: str
    version: str
    region: str
    canary: bool
    submitted_at: datetime
    finished_at: Optional[datetime] = None
    receipt_digest: Optional[str] = None


class ExecutionList(_Response):
    """A page of executions, newest first."""

    items: list[ExecutionSummary]
    next_cursor: Optional[str] = None


class InclusionProof(_Response):
    """An inclusion proof of an execution's receipt, with its checkpoint."""

    execution_id: str
    log_index: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    hashes: list[str]
    checkpoint: str


class ConsistencyProof(_Response):
    """A consistency proof between two tree sizes."""

    from_: int = Field(alias="from")
    to: int
    from_root: str
    to_root: str
    hashes: list[str]


class CheckpointView(_Response):
    """The latest checkpoint."""

    origin: str
    size: int
    root_hash: str
    note: str


class LogInfo(_Response):
    """Log origin and latest checkpoint."""

    origin: str
    checkpoint: Optional[CheckpointView] = None


class KeyView(_Response):
    """A public key of the appliance."""

    keyid: str
    algorithm: Literal["ed25519", "ecdsa-p256"]
    pem: str
    signs: str
    note_verifier_key: Optional[str] = None


class Keys(_Response):
    """The keys that verify receipts and checkpoints."""

    log_origin: str
    keys: list[KeyView]


class SearchHit(_Response):
    """One search hit."""

    kind: str
    tenant: str
    id: str
    status: str
    name: str
    version: Optional[str] = None
    region: Optional[str] = None
    at: str
    receipt: Optional[str] = None
    summary: Optional[str] = None


class SearchResults(_Response):
    """A page of search hits, newest first."""

    hits: list[SearchHit]
    total: int
    total_exact: bool
    next_cursor: Optional[str] = None


class ApiProblem(_Response):
    """A validation problem in a ``manifest_invalid`` error."""

    code: str
    path: str
    message: str
    hint: Optional[str] = None


class ErrorBody(_Response):
    """The JSON body of every API error."""

    code: str
    message: str
    problems: list[ApiProblem] = Field(default_factory=list)
    retry_after_seconds: Optional[int] = None
    execution: Optional[Execution] = None
