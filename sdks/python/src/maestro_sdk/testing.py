"""A throw-away ``maestro serve`` for tests and examples: a config with two tenants
(``acme`` in eu-west, ``globex`` in eu-west and us-east), storage locations and fresh API
tokens, on a free 127.0.0.1 port, in a temporary data directory; started, waited for
(``/readyz``), and stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx

ROLES = {
    "acme-operator": ("acme", "operator"),
    "acme-viewer": ("acme", "viewer"),
    "acme-auditor": ("acme", "auditor"),
    "globex-operator": ("globex", "operator"),
    "admin": (None, "admin"),
}


def new_token() -> str:
    """A fresh API token (``mct_`` and 64 hex digits)."""
    return "mct_" + secrets.token_hex(32)


def token_hash(token: str) -> str:
    """The ``sha256:`` line the config stores for a token."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_binary() -> str:
    """``$MAESTRO_BIN``, else ``target/debug/maestro`` of the repository holding this SDK."""
    env = os.environ.get("MAESTRO_BIN")
    if env:
        return os.path.abspath(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "target" / "debug" / "maestro"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("maestro")
    if found:
        return found
    raise FileNotFoundError("set MAESTRO_BIN to the maestro binary (cargo build makes target/debug/maestro)")


@dataclass
class Server:
    """A running ``maestro serve``; ``tokens`` maps ``acme-operator``, ``acme-viewer``,
    ``acme-auditor``, ``globex-operator`` and ``admin`` to their tokens."""

    binary: str = field(default_factory=find_binary)
    extra_config: str = ""
    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    dir: str = ""
    config_path: str = ""
    process: Optional[subprocess.Popen[bytes]] = None
    _tmp: Optional[tempfile.TemporaryDirectory[str]] = None

    def config_text(self, data_dir: str, listen: str) -> str:
        lines = [
            f'data_dir = "{data_dir}"',
            f'listen = "{listen}"',
            'regions = ["eu-west", "us-east"]',
            "[log]",
            'level = "warn"',
            "[locations.eu-bucket]",
            'region = "eu-west"',
            "[locations.us-bucket]",
            'region = "us-east"',
            "[tenants.acme]",
            'allowed_regions = ["eu-west"]',
            "[tenants.globex]",
            'allowed_regions = ["eu-west", "us-east"]',
        ]
        for name, (tenant, role) in ROLES.items():
            lines += ["[[tokens]]", f'name = "{name}"', f'sha256 = "{token_hash(self.tokens[name])}"']
            if tenant:
                lines.append(f'tenant = "{tenant}"')
            lines.append(f'roles = ["{role}"]')
        return "\n".join(lines) + "\n" + self.extra_config + "\n"

    def start(self, timeout: float = 60.0) -> "Server":
        """Writes the config, starts the server and waits until it is ready."""
        self._tmp = tempfile.TemporaryDirectory(prefix="maestro-sdk-")
        self.dir = self._tmp.name
        self.tokens = {name: new_token() for name in ROLES}
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = os.path.join(self.dir, "maestro.toml")
        with open(self.config_path, "w") as f:
            f.write(self.config_text(os.path.join(self.dir, "data"), f"127.0.0.1:{port}"))
        log = open(os.path.join(self.dir, "server.log"), "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
        self.process = subprocess.Popen(
            [self.binary, "--config", self.config_path, "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"maestro serve exited with {code}: {self.log()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("maestro serve did not become ready")
            time.sleep(0.05)

    def log(self) -> str:
        """What the server printed."""
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
