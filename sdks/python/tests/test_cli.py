"""The CLI wrappers against the real binary and server, and the offline verifier against
``maestro verify-receipt``: on every receipt vector both give the same checks with the same
outcomes and details."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maestro_sdk import Client, CliError, Maestro, PublicKey, Trust, verify_receipt, verify_receipt_file
from maestro_sdk.testing import Server

from .conftest import FIXTURES

CASES = json.loads((FIXTURES / "receipts" / "cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_offline_verifier_reports_exactly_what_maestro_verify_receipt_reports(binary: str, case: dict[str, str]) -> None:
    d = FIXTURES / "receipts"
    m = Maestro(binary)
    cli = m.verify_receipt(str(d / case["receipt"]), keys=[str(d / case["key"])], origin=case.get("origin"))
    key = PublicKey.from_pem((d / case["key"]).read_text())
    mine = verify_receipt_file(str(d / case["receipt"]), [key], case.get("origin"))
    assert cli["valid"] == mine.valid
    assert [(c["name"], c["outcome"], c["detail"]) for c in cli["checks"]] == [
        (c.name, c.outcome, c.detail) for c in mine.checks
    ]
    assert cli.get("digest") == mine.digest and cli.get("execution_id") == mine.execution_id


def test_run_against_the_server_and_verify_with_the_published_keys(server: Server, acme: Client, tmp_path: Path) -> None:
    m = Maestro(server=server.url, token=server.tokens["acme-operator"], cwd=str(tmp_path))
    manifest = tmp_path / "m.yaml"
    manifest.write_text((FIXTURES / "manifests" / "valid-dag.yaml").read_text().replace("us-east", "eu-west"))
    out = m.run(str(manifest), receipt_out=str(tmp_path / "r.json"))
    execution = out["execution"]
    assert execution["status"] == "succeeded" and execution["tenant"] == "acme"
    keys = m.keys_show()
    assert keys["log_origin"] == acme.keys().log_origin
    trust = Trust([PublicKey.from_pem(k["pem"]) for k in keys["keys"]], keys["log_origin"])
    report = verify_receipt((tmp_path / "r.json").read_bytes(), trust)
    assert report.valid and report.execution_id == execution["id"]
    (tmp_path / "k.pem").write_text(keys["keys"][0]["pem"])
    assert m.verify_receipt(str(tmp_path / "r.json"), keys=[str(tmp_path / "k.pem")])["valid"]
    listed = m.executions_list(limit=100)
    assert execution["id"] in [x["id"] for x in listed["items"]]
    assert m.executions_show(execution["id"])["id"] == execution["id"]


def test_cli_errors_carry_the_documented_exit_codes(server: Server, tmp_path: Path) -> None:
    m = Maestro(server=server.url, token=server.tokens["acme-operator"], cwd=str(tmp_path))
    with pytest.raises(CliError) as info:
        m.executions_show("ex_01m8p3yv52ja9da2bmz53vrgbg")
    assert info.value.code == 5 and info.value.kind == "not_found"
    bad = Maestro(server=server.url, token="mct_" + "1" * 64, cwd=str(tmp_path))
    with pytest.raises(CliError) as info:
        bad.executions_list()
    assert info.value.kind == "unauthorized"
    invalid = m.validate(str(FIXTURES / "manifests" / "invalid-cycle.yaml"))
    assert invalid["valid"] is False and invalid["problems"][0]["code"] == "cycle"


def test_version_and_schema(binary: str, acme: Client) -> None:
    m = Maestro(binary)
    assert m.version()["version"] == acme.version()["version"]
    assert m.schema() == acme.schema()
