"""Differential test against the Rust validator: every conformance vector and every file of
``sdks/testdata/differential`` (YAML and JSON corner cases) is validated by this SDK and by
``maestro validate --output json``; validity, digest, and each problem's code, path, message
and hint must agree, in order (the parser's own message for ``syntax``/``too_large`` aside).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from maestro_sdk import ManifestInvalid, load

from .conftest import FIXTURES, SDK

CORPUS = sorted(
    p
    for d in (FIXTURES / "manifests", SDK.parent / "testdata" / "differential")
    for p in d.iterdir()
    if p.suffix in (".yaml", ".json") and not p.name.endswith(".expected.json")
)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("case", CORPUS, ids=lambda p: p.name)
def test_same_result_as_maestro_validate(binary: str, case: Path) -> None:
    p = subprocess.run([binary, "validate", str(case), "--output", "json"], capture_output=True, text=True)
    assert p.returncode in (0, 3), p.stderr
    rust = json.loads(p.stdout)
    text = case.read_bytes().decode("utf-8")
    try:
        v = load(text)
        mine: dict[str, object] = {"valid": True, "digest": v.digest}
    except ManifestInvalid as e:
        mine = {"valid": False, "problems": [p.__dict__ for p in e.problems]}
    assert mine["valid"] == rust["valid"]
    assert (p.returncode == 0) == rust["valid"]
    if rust["valid"]:
        assert mine["digest"] == rust["digest"]
        return
    got = mine["problems"]
    assert isinstance(got, list)
    assert [(x["code"], x["path"]) for x in got] == [(x["code"], x["path"]) for x in rust["problems"]]
    for a, b in zip(got, rust["problems"]):
        if a["code"] not in ("syntax", "too_large") or a["path"]:
            assert a["message"] == b["message"]
            assert a["hint"] == b.get("hint")
