"""Shared pytest fixtures: the repository's conformance vectors, the ``maestro`` binary
(``$MAESTRO_BIN``, default ``../../target/debug/maestro``), and one real ``maestro serve``
per session on 127.0.0.1, stopped at the end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from maestro_sdk import Client
from maestro_sdk.testing import Server

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]
FIXTURES = REPO / "fixtures" / "conformance"


@pytest.fixture(scope="session")
def binary() -> str:
    path = os.environ.get("MAESTRO_BIN") or str(REPO / "target" / "debug" / "maestro")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        pytest.fail(f"maestro binary not found at {path}; build it or set MAESTRO_BIN")
    return path


@pytest.fixture(scope="session")
def server(binary: str) -> Iterator[Server]:
    s = Server(binary=binary)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture()
def acme(server: Server) -> Iterator[Client]:
    with Client(server.url, server.tokens["acme-operator"]) as c:
        yield c


@pytest.fixture()
def globex(server: Server) -> Iterator[Client]:
    with Client(server.url, server.tokens["globex-operator"]) as c:
        yield c
