"""The examples and the README's five-line example run against the real server and print
what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from maestro_sdk.testing import Server

from .conftest import FIXTURES, SDK

EXAMPLES = SDK / "examples"


def run(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MAESTRO_URL=server.url, MAESTRO_TOKEN=server.tokens["acme-operator"])
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)


def test_readme_five_line_example(server: Server, tmp_path: Path) -> None:
    readme = (SDK / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    code = block.group(1)
    assert len(code.strip().splitlines()) == 5
    (tmp_path / "snippet.py").write_text(code)
    p = run(server, str(tmp_path / "snippet.py"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "succeeded True"


def test_quickstart(server: Server) -> None:
    p = run(server, str(EXAMPLES / "quickstart.py"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "succeeded True"


def test_submit_and_prove(server: Server) -> None:
    p = run(server, str(EXAMPLES / "submit_and_prove.py"))
    assert p.returncode == 0, p.stderr
    assert "receipt is leaf" in p.stdout and "is a prefix of the log" in p.stdout


def test_validate_manifest(server: Server) -> None:
    m = FIXTURES / "manifests"
    p = run(server, str(EXAMPLES / "validate_manifest.py"), str(m / "valid-dag.yaml"), str(m / "invalid-unknown-action.yaml"))
    assert p.returncode == 3, p.stderr
    assert "valid-dag.yaml: valid (dag@2.1.0-rc.1, 4 tasks in us-east)" in p.stdout
    assert 'tasks[0].uses: unknown action "builtin/ech0" (did you mean "builtin/echo"?)' in p.stdout


def test_verify_receipt(server: Server) -> None:
    d = FIXTURES / "receipts"
    ok = run(server, str(EXAMPLES / "verify_receipt.py"), str(d / "valid.receipt.json"), str(d / "key.pub.pem"))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("valid"), ok.stdout + ok.stderr
    bad = run(server, str(EXAMPLES / "verify_receipt.py"), str(d / "wrong-inclusion-proof.receipt.json"), str(d / "key.pub.pem"))
    assert bad.returncode == 4 and "fail     inclusion" in bad.stdout
