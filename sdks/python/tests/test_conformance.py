"""The shared conformance vectors (``fixtures/conformance``): every manifest gives the Rust
validator's exact problems (code and path) or digest, and every receipt case gives the Rust
verifier's validity and failed checks, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maestro_sdk import PublicKey, Trust, load, problems, verify_receipt
from maestro_sdk.models import Manifest

from .conftest import FIXTURES

MANIFESTS = sorted(
    p
    for p in (FIXTURES / "manifests").iterdir()
    if p.suffix in (".yaml", ".json") and not p.name.endswith(".expected.json")
)
CASES = json.loads((FIXTURES / "receipts" / "cases.json").read_text())["cases"]


def expected_of(case: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(case.with_name(case.name.rsplit(".", 1)[0] + ".expected.json").read_text())
    return data


def test_there_are_enough_vectors() -> None:
    assert len(MANIFESTS) >= 20
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", MANIFESTS, ids=lambda p: p.name)
def test_manifest_vector(case: Path) -> None:
    expected = expected_of(case)
    text = case.read_text()
    got = problems(text)
    assert (not got) == expected["valid"] == case.name.startswith("valid-")
    if expected["valid"]:
        assert load(text).digest == expected["digest"]
        # A valid document also fits the pydantic model.
        Manifest.from_text(text)
    else:
        want = sorted((p["code"], p["path"]) for p in expected["problems"])  # type: ignore[attr-defined]
        assert sorted((p.code, p.path) for p in got) == want


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_receipt_vector(case: dict[str, object]) -> None:
    d = FIXTURES / "receipts"
    key = PublicKey.from_pem((d / str(case["key"])).read_text())
    origin = case.get("origin")
    report = verify_receipt((d / str(case["receipt"])).read_bytes(), Trust([key], origin if isinstance(origin, str) else None))
    assert report.valid == case["valid"]
    assert report.failed == case["failed"]
    assert [c.name for c in report.checks] == ["format", "signature", "statement", "predicate", "checkpoint", "inclusion"]


def test_receipt_key_hint_matches_the_key() -> None:
    d = FIXTURES / "receipts"
    bundle = json.loads((d / "valid.receipt.json").read_text())
    key = PublicKey.from_pem((d / "key.pub.pem").read_text())
    assert bundle["publicKey"]["keyid"] == key.keyid
    assert bundle["dsseEnvelope"]["signatures"][0]["keyid"] == key.keyid
