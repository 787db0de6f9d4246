"""Typed wrappers around the ``maestro`` binary's ``--output json`` commands: each runs the
binary, parses its one JSON document, and raises :class:`CliError` (with the documented
exit code, ``docs/cli.md``) when the command fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

EXIT_CODES = {
    0: "ok",
    1: "error",
    2: "usage",
    3: "invalid",
    4: "unverified",
    5: "not_found",
    6: "denied",
    7: "failed",
    8: "unavailable",
    9: "unauthorized",
}
"""The documented exit codes by number."""


class CliError(Exception):
    """A ``maestro`` command exited with a nonzero code; ``kind`` names it (``invalid``,
    ``unverified``, …), ``output`` is its parsed JSON output when it printed some."""

    def __init__(self, args: Sequence[str], code: int, stdout: str, stderr: str) -> None:
        self.args_ = list(args)
        self.code = code
        self.kind = EXIT_CODES.get(code, "error")
        self.stdout = stdout
        self.stderr = stderr
        self.output: Any = None
        try:
            self.output = json.loads(stdout) if stdout.strip() else None
        except json.JSONDecodeError:
            pass
        super().__init__(f"maestro {' '.join(args)} exited {code} ({self.kind}): {stderr.strip()[:500]}")


def default_binary() -> str:
    """``$MAESTRO_BIN``, else ``maestro`` on ``PATH``."""
    return os.environ.get("MAESTRO_BIN") or shutil.which("maestro") or "maestro"


@dataclass
class Maestro:
    """The ``maestro`` binary, optionally bound to a server (``--server``/``--token``), a
    config file or a working directory."""

    binary: str = ""
    server: Optional[str] = None
    token: Optional[str] = None
    config: Optional[str] = None
    cwd: Optional[str] = None
    env: Optional[Mapping[str, str]] = None
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if not self.binary:
            self.binary = default_binary()

    def run_raw(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs ``maestro ARGS`` and returns the completed process."""
        argv = [self.binary]
        if self.config:
            argv += ["--config", self.config]
        argv += list(args)
        env = {k: v for k, v in os.environ.items() if k not in ("MAESTRO_URL", "MAESTRO_TOKEN", "MAESTRO_CONFIG")}
        if self.server:
            env["MAESTRO_URL"] = self.server
        if self.token:
            env["MAESTRO_TOKEN"] = self.token
        env.update(self.env or {})
        p = subprocess.run(argv, capture_output=True, text=True, cwd=self.cwd, env=env, timeout=self.timeout)
        if check and p.returncode != 0:
            raise CliError(args, p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args: str) -> Any:
        """Runs ``maestro ARGS --output json`` and parses its output."""
        p = self.run_raw(*args, "--output", "json")
        return json.loads(p.stdout)

    def report(self, args: Sequence[str], also_on: str) -> dict[str, Any]:
        """Runs a command whose JSON output is also its answer when it exits with the code
        of ``also_on`` (an invalid manifest, a failed verification, no hits)."""
        try:
            out: dict[str, Any] = self.json(*args)
            return out
        except CliError as e:
            if e.kind == also_on and isinstance(e.output, dict):
                return e.output
            raise

    # --- commands ---

    def version(self) -> dict[str, Any]:
        """``maestro version``."""
        out: dict[str, Any] = self.json("version")
        return out

    def validate(self, path: str, regions: Sequence[str] = ()) -> dict[str, Any]:
        """``maestro validate FILE``: ``{"valid": true, "digest": …}`` or, for an invalid
        manifest, the output with every problem (not an exception)."""
        args = ["validate", path]
        for r in regions:
            args += ["--region", r]
        return self.report(args, also_on="invalid")

    def run(
        self,
        workflow: str,
        *,
        tenant: Optional[str] = None,
        canary: bool = False,
        wait: Optional[str] = None,
        receipt_out: Optional[str] = None,
    ) -> dict[str, Any]:
        """``maestro run -w NAME|FILE``: the execution."""
        args = ["run", "-w", workflow]
        if tenant:
            args += ["--tenant", tenant]
        if canary:
            args += ["--canary"]
        if wait:
            args += ["--wait", wait]
        if receipt_out:
            args += ["--receipt-out", receipt_out]
        out: dict[str, Any] = self.json(*args)
        return out

    def verify_receipt(self, path: str, *, keys: Sequence[str] = (), origin: Optional[str] = None) -> dict[str, Any]:
        """``maestro verify-receipt FILE --key PEM…``: the report (also when it fails)."""
        args = ["verify-receipt", path]
        for k in keys:
            args += ["--key", k]
        if origin:
            args += ["--origin", origin]
        return self.report(args, also_on="unverified")

    def executions_list(self, *, status: Optional[str] = None, name: Optional[str] = None, limit: Optional[int] = None) -> dict[str, Any]:
        """``maestro executions list``."""
        args = ["executions", "list"]
        if status:
            args += ["--status", status]
        if name:
            args += ["--name", name]
        if limit is not None:
            args += ["--limit", str(limit)]
        out: dict[str, Any] = self.json(*args)
        return out

    def executions_show(self, execution_id: str) -> dict[str, Any]:
        """``maestro executions show ID``."""
        out: dict[str, Any] = self.json("executions", "show", execution_id)
        return out

    def executions_receipt(self, execution_id: str, out: str, *, format: str = "maestro") -> None:
        """``maestro executions receipt ID --out FILE``."""
        self.run_raw("executions", "receipt", execution_id, "--format", format, "--out", out)

    def keys_show(self) -> dict[str, Any]:
        """``maestro keys show``."""
        out: dict[str, Any] = self.json("keys", "show")
        return out

    def log_checkpoint(self) -> Any:
        """``maestro log checkpoint``."""
        return self.json("log", "checkpoint")

    def log_consistency(self, old_size: int, new_size: Optional[int] = None) -> dict[str, Any]:
        """``maestro log consistency --from N [--to M]``."""
        args = ["log", "consistency", "--from", str(old_size)]
        if new_size is not None:
            args += ["--to", str(new_size)]
        out: dict[str, Any] = self.json(*args)
        return out

    def search(self, query: str, *, limit: Optional[int] = None) -> dict[str, Any]:
        """``maestro search QUERY``: the results (an empty page when nothing matches)."""
        args = ["search", query]
        if limit is not None:
            args += ["--limit", str(limit)]
        return self.report(args, also_on="not_found")

    def schema(self) -> dict[str, Any]:
        """``maestro schema``."""
        out: dict[str, Any] = self.json("schema")
        return out

    def disclosure_pack(self, region: str, out: str, *, execution_id: Optional[str] = None) -> Any:
        """``maestro disclosure pack --region R --out FILE``."""
        args = ["disclosure", "pack", "--region", region, "--out", out]
        if execution_id:
            args += ["--execution", execution_id]
        return self.json(*args)

    def disclosure_verify(self, pack: str, *, keys: Sequence[str] = ()) -> dict[str, Any]:
        """``maestro disclosure verify PACK --key PEM…``: the report (also when it fails)."""
        args = ["disclosure", "verify", pack]
        for k in keys:
            args += ["--key", k]
        return self.report(args, also_on="unverified")
