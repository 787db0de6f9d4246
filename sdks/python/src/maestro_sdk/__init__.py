"""Maestro Conductor's Python SDK: Manifest v1 models and the appliance's validator, an HTTP
API client, offline receipt verification (DSSE signature, checkpoint, inclusion proof), and
typed wrappers around the ``maestro`` binary.
"""

from .cli import CliError, Maestro
from .client import (
    ApiError,
    Client,
    DeniedByPolicy,
    ManifestRejected,
    NotFound,
    RateLimited,
    Unauthorized,
)
from .document import canonical_json, document_digest, parse_document
from .keys import PublicKey
from .models import Execution, Manifest, Retry, Task
from .receipt import Report, Trust, verify_receipt, verify_receipt_file
from .validate import Context, ManifestInvalid, Problem, load, problems, validate

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "CliError",
    "Client",
    "Context",
    "DeniedByPolicy",
    "Execution",
    "Maestro",
    "Manifest",
    "ManifestInvalid",
    "ManifestRejected",
    "NotFound",
    "Problem",
    "PublicKey",
    "RateLimited",
    "Report",
    "Retry",
    "Task",
    "Trust",
    "Unauthorized",
    "canonical_json",
    "document_digest",
    "load",
    "parse_document",
    "problems",
    "validate",
    "verify_receipt",
    "verify_receipt_file",
]
